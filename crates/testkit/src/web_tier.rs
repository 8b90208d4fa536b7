//! A web tier in front of the fake portal and its servers, as a Web Adaptor
//! with PKI, LDAP or IWA would be: HTTP Basic against a user table, TLS that
//! requires a client certificate from a test CA, or Kerberos (`Negotiate`)
//! verified against a keytab.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use wiremock::{Request, ResponseTemplate};

use crate::error::{Error, ErrorKind};
use crate::pki::TestCa;

/// The header the TLS front hands the verified certificate's user to the
/// fake in (stripped from what clients send).
pub(crate) const WEB_USER_HEADER: &str = "x-testkit-web-user";

/// Which web tier stands in front of the fake; pass it to
/// [`FakePortalBuilder::web_tier`](crate::FakePortalBuilder::web_tier).
///
/// ```no_run
/// # async fn demo() -> Result<(), arcgis_auth_testkit::Error> {
/// use arcgis_auth_testkit::{FakePortal, TestCa, WebTier};
///
/// // HTTP Basic against a user table:
/// let basic = FakePortal::builder()
///     .federated_server("server")
///     .web_tier(WebTier::basic("GIS Directory").user("CORP\\jdoe", "directory-pw"))
///     .start()
///     .await;
///
/// // TLS that requires a client certificate from a test CA:
/// let ca = TestCa::new("Test Enterprise CA")?;
/// let pki = FakePortal::builder()
///     .web_tier(WebTier::client_certificate(&ca))
///     .start()
///     .await;
/// let alice = ca.client_certificate("alice")?;
/// # let _ = (basic, pki, alice);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct WebTier {
    pub(crate) mode: Mode,
    pub(crate) open_server_info: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Mode {
    Basic {
        realm: String,
        users: Vec<(String, String)>,
    },
    ClientCertificate(TestCa),
    #[cfg(feature = "kerberos")]
    Negotiate,
}

impl WebTier {
    /// HTTP Basic in realm `realm`: every request needs
    /// `Authorization: Basic` for a user added with [`user`](Self::user);
    /// without one (or with a wrong password) the answer is 401 with
    /// `WWW-Authenticate: Basic realm="…"`.
    pub fn basic(realm: impl Into<String>) -> Self {
        WebTier {
            mode: Mode::Basic {
                realm: realm.into(),
                users: Vec::new(),
            },
            open_server_info: false,
        }
    }

    /// Adds a directory user to a Basic web tier (ignored by a certificate one).
    pub fn user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        if let Mode::Basic { users, .. } = &mut self.mode {
            users.push((username.into(), password.into()));
        }
        self
    }

    /// HTTPS that requires a client certificate issued by `ca`: the portal
    /// and every server listen on `https://127.0.0.1:PORT` with a server
    /// certificate from `ca` (trust [`TestCa::ca_pem`]), the handshake fails
    /// without a valid client certificate, and the certificate's subject
    /// becomes the web-tier user.
    pub fn client_certificate(ca: &TestCa) -> Self {
        WebTier {
            mode: Mode::ClientCertificate(ca.clone()),
            open_server_info: false,
        }
    }

    /// Kerberos (`Negotiate`, SPNEGO): every request needs `Authorization:
    /// Negotiate <token>` that a GSSAPI acceptor verifies against the
    /// process's default keytab (`KRB5_KTNAME`; see
    /// [`KerberosRealm::env`](crate::KerberosRealm::env)); the client
    /// principal (`jdoe@REALM`) becomes the web-tier user. Without a token,
    /// or with one the keytab cannot verify (a ticket for another service),
    /// the answer is 401 with `WWW-Authenticate: Negotiate`.
    ///
    /// The acceptor reads the keytab named by the environment the process
    /// started with: run the portal in a process started with the realm's
    /// environment, never `set_var` it in a multi-threaded test.
    #[cfg(feature = "kerberos")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
    pub fn negotiate() -> Self {
        WebTier {
            mode: Mode::Negotiate,
            open_server_info: false,
        }
    }

    /// Lets the servers' `rest/info` through without a web-tier credential
    /// (as sites that leave it anonymous do), so a client can learn which
    /// portal a server is federated with before sending it anything.
    pub fn open_server_info(mut self) -> Self {
        self.open_server_info = true;
        self
    }
}

/// What the web tier decided for one request.
pub(crate) enum Verdict {
    /// Through, as this user (`None`: no web tier, or an open endpoint).
    Pass(Option<String>),
    /// Stopped at the web tier with this answer.
    Refused(ResponseTemplate),
}

