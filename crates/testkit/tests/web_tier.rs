//! The web tier in front of the fake portal and its servers: HTTP Basic
//! against a user table, and real rustls that requires a client certificate
//! from a test CA made at test time; `generateToken` with `request=getToken`.
#![allow(clippy::unwrap_used)]

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_testkit::{FakePortal, TestCa, TestCertificate, WebTier};
use serde_json::Value;

const USER: &str = "CORP\\jdoe";
const PW: &str = "directory-pw";

async fn basic_portal() -> FakePortal {
    FakePortal::builder()
        .federated_server("server")
        .web_tier(WebTier::basic("GIS Directory").user(USER, PW))
        .start()
        .await
}

fn get_token_form(referer: &str) -> Vec<(&'static str, String)> {
    vec![
        ("request", "getToken".into()),
        ("referer", referer.into()),
        ("expiration", "60".into()),
        ("f", "json".into()),
    ]
}

#[tokio::test]
async fn basic_refuses_anonymous_and_wrong_passwords_with_a_challenge() {
    let portal = basic_portal().await;
    let http = reqwest::Client::new();
    let info = portal.url("info?f=json");
    let anonymous = http.get(&info).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        r#"Basic realm="GIS Directory""#
    );
    let wrong = http
        .get(&info)
        .basic_auth(USER, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert_eq!(portal.web_tier_refusals(), 2);
    // The refused requests never reached ArcGIS.
    assert_eq!(portal.calls().total(), 0);
    let ok = http
        .get(&info)
        .basic_auth(USER, Some(PW))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Servers stand behind the same web tier.
    let server = portal.server("server").unwrap();
    let info = http.get(server.info_url()).send().await.unwrap();
    assert_eq!(info.status(), 401);
}

#[tokio::test]
async fn get_token_mints_for_the_web_tier_user_and_only_for_them() {
    let portal = basic_portal().await;
    let http = reqwest::Client::new();
    let answer: Value = http
        .post(portal.url("generateToken"))
        .basic_auth(USER, Some(PW))
        .form(&get_token_form("https://app.example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["token"].as_str().unwrap().to_owned();
    let issued = portal.issued_tokens();
    let mine = issued
        .iter()
        .find(|t| t.token.expose_secret() == token)
        .unwrap();
    assert_eq!(mine.username.as_deref(), Some(USER));
    // The token works with the web-tier credential (token in X-Esri-Authorization).
    let me: Value = http
        .get(portal.url("community/self?f=json"))
        .basic_auth(USER, Some(PW))
        .header("X-Esri-Authorization", format!("Bearer {token}"))
        .header("Referer", "https://app.example.com")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], USER, "{me}");

    // Without a web tier, request=getToken without a password is refused.
    let plain = FakePortal::start().await;
    let refused: Value = http
        .post(plain.url("generateToken"))
        .form(&get_token_form("https://app.example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], 400, "{refused}");
    assert!(plain.issued_tokens().is_empty());
}

fn client(ca: &TestCa, cert: Option<&TestCertificate>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap()]);
    if let Some(cert) = cert {
        let pem = format!("{}\n{}", cert.cert_pem, cert.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn client_certificates_are_verified_and_name_the_user() {
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let portal = FakePortal::builder()
        .federated_server("server")
        .web_tier(WebTier::client_certificate(&ca).open_server_info())
        .start()
        .await;
    assert!(portal.portal_url().starts_with("https://127.0.0.1:"));
    let info = portal.url("info?f=json");

    // No certificate: the handshake fails, nothing reaches ArcGIS.
    let err = client(&ca, None).get(&info).send().await.unwrap_err();
    assert!(
        format!("{err:?}").contains("CertificateRequired"),
        "{err:?}"
    );
    // An expired certificate and one from another CA are refused too.
    let expired = ca.expired_client_certificate("alice").unwrap();
    assert!(client(&ca, Some(&expired)).get(&info).send().await.is_err());
    let other_ca = TestCa::new("Another CA").unwrap();
    let stranger = other_ca.client_certificate("alice").unwrap();
    assert!(
        client(&ca, Some(&stranger))
            .get(&info)
            .send()
            .await
            .is_err()
    );
    assert_eq!(portal.calls().total(), 0);

    // Alice's certificate: through, and getToken mints a token for her.
    let alice = ca.client_certificate("alice").unwrap();
    let http = client(&ca, Some(&alice));
    assert_eq!(http.get(&info).send().await.unwrap().status(), 200);
    let answer: Value = http
        .post(portal.url("generateToken"))
        .form(&get_token_form("https://app.example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = answer["token"].as_str().unwrap();
    let issued = portal.issued_tokens();
    assert_eq!(
        issued
            .iter()
            .find(|t| t.token.expose_secret() == token)
            .and_then(|t| t.username.as_deref()),
        Some("alice")
    );
    // A client cannot claim a user with the testkit's internal header.
    let forged: Value = client(&ca, Some(&ca.client_certificate("mallory").unwrap()))
        .post(portal.url("generateToken"))
        .header("x-testkit-web-user", "alice")
        .form(&get_token_form("https://app.example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let forged = forged["token"].as_str().unwrap();
    assert_eq!(
        portal
            .issued_tokens()
            .iter()
            .find(|t| t.token.expose_secret() == forged)
            .and_then(|t| t.username.clone())
            .as_deref(),
        Some("mallory")
    );

    // The server's rest/info is open; its services need the certificate.
    let server = portal.server("server").unwrap();
    assert!(server.root_url().starts_with("https://127.0.0.1:"));
    let anonymous = client(&ca, None);
    let info: Value = anonymous
        .get(format!("{}?f=json", server.info_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["owningSystemUrl"], portal.url_root(), "{info}");
    let services = anonymous
        .get(server.service_url("Hosted/Parcels/FeatureServer/0/query"))
        .send()
        .await
        .unwrap();
    assert_eq!(services.status(), 403);
}
