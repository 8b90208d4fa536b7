//! Streaming keeps the gateway's memory flat: 64 MiB through the real binary
//! grow its resident set by far less than the body (a memory bound, read from
//! `/proc/<pid>/status`; nothing here is timed). `cargo xtask bench` measures
//! the same with 1 GiB on the release build.
#![cfg(target_os = "linux")]

mod common;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use arcgis_auth_testkit::{App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal};
use bytes::Bytes;
use common::binary::start_binary;
use http_body::{Frame, SizeHint};

const BODY_LEN: u64 = 64 << 20;
const CHUNK_LEN: usize = 64 << 10;
/// What the resident set may grow by while the body streams through.
const BOUND_KIB: u64 = 50 << 10;

/// `left` bytes made of one shared chunk, never held whole; with `exact`
/// false, its length is unknown (sent chunked).
struct Generated {
    left: u64,
    exact: bool,
    chunk: Bytes,
}

impl http_body::Body for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK_LEN as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn size_hint(&self) -> SizeHint {
        if self.exact {
            SizeHint::with_exact(self.left)
        } else {
            SizeHint::default()
        }
    }
}

/// A loopback upstream: `/…/bytes` answers 64 MiB of octet-stream with a
/// length, `/…/json` 64 MiB labelled JSON without one (the case the gateway
/// reads the first MiB of, looking for a 498, before streaming the rest),
/// `/…/small` two bytes.
async fn upstream() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(|uri: http::Uri| async move {
        let json = uri.path().ends_with("/json");
        let small = uri.path().ends_with("/small");
        let body = Generated {
            left: if small { 2 } else { BODY_LEN },
            exact: !json,
            chunk: Bytes::from(vec![b' '; CHUNK_LEN]),
        };
        let kind = if json {
            "application/json"
        } else {
            "application/octet-stream"
        };
        http::Response::builder()
            .header(http::header::CONTENT_TYPE, kind)
            .body(axum::body::Body::new(body))
            .expect("a response")
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn rss_and_hwm(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn download(client: &reqwest::Client, url: &str) -> u64 {
    let mut response = client.get(url).send().await.expect("an answer");
    assert_eq!(response.status(), 200, "{url}");
    let mut total = 0u64;
    while let Some(chunk) = response.chunk().await.expect("the body streams to its end") {
        total += chunk.len() as u64;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_download_through_the_binary_keeps_its_memory_flat() {
    let portal = FakePortal::builder()
        .app(App::confidential(
            CONFIDENTIAL_CLIENT_ID,
            CONFIDENTIAL_CLIENT_SECRET,
        ))
        .start()
        .await;
    let up = upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
portal = "{portal}"

[[apps]]
name = "geo"
client_id = "{CONFIDENTIAL_CLIENT_ID}"
client_secret_env = "GEO_SECRET"

[[routes]]
url = "http://{up}/open"
match_all = true

[[routes]]
url = "http://{up}/app"
match_all = true
auth = "app:geo"
"#,
            portal = portal.portal_url()
        ),
    )
    .expect("write the config");
    let (base, child) = start_binary(
        &config,
        &[
            ("GEO_SECRET", CONFIDENTIAL_CLIENT_SECRET),
            ("RUST_LOG", "warn"),
        ],
    )
    .await;
    let pid = child.id().expect("a pid");
    let client = reqwest::Client::new();
    // Warm: the connection pools exist and the app's token is fetched.
    let warm = |route: &str| format!("{base}/proxy?http://{up}/{route}/warm/small");
    let _ = client
        .get(warm("open"))
        .send()
        .await
        .expect("warm")
        .bytes()
        .await;
    let _ = client
        .get(warm("app"))
        .send()
        .await
        .expect("warm")
        .bytes()
        .await;
    let (idle, _) = rss_and_hwm(pid);

    for path in ["open/data/bytes", "app/data/bytes", "app/data/json"] {
        let url = format!("{base}/proxy?http://{up}/{path}");
        assert_eq!(download(&client, &url).await, BODY_LEN, "{path}: all of it");
        let (_, peak) = rss_and_hwm(pid);
        eprintln!("{path}: idle {idle} KiB, peak {peak} KiB");
        assert!(
            peak.saturating_sub(idle) < BOUND_KIB,
            "{path}: the gateway's peak resident set grew by {} KiB (idle {idle} KiB, peak {peak} KiB) \
             for a {} MiB body",
            peak.saturating_sub(idle),
            BODY_LEN >> 20
        );
    }
    let sign_ins = portal
        .received_requests()
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/oauth2/token"))
        .count();
    assert_eq!(sign_ins, 1, "the app route's token was fetched once");
}
