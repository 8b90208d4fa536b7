//! No secret in any `Debug` output, error or log line of the sign-in strategies.
//!
//! In its own test binary: tracing caches per call site whether anyone
//! listens, so a test capturing logs must not share its process with tests
//! that run without a subscriber.

// The sign-in tests' helpers; this binary uses only some of them.
#[allow(dead_code)]
#[path = "signin/support.rs"]
mod support;

#[path = "capture/mod.rs"]
mod capture;
use capture::Capture;

use std::time::Duration;

use crate::support::{T0, arc_clock, clock, http, portal, store};
use arcgis_auth_core::{AuthorizeOptions, Portal, SecretString, TokenBinding};
use arcgis_auth_flows::signin::{
    ApiKey, AppSignIn, ImplicitCallback, Loopback, PasswordSignIn, UserSignIn,
};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Every secret the portal or the caller hands over; none may ever be printed.
const SECRETS: &[&str] = &[
    "SECRET-client-secret",
    "SECRET-password",
    "SECRET-access-1",
    "SECRET-access-2",
    "SECRET-refresh-1",
    "SECRET-code",
    "SECRET-app-token",
    "SECRET-generated",
    "AAPKSECRETapikey0123456789",
    "SECRET-implicit",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} shows {secret}: {text}");
    }
}

async fn portal_with_everything() -> MockServer {
    let server = MockServer::start().await;
    let token = |body: serde_json::Value| ResponseTemplate::new(200).set_body_json(body);
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(token(serde_json::json!({
            "access_token": "SECRET-access-1", "expires_in": 1800, "username": "jdoe",
            "refresh_token": "SECRET-refresh-1", "refresh_token_expires_in": 1_209_599
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(token(serde_json::json!({
            "access_token": "SECRET-access-2", "expires_in": 1800
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .respond_with(token(serde_json::json!({
            "access_token": "SECRET-app-token", "expires_in": 7200
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sharing/rest/generateToken"))
        .respond_with(token(serde_json::json!({
            "token": "SECRET-generated", "expires": T0 + 3_600_000
        })))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn no_secret_in_debug_errors_or_logs() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = portal_with_everything().await;
    let clock = clock();
    let mut shown = Vec::new();

    // User sign-in (confidential app), then a refresh through the manager.
    let user = UserSignIn::new(portal(&server), "my-app", http())
        .with_client_secret(SecretString::from("SECRET-client-secret"))
        .with_clock(arc_clock(&clock));
    let loopback = Loopback::new().port(8765);
    let pending = user
        .begin("http://127.0.0.1:8765/callback", &AuthorizeOptions::new())
        .unwrap();
    shown.push(format!("{user:?} {pending:?} {loopback:?}"));
    let callback = format!("code=SECRET-code&state={}", pending.state());
    let signed_in = user.complete(&pending, &callback).await.unwrap();
    shown.push(format!("{signed_in:?} {:?}", signed_in.token()));
    let manager = signed_in.into_manager(store(), "user").await.unwrap();
    clock.advance(Duration::from_secs(1800));
    let token = manager.token().await.unwrap();
    shown.push(format!("{manager:?} {token:?}"));
    // Errors that carry the callback's contents.
    let err = user
        .complete(&pending, "code=SECRET-code&state=wrong")
        .await
        .unwrap_err();
    shown.push(format!("{err:?} {err}"));

    // App credentials.
    let app = AppSignIn::new(
        portal(&server),
        "my-app",
        SecretString::from("SECRET-client-secret"),
        http(),
    )
    .with_clock(arc_clock(&clock));
    let app_session = app.sign_in().await.unwrap();
    shown.push(format!("{app:?} {app_session:?}"));

    // generateToken.
    let signer = PasswordSignIn::new(
        portal(&server),
        http(),
        TokenBinding::Referer("https://app.example.com".into()),
    )
    .with_clock(arc_clock(&clock));
    let password_session = signer
        .sign_in("jdoe", SecretString::from("SECRET-password"))
        .await
        .unwrap();
    shown.push(format!(
        "{signer:?} {password_session:?} {:?}",
        password_session.source()
    ));
    let insecure = PasswordSignIn::new(
        Portal::parse("http://gis.example.com/portal").unwrap(),
        http(),
        TokenBinding::RequestIp,
    );
    let err = insecure
        .sign_in("jdoe", SecretString::from("SECRET-password"))
        .await
        .unwrap_err();
    shown.push(format!("{err:?} {err}"));

    // API key.
    let key = ApiKey::new(SecretString::from("AAPKSECRETapikey0123456789")).unwrap();
    let key_session = key.session(Portal::arcgis_online());
    shown.push(format!("{key:?} {key_session:?}"));

    // Implicit callback.
    #[allow(deprecated)]
    let implicit =
        ImplicitCallback::parse("#access_token=SECRET-implicit&expires_in=60&state=s", "s")
            .unwrap();
    shown.push(format!("{implicit:?}"));
    let implicit_session =
        implicit.into_session(Portal::arcgis_online(), "my-app", arc_clock(&clock));
    shown.push(format!("{implicit_session:?}"));

    for (i, text) in shown.iter().enumerate() {
        assert_clean(&format!("debug output #{i}"), text);
    }
    drop(_guard);
    let logs = capture.text();
    assert!(
        logs.contains("user signed in"),
        "the sign-ins are logged: {logs}"
    );
    assert!(logs.contains("app signed in"), "{logs}");
    assert_clean("the logs", &logs);
}
