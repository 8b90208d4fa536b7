//! `HttpClient::with_root_certificates`: a portal behind a private CA is
//! trusted with its PEM bundle, on top of the platform's roots, and never by
//! turning verification off. A real rustls server on loopback, with a CA and
//! a certificate made by `openssl` at test time.
#![cfg(feature = "__tls")]

mod tls_support;

use arcgis_auth_core::{ErrorKind, HttpClient};
use tls_support::{pki, serve};

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
