//! `HttpClient::with_root_certificates`: a portal behind a private CA is
//! trusted with its PEM bundle, on top of the platform's roots, and never by
//! turning verification off. A real rustls server on loopback, with a CA and
//! a certificate made by `openssl` at test time.
#![cfg(feature = "__tls")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use arcgis_auth_core::{ErrorKind, HttpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A CA, and a certificate it signs for `localhost` and `127.0.0.1`.
struct Pki {
    _dir: tempfile::TempDir,
    ca_pem: Vec<u8>,
    other_ca_pem: Vec<u8>,
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

fn pki() -> Pki {
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

/// An HTTPS server on loopback answering every connection with one small
/// JSON answer; returns its `https://localhost:PORT/` URL.
async fn serve(pki: &Pki) -> String {
    let certs = CertificateDer::pem_slice_iter(&pki.server_pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(&pki.server_key).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
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

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_its_bundle_is_given() {
    let pki = pki();
    let url = serve(&pki).await;

    // The platform's roots do not know the private CA: refused.
    let plain = HttpClient::new().expect("client");
    let err = plain.reqwest().get(&url).send().await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // Another private CA does not help either.
    let wrong = HttpClient::with_root_certificates(&pki.other_ca_pem).expect("client");
    assert!(wrong.reqwest().get(&url).send().await.is_err());

    // With the CA's bundle: trusted, and the answer arrives.
    let trusting = HttpClient::with_root_certificates(&pki.ca_pem).expect("client");
    let answer = trusting.reqwest().get(&url).send().await.expect("trusted");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), r#"{"ok":true}"#);

    // A bundle of several certificates (the other CA first) works too.
    let mut both = pki.other_ca_pem.clone();
    both.extend_from_slice(&pki.ca_pem);
    let bundle = HttpClient::with_root_certificates(&both).expect("client");
    assert_eq!(
        bundle
            .reqwest()
            .get(&url)
            .send()
            .await
            .expect("trusted")
            .status(),
        200
    );
}

#[test]
fn a_bundle_without_a_certificate_is_invalid_input() {
    for bad in [
        &b""[..],
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let err = HttpClient::with_root_certificates(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
        assert!(err.to_string().contains("PEM"), "{err}");
    }
}
