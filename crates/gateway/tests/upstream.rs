//! The upstream client: HTTPS trusted through `ca_bundle`, HTTP/2 or
//! HTTP/1.1 by ALPN, the system proxy settings (a CONNECT tunnel for https,
//! absolute-form requests for http, the proxy's credentials sent), and a
//! body that pauses longer than the upstream timeout cut off.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcgis_auth_gateway::{Config, Gateway};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the HTTPS upstream answers: this many bytes.
const BODY_LEN: usize = 200 * 1024;

/// An HTTPS upstream on 127.0.0.1 whose certificate (for `localhost` and
/// `127.0.0.1`) a CA made here signed; it offers `alpn` and records each
/// request as `VERSION PATH`.
struct TlsUpstream {
    port: u16,
    ca_pem: String,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn tls_upstream(alpn: &[&[u8]]) -> TlsUpstream {
    let mut ca = CertificateParams::new(Vec::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer =
        CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("the CA");
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("the server certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("the server's TLS config");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    record.lock().expect("lock").push(format!(
                        "{:?} {}",
                        req.version(),
                        req.uri().path()
                    ));
                    async move {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(vec![
                                b'y';
                                BODY_LEN
                            ]))))
                    }
                });
                let io = TokioIo::new(tls);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    TlsUpstream {
        port,
        ca_pem: issuer.pem(),
        seen,
    }
}

/// Writes `text` (with `ca_bundle` pointing at `ca_pem` when given) to a
/// `gateway.toml` in `dir`.
fn write_config(dir: &tempfile::TempDir, text: &str, ca_pem: Option<&str>) -> std::path::PathBuf {
    let mut text = text.to_owned();
    if let Some(pem) = ca_pem {
        let bundle = dir.path().join("ca.pem");
        std::fs::write(&bundle, pem).expect("write the bundle");
        text = format!("ca_bundle = {:?}\n{text}", bundle.display().to_string());
    }
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A gateway in this process, served on a loopback port: its base URL.
async fn gateway(path: &std::path::Path) -> String {
    let config = Config::load(path).expect("valid config");
    let gateway = Gateway::new(config).await.expect("the gateway");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(arcgis_auth_gateway::serve(
        listener,
        gateway,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

fn tls_route(port: u16, host: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\n[[routes]]\nurl = \"https://{host}:{port}/tls\"\nmatch_all = true\n"
    )
}

#[tokio::test]
async fn https_upstreams_are_trusted_through_the_ca_bundle_and_alpn_picks_the_version() {
    for (alpn, version) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], "HTTP/2.0"),
        (&[b"http/1.1".as_slice()][..], "HTTP/1.1"),
    ] {
        let up = tls_upstream(alpn).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let base = gateway(&write_config(
            &dir,
            &tls_route(up.port, "127.0.0.1"),
            Some(&up.ca_pem),
        ))
        .await;
        let client = reqwest::Client::new();
        for n in 0..3 {
            let r = client
                .get(format!(
                    "{base}/proxy?https://127.0.0.1:{}/tls/q{n}",
                    up.port
                ))
                .send()
                .await
                .expect("the gateway answers");
            assert_eq!(r.status(), 200);
            let body = r.bytes().await.expect("the whole body");
            assert_eq!(body.len(), BODY_LEN);
            assert!(body.iter().all(|&b| b == b'y'));
        }
        let seen = up.seen.lock().expect("lock").clone();
        assert_eq!(
            seen,
            ["/tls/q0", "/tls/q1", "/tls/q2"]
                .map(|p| format!("{version} {p}"))
                .to_vec()
        );
    }
}

#[tokio::test]
async fn an_https_upstream_the_roots_do_not_trust_is_502() {
    let up = tls_upstream(&[b"http/1.1"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // The platform's roots only: the test CA is not among them.
    let base = gateway(&write_config(&dir, &tls_route(up.port, "127.0.0.1"), None)).await;
    let r = reqwest::get(format!("{base}/proxy?https://127.0.0.1:{}/tls/x", up.port))
        .await
        .expect("the gateway answers");
    assert_eq!(r.status(), 502);
    assert!(up.seen.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn a_ca_bundle_without_certificates_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        &tls_route(1, "127.0.0.1"),
        Some("not a certificate\n"),
    );
    let config = Config::load(&path).expect("the file parses");
    let Err(err) = Gateway::new(config).await else {
        panic!("a bundle without certificates was accepted");
    };
    assert!(err.to_string().contains("ca_bundle"), "{err}");
}

/// A forward proxy: a CONNECT is tunnelled to its target, any other request
/// answered `via proxy` itself. Each request's first line and its
/// `Proxy-Authorization` are recorded.
async fn forward_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let first = head.lines().next().unwrap_or("").to_owned();
                let auth = head
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(n, _)| n.eq_ignore_ascii_case("proxy-authorization"))
                            .map(|(_, v)| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                record
                    .lock()
                    .expect("lock")
                    .push(format!("{first} | {auth}"));
                if let Some(target) = first
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split(' ').next())
                {
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                } else {
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nvia proxy",
                        )
                        .await;
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn the_system_proxy_settings_carry_upstream_requests() {
    let (proxy, seen) = forward_proxy().await;
    let up = tls_upstream(&[b"h2", b"http/1.1"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}[[routes]]\nurl = \"http://upstream.invalid/open\"\nmatch_all = true\n",
        tls_route(up.port, "localhost")
    );
    let path = write_config(&dir, &text, Some(&up.ca_pem));
    let proxy_url = format!("http://bench:s3cret@{proxy}");
    let env = [
        ("HTTP_PROXY", proxy_url.as_str()),
        ("HTTPS_PROXY", proxy_url.as_str()),
        ("http_proxy", ""),
        ("https_proxy", ""),
        ("ALL_PROXY", ""),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ];
    let (base, _child) = common::binary::start_binary(&path, &env).await;
    let client = reqwest::Client::new();

    // http: the request goes to the proxy whole, with the proxy's credentials.
    let r = client
        .get(format!(
            "{base}/proxy?http://upstream.invalid/open/x?f=json"
        ))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "via proxy");
    // https: a CONNECT tunnel, then TLS to the upstream itself (HTTP/2 inside).
    let r = client
        .get(format!("{base}/proxy?https://localhost:{}/tls/y", up.port))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").len(), BODY_LEN);

    // "bench:s3cret", Basic.
    let auth = "Basic YmVuY2g6czNjcmV0";
    assert_eq!(
        seen.lock().expect("lock").clone(),
        [
            format!("GET http://upstream.invalid/open/x?f=json HTTP/1.1 | {auth}"),
            format!("CONNECT localhost:{} HTTP/1.1 | {auth}", up.port),
        ]
    );
    assert_eq!(
        up.seen.lock().expect("lock").clone(),
        ["HTTP/2.0 /tls/y".to_owned()]
    );
}

#[tokio::test]
async fn a_body_that_pauses_longer_than_the_upstream_timeout_is_cut_off() {
    // Headers and half the body at once, then nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: 10\r\n\r\nhello",
                    )
                    .await;
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "listen = \"127.0.0.1:0\"\nupstream_timeout_seconds = 1\n[[routes]]\nurl = \"http://127.0.0.1:{port}/stall\"\nmatch_all = true\n"
    );
    let base = gateway(&write_config(&dir, &text, None)).await;
    let started = std::time::Instant::now();
    let r = reqwest::get(format!("{base}/proxy?http://127.0.0.1:{port}/stall/x"))
        .await
        .expect("the headers come at once");
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.is_err(), "the body is cut off");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
}
