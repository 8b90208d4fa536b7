//! Shared by the TLS tests: a CA and a server certificate made by the
//! `openssl` command at test time, and HTTPS servers on loopback with real
//! rustls.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA, and a certificate it signs for `localhost` and `127.0.0.1`.
pub struct Pki {
    _dir: tempfile::TempDir,
    pub ca_pem: Vec<u8>,
    pub other_ca_pem: Vec<u8>,
    server_pem: Vec<u8>,
    server_key: Vec<u8>,
}

fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect(
            "the openssl command (Debian: apt-get install openssl; cargo xtask ci installs it)",
        );
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let key = "-new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
    for ca in ["ca", "other-ca"] {
        openssl(
            d,
            &format!(
                "req -x509 {key} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN=test-{ca} \
                 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
            ),
        );
    }
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    openssl(
        d,
        &format!("req {key} -keyout server.key -out server.csr -subj /CN=localhost"),
    );
    openssl(
        d,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 2 \
         -extfile server.ext -out server.pem",
    );
    let read = |name: &str| std::fs::read(d.join(name)).expect(name);
    Pki {
        ca_pem: read("ca.pem"),
        other_ca_pem: read("other-ca.pem"),
        server_pem: read("server.pem"),
        server_key: read("server.key"),
        _dir: dir,
    }
}

/// What the server asks of clients in its handshake.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClientAuth {
    /// Nothing.
    None,
    /// A certificate from the server's own CA; the handshake fails without.
    Required,
    /// A certificate from that CA if the client has one.
    Optional,
}

/// An HTTPS server on loopback answering every connection with one small
/// JSON answer; returns its `https://localhost:PORT/` URL.
pub async fn serve(pki: &Pki) -> String {
    serve_with(pki, ClientAuth::None, true).await
}

/// An HTTPS server on loopback asking `auth` of clients; after the
/// handshake it reads the request and, when `answer`, answers it with one
/// small JSON answer, else closes the connection. Returns its
/// `https://localhost:PORT/` URL.
pub async fn serve_with(pki: &Pki, auth: ClientAuth, answer: bool) -> String {
    let certs = CertificateDer::pem_slice_iter(&pki.server_pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(&pki.server_key).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions");
    let config = if auth == ClientAuth::None {
        config.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(&pki.ca_pem) {
            roots.add(ca.expect("CA")).expect("CA added");
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        );
        let verifier = if auth == ClientAuth::Optional {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        config.with_client_cert_verifier(verifier.build().expect("client verifier"))
    };
    let config = config.with_single_cert(certs, key).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                if !answer {
                    return;
                }
                let body = br#"{"ok":true}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    format!("https://localhost:{port}/")
}
