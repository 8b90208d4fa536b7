//! The middleware on answers without a `Content-Length` (chunked transfer
//! encoding), which wiremock never sends: a 498 spread over several chunks is
//! still found, a long JSON answer streams on whole, and every answer keeps
//! its URL and its connection info.

use super::support::*;
use arcgis_auth_core::HttpClient;
use arcgis_auth_core::Portal;
use arcgis_auth_flows::Renewal;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_storage::SessionKind;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A loopback HTTP/1.1 server that answers `GET /portal/sharing/rest/<what>`
/// with chunked JSON: `small-498` is a 498 error body (for `token-0`; `{"ok":true}`
/// for any other token) sent 7 bytes per chunk; `long` is a 200 KiB JSON
/// answer in 4 KiB chunks.
async fn chunked_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    addr
}

fn long_json() -> String {
    let mut body = String::from(r#"{"features":["#);
    while body.len() < 200 * 1024 {
        body.push_str(r#"{"attributes":{"OBJECTID":498,"NAME":"invalid_token"}},"#);
    }
    body.push_str("{}]}");
    body
}

async fn serve(mut stream: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end + 4);
        let rejected = head.contains("x-esri-authorization: bearer token-0");
        let (body, piece) = if head.starts_with("get /portal/sharing/rest/small-498") {
            let body = if rejected {
                r#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#.to_owned()
            } else {
                r#"{"ok":true}"#.to_owned()
            };
            (body, 7)
        } else {
            (long_json(), 4096)
        };
        let mut out =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                .to_vec();
        for part in body.as_bytes().chunks(piece) {
            out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn setup() -> (
    SocketAddr,
    Session,
    reqwest_middleware::ClientWithMiddleware,
) {
    let addr = chunked_server().await;
    let portal = Portal::parse(&format!("http://{addr}/portal")).unwrap();
    let session = session(portal.clone(), SessionKind::App, Renewal::SignInAgain).await;
    let client = ArcGisAuth::new(
        session.manager.clone(),
        TokenRouting::new(portal),
        HttpClient::new().unwrap(),
    )
    .into_client()
    .unwrap();
    (addr, session, client)
}

#[tokio::test]
async fn a_498_spread_over_many_chunks_is_found_and_retried() {
    let (addr, session, client) = setup().await;
    let url = format!("http://{addr}/portal/sharing/rest/small-498?f=json");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.url().as_str(), url);
    assert_eq!(r.remote_addr(), Some(addr));
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);
    assert_eq!(session.source.calls(), 1, "one renewal, then the retry");
}

#[tokio::test]
async fn a_long_chunked_answer_streams_on_whole() {
    let (addr, session, client) = setup().await;
    let url = format!("http://{addr}/portal/sharing/rest/long?f=json");
    let mut r = client.get(&url).send().await.unwrap();
    // Past the peek limit: handed back as it arrives, never taken for an
    // error (it names 498 and invalid_token in its data).
    assert_eq!(r.url().as_str(), url);
    assert_eq!(r.remote_addr(), Some(addr));
    assert_eq!(r.content_length(), None);
    let mut got = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, long_json().as_bytes());
    assert_eq!(session.source.calls(), 0, "no renewal");
}
