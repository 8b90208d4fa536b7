//! No web-tier secret (a Basic password or its header, a private key) and
//! no token appears in any log line, span or error of a web-tier sign-in,
//! its requests and its refusals, with every level on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "capture/mod.rs"]
mod capture;

use std::sync::Arc;

use arcgis_auth_core::{
    BasicCredentials, ClientCertificate, ExposeSecret, HttpClient, SecretString,
};
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::WebTierSignIn;
use arcgis_auth_storage::MemoryStore;
use arcgis_auth_testkit::{FakePortal, TestCa, WebTier};
use base64::Engine as _;
use capture::Capture;

const USER: &str = "CORP\\jdoe";
const PW: &str = "directory-pw-0919";
const REFERER: &str = "https://app.example.com";

#[tokio::test]
async fn no_web_tier_secret_or_token_is_logged() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut texts = Vec::new();
    let mut tokens = Vec::new();

    // HTTP Basic: a sign-in, a request, and a refused password.
    let portal = FakePortal::builder()
        .web_tier(WebTier::basic("GIS").user(USER, PW))
        .start()
        .await;
    let origin = portal.portal().origin().clone();
    let http = HttpClient::new()
        .unwrap()
        .with_web_tier(
            BasicCredentials::new(USER, PW.to_owned().into()).unwrap(),
            origin.clone(),
        )
        .unwrap();
    let signer = WebTierSignIn::new(portal.portal(), http.clone(), REFERER).unwrap();
    let signed_in = signer.sign_in().await.unwrap();
    tokens.push(signed_in.token().access_token().expose_secret().to_owned());
    texts.push(format!("{signed_in:?}"));
    let manager = signed_in
        .into_manager(Arc::new(MemoryStore::default()), "k")
        .await
        .unwrap();
    let client = ArcGisAuth::new(
        manager.clone(),
        TokenRouting::new(portal.portal()),
        http.clone(),
    )
    .into_client()
    .unwrap();
    texts.push(format!("{client:?}"));
    let _ = client
        .get(format!("{}?f=json", portal.secured_item_url("abc")))
        .header("Referer", REFERER)
        .send()
        .await
        .unwrap();
    let wrong = HttpClient::new()
        .unwrap()
        .with_web_tier(
            BasicCredentials::new(USER, "wrong-pw-4471".to_owned().into()).unwrap(),
            origin,
        )
        .unwrap();
    let err = WebTierSignIn::new(portal.portal(), wrong, REFERER)
        .unwrap()
        .sign_in()
        .await
        .unwrap_err();
    texts.push(format!("{err} {err:?}"));

    // A client certificate: a sign-in, and a certificate from another CA.
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let pki = FakePortal::builder()
        .web_tier(WebTier::client_certificate(&ca))
        .start()
        .await;
    let alice = ca.client_certificate("alice").unwrap();
    let stranger = TestCa::new("Other")
        .unwrap()
        .client_certificate("alice")
        .unwrap();
    for cert in [&alice, &stranger] {
        let key = SecretString::from(cert.key_pem.clone());
        let identity =
            ClientCertificate::from_pem(cert.cert_pem.as_bytes(), &key, "alice.pem").unwrap();
        texts.push(format!("{identity:?}"));
        let http = HttpClient::with_root_certificates(ca.ca_pem().as_bytes())
            .unwrap()
            .with_web_tier(identity, pki.portal().origin().clone())
            .unwrap();
        texts.push(format!("{http:?}"));
        match WebTierSignIn::new(pki.portal(), http, REFERER)
            .unwrap()
            .sign_in()
            .await
        {
            Ok(s) => tokens.push(s.token().access_token().expose_secret().to_owned()),
            Err(e) => texts.push(format!("{e} {e:?}")),
        }
    }

    let logs = capture.text();
    assert!(logs.contains("signed in through the web tier"), "{logs}");
    texts.push(logs);
    let basic_header = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PW}"));
    let key_body = alice.key_pem.lines().nth(1).unwrap().to_owned();
    for text in &texts {
        for secret in [
            PW,
            "wrong-pw-4471",
            basic_header.as_str(),
            "PRIVATE KEY",
            key_body.as_str(),
        ]
        .into_iter()
        .chain(tokens.iter().map(String::as_str))
        {
            assert!(!text.contains(secret), "`{secret}` in: {text}");
        }
    }
}
