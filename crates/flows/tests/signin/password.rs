//! generateToken (username/password), against a wiremock portal.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::support::{
    T0, arc_clock, clock, fake_portal, forms, http, map, portal, portal_answering, store,
};
use arcgis_auth_core::{
    ErrorKind, Expiration, ExposeSecret, Portal, SecretString, Timestamp, TokenBinding,
};
use arcgis_auth_flows::signin::PasswordSignIn;
use arcgis_auth_flows::{FlowErrorKind, TokenManager};
use arcgis_auth_storage::SessionKind;
use arcgis_auth_testkit::{self as testkit, Endpoint, USERNAME};
use wiremock::ResponseTemplate;

const PASSWORD: &str = "correct horse battery staple";
const HOUR_MS: i64 = 3_600_000;

fn generated(token: &str, expires: i64) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"token": token, "expires": expires, "ssl": true}))
}

fn referer() -> TokenBinding {
    TokenBinding::Referer("https://app.example.com".into())
}

#[tokio::test]
async fn sign_in_posts_the_credentials_and_reads_the_expiry_in_milliseconds() {
    let server =
        portal_answering("generateToken", vec![generated("GT-1", T0 + HOUR_MS + 123)]).await;
    let clock = clock();
    let signer = PasswordSignIn::new(portal(&server), http(), referer())
        .with_expiration(Expiration::minutes(60))
        .with_clock(arc_clock(&clock));
    let signed_in = signer
        .sign_in("jdoe", SecretString::from(PASSWORD))
        .await
        .unwrap();

    assert_eq!(
        forms(&server).await,
        vec![map(&[
            ("username", "jdoe"),
            ("password", PASSWORD),
            ("client", "referer"),
            ("referer", "https://app.example.com"),
            ("expiration", "60"),
            ("f", "json"),
        ])]
    );
    let token = signed_in.token();
    assert_eq!(token.access_token().expose_secret(), "GT-1");
    assert_eq!(
        token.expires_at(),
        Timestamp::from_unix_millis(T0 + HOUR_MS + 123)
    );
    assert!(token.ssl());
    assert_eq!(token.username(), Some("jdoe"));
    let record = signed_in.record();
    assert_eq!(record.kind, SessionKind::GenerateToken);
    assert_eq!(record.username.as_deref(), Some("jdoe"));
    assert_eq!(record.referer.as_deref(), Some("https://app.example.com"));

    // The password is in memory only.
    assert!(!record.to_json().unwrap().contains("horse"));
    assert!(!format!("{signed_in:?}").contains("horse"));
    assert!(!format!("{:?}", signed_in.source()).contains("horse"));
    assert_eq!(signed_in.source().username(), Some("jdoe"));
}

#[tokio::test]
async fn ip_bindings_are_sent() {
    let server = portal_answering("generateToken", vec![generated("GT-1", T0 + HOUR_MS)]).await;
    let clock = clock();
    for binding in [
        TokenBinding::Ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        TokenBinding::RequestIp,
    ] {
        PasswordSignIn::new(portal(&server), http(), binding)
            .with_clock(arc_clock(&clock))
            .sign_in("jdoe", SecretString::from(PASSWORD))
            .await
            .unwrap();
    }
    let sent = forms(&server).await;
    assert_eq!(sent[0]["client"], "ip");
    assert_eq!(sent[0]["ip"], "203.0.113.7");
    assert_eq!(sent[1]["client"], "requestip");
    assert!(!sent[1].contains_key("ip") && !sent[1].contains_key("referer"));
}

#[tokio::test]
async fn the_manager_signs_in_again_with_the_password_in_memory() {
    let server = portal_answering(
        "generateToken",
        vec![
            generated("GT-1", T0 + HOUR_MS),
            generated("GT-2", T0 + 2 * HOUR_MS),
        ],
    )
    .await;
    let clock = clock();
    let manager = PasswordSignIn::new(portal(&server), http(), referer())
        .with_clock(arc_clock(&clock))
        .sign_in("jdoe", SecretString::from(PASSWORD))
        .await
        .unwrap()
        .into_manager(store(), "jdoe")
        .await
        .unwrap();
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "GT-1"
    );
    clock.advance(Duration::from_secs(3600));
    let token = manager.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "GT-2");
    assert_eq!(token.username(), Some("jdoe"));
    let sent = forms(&server).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1], sent[0], "the same credentials and binding again");
}

#[tokio::test]
async fn a_restored_session_without_the_password_asks_for_a_new_sign_in() {
    let server = portal_answering("generateToken", vec![generated("GT-1", T0 + HOUR_MS)]).await;
    let clock = clock();
    let signer =
        PasswordSignIn::new(portal(&server), http(), referer()).with_clock(arc_clock(&clock));
    let store = store();
    signer
        .sign_in("jdoe", SecretString::from(PASSWORD))
        .await
        .unwrap()
        .into_manager(store.clone(), "jdoe")
        .await
        .unwrap();

    // A restart: the store has the session, nobody has the password.
    let restored = TokenManager::builder(signer.clone(), store.clone(), "jdoe")
        .clock(arc_clock(&clock))
        .build()
        .unwrap();
    assert_eq!(
        restored.token().await.unwrap().secret().expose_secret(),
        "GT-1"
    );
    clock.advance(Duration::from_secs(3600));
    let err = restored.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert!(err.message().contains("sign in again"), "{err}");

    // The password of another user does not renew jdoe's session either.
    let someone_else = TokenManager::builder(
        signer
            .clone()
            .with_credentials("asmith", SecretString::from("x")),
        store,
        "jdoe",
    )
    .clock(arc_clock(&clock))
    .build()
    .unwrap();
    let err = someone_else.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(
        forms(&server).await.len(),
        1,
        "no request without the password"
    );
}

#[tokio::test]
async fn plain_http_is_refused_except_to_loopback() {
    let portal = Portal::parse("http://gis.example.com/portal/sharing/rest").unwrap();
    let err = PasswordSignIn::new(portal, http(), referer())
        .sign_in("jdoe", SecretString::from(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::InsecureTransport)
    );
    assert!(err.message().contains("https://"), "{err}");
    assert!(!err.message().contains("horse"));
    // (Every other test here talks plain http to 127.0.0.1.)
}

#[tokio::test]
async fn a_wrong_password_is_an_arcgis_error() {
    // The testkit portal checks passwords for real (and answers as ArcGIS does).
    let clock = clock();
    let kit = fake_portal(&clock).await;
    let sign_in =
        PasswordSignIn::new(kit.portal(), http(), referer()).with_clock(arc_clock(&clock));
    for (username, password) in [(USERNAME, PASSWORD), ("nobody", testkit::PASSWORD)] {
        let err = sign_in
            .sign_in(username, SecretString::from(password))
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), FlowErrorKind::ArcGis(_)), "{err:?}");
        assert!(!err.is_transient());
        // The portal's detail says what is wrong (regression: it was dropped).
        assert!(
            err.to_string().contains("Invalid username or password"),
            "{err}"
        );
        assert!(!format!("{err:?} {err}").contains(password));
    }
    assert_eq!(kit.calls().endpoint(Endpoint::GenerateToken), 2);
    // The right password works against the same portal.
    let signed_in = sign_in
        .sign_in(USERNAME, SecretString::from(testkit::PASSWORD))
        .await
        .unwrap();
    assert_eq!(signed_in.token().username(), Some(USERNAME));
}
