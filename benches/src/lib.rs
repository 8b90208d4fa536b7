//! # arcgis-auth-bench
//!
//! What the criterion benchmarks of arcgis-auth share: a minimal loopback
//! token endpoint (a few lines of tokio, so the baseline is not a mock
//! framework's overhead) and an [`OAuthClient`] for it (the benchmarks
//! renew through the flows crate's `test_util::AppCredentials`, core's real
//! `client_credentials` grant). The Redis benchmarks take their server from
//! `arcgis_auth_storage::test_util::RedisServer`.
//!
//! Run them with `cargo xtask bench`, which also writes
//! `target/bench-summary.json`; `docs/performance.md` explains the figures.
//!
//! ```
//! use arcgis_auth_bench::TokenEndpoint;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let endpoint = TokenEndpoint::start().await.unwrap();
//! let client = arcgis_auth_bench::oauth_client(&endpoint).unwrap();
//! let token = client.client_credentials(None).await.unwrap();
//! assert_eq!(endpoint.requests(), 1);
//! # let _ = token;
//! # });
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arcgis_auth_core::{HttpClient, OAuthClient, Portal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The fixed answer of [`TokenEndpoint`]: an app token valid for two hours.
pub const TOKEN_ANSWER: &str =
    r#"{"access_token":"bench-access-token","expires_in":7200,"username":"bench","ssl":false}"#;

/// The client id and secret [`oauth_client`] signs in with.
pub const CLIENT_ID: &str = "bench-client";

/// A loopback HTTP/1.1 server that answers every request with one fixed JSON
/// body ([`TOKEN_ANSWER`] unless started with [`TokenEndpoint::serving`];
/// keep-alive, `Content-Length`), counting requests.
///
/// It reads each request's headers and body (by `Content-Length`) and
/// nothing more: the cheapest honest token endpoint, so that what a benchmark
/// measures is the client, not the server.
#[derive(Debug)]
pub struct TokenEndpoint {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TokenEndpoint {
    /// Binds a free loopback port and serves [`TOKEN_ANSWER`] on the current
    /// Tokio runtime.
    pub async fn start() -> std::io::Result<TokenEndpoint> {
        Self::serving(TOKEN_ANSWER).await
    }

    /// As [`start`](Self::start), answering `body` (JSON) to every request.
    pub async fn serving(body: &'static str) -> std::io::Result<TokenEndpoint> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let _ = serve(stream, &counter, body).await;
                });
            }
        });
        Ok(TokenEndpoint {
            addr,
            requests,
            task,
        })
    }

    /// The portal whose sharing root is on this server.
    pub fn portal(&self) -> Portal {
        Portal::parse(&format!("http://{}/sharing/rest", self.addr))
            .unwrap_or_else(|e| unreachable!("a loopback sharing root is a portal: {e}"))
    }

    /// `http://127.0.0.1:<port>{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many requests were answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, counter: &AtomicUsize, body: &str) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
        body.len(),
        body
    );
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Read until a whole request (headers + body) is buffered.
        let request_len = loop {
            if let Some(len) = complete_request(&buf) {
                break len;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        };
        buf.drain(..request_len.min(buf.len()));
        counter.fetch_add(1, Ordering::SeqCst);
        stream.write_all(response.as_bytes()).await?;
    }
}

/// The length of the first complete HTTP request in `buf`, if there is one.
fn complete_request(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(buf.get(..head_end)?);
    let body_len = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let total = head_end + body_len;
    (buf.len() >= total).then_some(total)
}

/// An [`OAuthClient`] for the endpoint's portal, with a client secret (so it
/// can make `client_credentials` requests) and no proxy.
pub fn oauth_client(endpoint: &TokenEndpoint) -> arcgis_auth_core::Result<OAuthClient> {
    let http = HttpClient::from_builder(reqwest::Client::builder().no_proxy())?;
    Ok(OAuthClient::new(endpoint.portal(), CLIENT_ID, http)
        .with_client_secret("bench-client-secret".into()))
}

#[cfg(test)]
mod tests {
    use super::complete_request;

    #[test]
    fn finds_whole_requests_only() {
        let req = b"POST / HTTP/1.1\r\ncontent-length: 3\r\n\r\nabc";
        assert_eq!(complete_request(req), Some(req.len()));
        assert_eq!(complete_request(&req[..req.len() - 1]), None);
        assert_eq!(complete_request(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(complete_request(b"GET / HTTP/1.1\r\n"), None);
    }
}