/// Checks `request` at the web tier. `open` is true for an endpoint left open.
pub(crate) fn check(tier: Option<&WebTier>, open: bool, request: &Request) -> Verdict {
    let Some(tier) = tier else {
        return Verdict::Pass(None);
    };
    match &tier.mode {
        Mode::Basic { realm, users } => {
            match basic_user(request) {
                Some((user, password))
                    if users.iter().any(|(u, p)| *u == user && *p == password) =>
                {
                    return Verdict::Pass(Some(user));
                }
                None if open => return Verdict::Pass(None),
                _ => {}
            }
            let challenge = format!("Basic realm=\"{}\"", realm.replace('"', "'"));
            Verdict::Refused(
                ResponseTemplate::new(401)
                    .insert_header("www-authenticate", challenge.as_str())
                    .set_body_raw(
                        "<html><body><h1>401 Unauthorized</h1></body></html>",
                        "text/html",
                    ),
            )
        }
        #[cfg(feature = "kerberos")]
        Mode::Negotiate => {
            let sent = request.headers.contains_key(http::header::AUTHORIZATION);
            match negotiate_user(request) {
                Some(user) => return Verdict::Pass(Some(user)),
                None if open && !sent => return Verdict::Pass(None),
                _ => {}
            }
            Verdict::Refused(
                ResponseTemplate::new(401)
                    .insert_header("www-authenticate", "Negotiate")
                    .set_body_raw(
                        "<html><body><h1>401 Unauthorized</h1></body></html>",
                        "text/html",
                    ),
            )
        }
        Mode::ClientCertificate(_) => {
            let user = request
                .headers
                .get(WEB_USER_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            match user {
                Some(user) => Verdict::Pass(Some(user)),
                None if open => Verdict::Pass(None),
                None => Verdict::Refused(ResponseTemplate::new(403).set_body_raw(
                    "<html><body><h1>403.7 Forbidden: client certificate required</h1></body></html>",
                    "text/html",
                )),
            }
        }
    }
}

/// The client principal of a valid `Authorization: Negotiate` token.
#[cfg(feature = "kerberos")]
fn negotiate_user(request: &Request) -> Option<String> {
    use libgssapi::context::{SecurityContext as _, ServerCtx};
    let value = request
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let encoded = value
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("negotiate "))
        .and_then(|_| value.get(10..))?;
    let token = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let mut ctx = ServerCtx::new(None);
    ctx.step(&token, None).ok()?;
    if !ctx.is_complete() {
        return None;
    }
    let name = ctx.source_name().ok()?;
    let display = name.display_name().ok()?;
    Some(String::from_utf8_lossy(&display).into_owned())
}

/// The user and password of an `Authorization: Basic` header.
fn basic_user(request: &Request) -> Option<(String, String)> {
    let value = request
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let encoded = value
        .trim()
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .and_then(|_| value.trim().get(6..))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// A running TLS front; stops when dropped.
pub(crate) struct Front {
    task: tokio::task::AbortHandle,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("the TLS web tier could not be set up ({what}: {e})"),
    )
}

/// Starts HTTPS on a loopback port that verifies client certificates from
/// `ca` (required, or optional when `optional`), and forwards each request
/// to the plain-HTTP fake at `backend` with the certificate's user in
/// [`WEB_USER_HEADER`]. Returns the front and its `https://127.0.0.1:PORT`.
pub(crate) async fn start_front(
    backend: SocketAddr,
    ca: &TestCa,
    optional: bool,
) -> Result<(Front, String), Error> {
    let server = ca.server_certificate()?;
    let certs = CertificateDer::pem_slice_iter(server.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error("server certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes())
        .map_err(|e| config_error("server key", e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.ca_der()))
        .map_err(|e| config_error("CA", e))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let verifier = if optional {
        verifier.allow_unauthenticated().build()
    } else {
        verifier.build()
    }
    .map_err(|e| config_error("client verifier", e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error("protocol versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| config_error("server certificate", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| config_error("bind", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| config_error("bind", e))?
        .port();
    let forwarder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| config_error("forwarding client", e))?;
    let ca = ca.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let forwarder = forwarder.clone();
            let ca = ca.clone();
            tokio::spawn(async move {
                // A refused certificate ends the handshake here, with rustls's alert.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|leaf| ca.subject_of(leaf.as_ref()));
                let service =
                    service_fn(move |req| forward(forwarder.clone(), backend, user.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok((
        Front {
            task: task.abort_handle(),
        },
        format!("https://127.0.0.1:{port}"),
    ))
}

/// Sends one request on to the fake and its answer back; a dropped
/// connection at the fake drops this one too.
async fn forward(
    client: reqwest::Client,
    backend: SocketAddr,
    user: Option<String>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut out = client.request(parts.method, format!("http://{backend}{path}"));
    for (name, value) in &parts.headers {
        if name == http::header::HOST
            || name == http::header::CONTENT_LENGTH
            || name.as_str() == WEB_USER_HEADER
        {
            continue;
        }
        out = out.header(name, value);
    }
    if let Some(user) = user
        && let Ok(value) = http::HeaderValue::from_str(&user)
    {
        out = out.header(WEB_USER_HEADER, value);
    }
    let answer = out.body(body).send().await.map_err(std::io::Error::other)?;
    let mut response = hyper::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name == http::header::TRANSFER_ENCODING
            || name == http::header::CONNECTION
            || name == http::header::CONTENT_LENGTH
        {
            continue;
        }
        response = response.header(name, value);
    }
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    response
        .body(Full::new(bytes))
        .map_err(std::io::Error::other)
}
