//! The loopback listener behind `UserSignIn::sign_in_with_loopback`: receives the sign-in callback on `127.0.0.1`.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::pending::PendingSignIn;
use crate::error::{FlowError, FlowErrorKind, Result};

/// The most bytes read from one request (its request line and headers).
const MAX_HEAD: usize = 8 * 1024;
/// How long one connection may take to send its request, or to take the answer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;

/// The path the loopback listener receives the callback at: an absolute
/// path (`/callback`, `/auth/done`) with no query, fragment, white space or
/// `%`. A value of this type is always usable, so the listener cannot be
/// given a bad one.
///
/// ```
/// use arcgis_auth_flows::signin::CallbackPath;
///
/// assert_eq!(CallbackPath::default().as_str(), "/callback");
/// assert_eq!(CallbackPath::new("/auth/done")?.as_str(), "/auth/done");
/// assert!(CallbackPath::new("callback").is_err());
/// # Ok::<(), arcgis_auth_flows::FlowError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallbackPath(Cow<'static, str>);

impl CallbackPath {
    /// `/callback`, the default.
    pub const DEFAULT: CallbackPath = CallbackPath(Cow::Borrowed("/callback"));

    /// `path`, checked.
    ///
    /// Errors: [`FlowErrorKind::InvalidInput`] when `path` does not start with
    /// `/` or holds a query, fragment, white space, `%` or a control character.
    pub fn new(path: impl Into<String>) -> Result<Self> {
        let path = path.into();
        let path_ok = path.starts_with('/')
            && path
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'%'));
        if path_ok {
            Ok(CallbackPath(Cow::Owned(path)))
        } else {
            Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                format!(
                    "`{}` is not a usable callback path: give an absolute path such as /callback",
                    super::callback::printable(&path, 100)
                ),
            ))
        }
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CallbackPath {
    fn default() -> Self {
        CallbackPath::DEFAULT
    }
}

impl fmt::Display for CallbackPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where and how long [`UserSignIn::sign_in_with_loopback`](super::UserSignIn::sign_in_with_loopback)
/// listens: `http://127.0.0.1:<port><path>`, for at most `timeout`.
///
/// The default: any free port (`0`), [`CallbackPath::DEFAULT`], and
/// [`Loopback::DEFAULT_TIMEOUT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loopback {
    port: u16,
    path: CallbackPath,
    timeout: Duration,
}

impl Loopback {
    /// How long the user gets to sign in unless [`timeout`](Self::timeout) says: five minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

    /// Any free port, `/callback`, five minutes.
    pub fn new() -> Self {
        Loopback::default()
    }

    /// Listens on `port` (one registered for the app; `0`: a free port the
    /// system picks, if the portal accepts any loopback port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Receives the callback at `path` instead of `/callback`.
    pub fn path(mut self, path: CallbackPath) -> Self {
        self.path = path;
        self
    }

    /// Gives up after `timeout` without a callback.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(super) fn port_number(&self) -> u16 {
        self.port
    }

    pub(super) fn callback_path(&self) -> &CallbackPath {
        &self.path
    }

    pub(super) fn wait_at_most(&self) -> Duration {
        self.timeout
    }
}

impl Default for Loopback {
    fn default() -> Self {
        Loopback {
            port: 0,
            path: CallbackPath::DEFAULT,
            timeout: Loopback::DEFAULT_TIMEOUT,
        }
    }
}

/// A listener on `127.0.0.1` waiting for one sign-in callback.
pub(super) struct LoopbackListener {
    listener: TcpListener,
    path: String,
    redirect_uri: String,
}

impl LoopbackListener {
    /// Listens on `127.0.0.1:port` (`0`: a free port the system picks), with
    /// the redirect URI `http://127.0.0.1:<port><path>`.
    ///
    /// Errors: [`FlowErrorKind::Io`] when the port cannot be bound (in use, not allowed).
    pub(super) async fn bind(port: u16, path: &CallbackPath) -> Result<Self> {
        let path = path.as_str();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            FlowError::with_source(
                FlowErrorKind::Io,
                format!(
                    "could not listen on 127.0.0.1:{port} for the sign-in callback: choose \
                     another port registered for the app, or 0 for any free port"
                ),
                e,
            )
        })?;
        let port = listener.local_addr().map(|a| a.port()).map_err(|e| {
            FlowError::with_source(
                FlowErrorKind::Io,
                "the sign-in listener has no local address",
                e,
            )
        })?;
        Ok(LoopbackListener {
            listener,
            path: path.to_owned(),
            redirect_uri: format!("http://127.0.0.1:{port}{path}"),
        })
    }

    /// The redirect URI to begin the sign-in with.
    pub(super) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits up to `timeout` for the browser to bring back the callback of
    /// `pending`, answers it, stops listening, and returns the callback's query
    /// string (it holds the code, hence a secret) for
    /// [`UserSignIn::complete`](super::UserSignIn::complete).
    ///
    /// Errors: [`FlowErrorKind::SignInTimedOut`] when no matching callback came
    /// in time; for a callback that reports a failure, the error
    /// [`UserSignIn::complete`](super::UserSignIn::complete) would give
    /// (`access_denied`: [`FlowErrorKind::SignInRequired`]).
    pub(super) async fn wait(
        self,
        pending: &PendingSignIn,
        timeout: Duration,
    ) -> Result<SecretString> {
        let ctx = Arc::new(Context {
            pending: pending.clone(),
            path: self.path.clone(),
        });
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                () = &mut deadline => {
                    tracing::warn!(redirect_uri = %self.redirect_uri, "no sign-in callback arrived in time");
                    return Err(FlowError::new(
                        FlowErrorKind::SignInTimedOut,
                        format!(
                            "no sign-in callback arrived at {} within {} s: start the sign-in \
                             again (was the sign-in page opened in a browser on this machine?)",
                            self.redirect_uri,
                            timeout.as_secs()
                        ),
                    ));
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                        connections.spawn(serve(stream, Arc::clone(&ctx)));
                    }
                    Ok(_) => tracing::debug!("too many connections to the sign-in listener; dropping one"),
                    Err(e) => {
                        tracing::debug!(error = %e, "the sign-in listener could not accept a connection");
                        tokio::task::yield_now().await;
                    }
                },
                Some(joined) = connections.join_next() => {
                    if let Ok(Some(outcome)) = joined {
                        return outcome;
                    }
                }
            }
        }
    }
}

