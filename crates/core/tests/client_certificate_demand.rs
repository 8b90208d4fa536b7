//! A server that demands a TLS client certificate is recognised as such on
//! every request, not only when its alert wins the TLS 1.3 race (the alert
//! travels while the client already sends its request, and the client often
//! sees only a closed connection). Real rustls servers on loopback; the
//! CA and certificates are made by `openssl` at test time.
#![cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
#![allow(clippy::unwrap_used)]

mod tls_support;

use arcgis_auth_core::{ErrorKind, HttpClient, Portal, SignInMethod};
use tls_support::{ClientAuth, pki, serve_with};
use url::Url;

/// Enough requests that the race, which the alert loses about one time in
/// three on a loopback connection, shows if the classification relied on it.
const ROUNDS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demanded_certificate_is_named_on_every_request() {
    let pki = pki();
    let url = serve_with(&pki, ClientAuth::Required, true).await;
    let portal = Portal::parse(&format!("{url}portal")).unwrap();
    let info = Url::parse(&format!("{url}portal/sharing/rest/portals/self")).unwrap();
    for round in 0..ROUNDS {
        // A fresh client each time: a fresh connection, a fresh race.
        let http = HttpClient::with_root_certificates(&pki.ca_pem).unwrap();
        let security = http.probe_portal(&portal).await.unwrap();
        assert_eq!(
            security.sign_ins(),
            vec![SignInMethod::ClientCertificate],
            "round {round}"
        );
        let err = HttpClient::with_root_certificates(&pki.ca_pem)
            .unwrap()
            .get_json(&info, None)
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::WebTierCredentialRequired,
            "round {round}: {err}"
        );
        assert!(err.to_string().contains("login pki"), "{err}");
    }
}

#[tokio::test]
async fn a_connection_closed_by_a_server_that_asked_for_nothing_stays_a_transport_error() {
    let pki = pki();
    let url = serve_with(&pki, ClientAuth::None, false).await;
    let portal = Portal::parse(&format!("{url}portal")).unwrap();
    let http = HttpClient::with_root_certificates(&pki.ca_pem).unwrap();
    let err = http.probe_portal(&portal).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
}

#[tokio::test]
async fn a_certificate_merely_accepted_is_no_demand() {
    let pki = pki();
    // The server asks for a certificate but answers without one.
    let url = serve_with(&pki, ClientAuth::Optional, true).await;
    let info = Url::parse(&format!("{url}portal/sharing/rest/info")).unwrap();
    let http = HttpClient::with_root_certificates(&pki.ca_pem).unwrap();
    let body = http.get_json(&info, None).await.unwrap();
    assert_eq!(body, br#"{"ok":true}"#);
}

#[tokio::test]
async fn an_untrusted_server_is_not_taken_for_a_certificate_demand() {
    let pki = pki();
    let url = serve_with(&pki, ClientAuth::Required, true).await;
    let portal = Portal::parse(&format!("{url}portal")).unwrap();
    let err = HttpClient::with_root_certificates(&pki.other_ca_pem)
        .unwrap()
        .probe_portal(&portal)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.to_string().contains("with_root_certificates"), "{err}");
}