impl fmt::Debug for LoopbackListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackListener")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

struct Context {
    pending: PendingSignIn,
    path: String,
}

/// Serves one connection; `Some` when it carried the callback (good or bad).
async fn serve(mut stream: TcpStream, ctx: Arc<Context>) -> Option<Result<SecretString>> {
    let head = match tokio::time::timeout(CONNECTION_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        _ => return None,
    };
    let (response, outcome) = answer(&head, &ctx);
    let written = tokio::time::timeout(CONNECTION_TIMEOUT, async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("the browser left before the sign-in page was sent");
    }
    outcome
}

/// Reads the request line and headers (up to the blank line, at most [`MAX_HEAD`] bytes).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        let chunk = buf.get(..n).unwrap_or_default();
        head.extend_from_slice(chunk);
        if n == 0 || head.len() >= MAX_HEAD || ends_head(&head) {
            head.truncate(MAX_HEAD);
            return Ok(head);
        }
    }
}

fn ends_head(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// The answer to a request, and what it means for the sign-in.
fn answer(head: &[u8], ctx: &Context) -> (String, Option<Result<SecretString>>) {
    let Some((method, target)) = request_line(head) else {
        return (response(400, "Bad request", BAD_REQUEST), None);
    };
    if method != "GET" {
        return (response(405, "Method not allowed", BAD_REQUEST), None);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != ctx.path {
        return (response(404, "Not found", NOT_FOUND), None);
    }
    match ctx.pending.code_from_callback(query) {
        Ok(_) => {
            tracing::info!("the browser brought back the sign-in callback");
            (
                response(200, "OK", SIGNED_IN),
                Some(Ok(SecretString::from(query.to_owned()))),
            )
        }
        Err(err) if err.kind() == FlowErrorKind::StateMismatch => {
            tracing::warn!("ignored a sign-in callback whose state does not match");
            (response(400, "Bad request", STALE), None)
        }
        Err(err) => {
            let page = FAILED.replace("{error}", &html_escape(err.message()));
            (response(400, "Bad request", &page), Some(Err(err)))
        }
    }
}

/// `(method, request-target)` of an HTTP/1.x request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && version.starts_with("HTTP/1.") && target.starts_with('/'))
        .then_some((method, target))
}

fn response(status: u16, reason: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Cache-Control: no-store\r\n\
         Referrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const SIGNED_IN: &str = concat!(
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signed in</title>",
    "<style>body{font-family:system-ui,sans-serif;margin:4em auto;max-width:32em;}</style>",
    "</head><body><h1>Signed in</h1>",
    "<p>You can close this tab and return to the application.</p></body></html>"
);

const FAILED: &str = concat!(
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in failed</title>",
    "<style>body{font-family:system-ui,sans-serif;margin:4em auto;max-width:32em;}</style>",
    "</head><body><h1>Sign-in failed</h1><p>{error}</p>",
    "<p>You can close this tab and return to the application.</p></body></html>"
);

const STALE: &str = concat!(
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>Unknown sign-in</title>",
    "<style>body{font-family:system-ui,sans-serif;margin:4em auto;max-width:32em;}</style>",
    "</head><body><h1>Unknown sign-in</h1>",
    "<p>This link does not belong to the sign-in in progress. Use the sign-in page the ",
    "application opened most recently.</p></body></html>"
);

const BAD_REQUEST: &str = "<!doctype html><title>Bad request</title>";
const NOT_FOUND: &str = "<!doctype html><title>Not found</title>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /callback?code=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/callback?code=1"))
        );
        for garbage in [
            &b""[..],
            b"\r\n\r\n",
            b"GET\r\n",
            b"GET /x\r\n",
            b"GET /x HTTP/2\r\n",
            b"GET x HTTP/1.1\r\n",
            b"GET /x HTTP/1.1 extra\r\n",
            b"\xff\xfe /x HTTP/1.1\r\n",
        ] {
            assert_eq!(request_line(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            html_escape("<script>alert('x')&\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&amp;&quot;&lt;/script&gt;"
        );
    }
}
