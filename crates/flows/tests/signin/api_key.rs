//! API keys: static, never renewed, a clear error when ArcGIS rejects them.

use std::time::Duration;

use crate::support::{T0, arc_clock, clock, http, portal, store};
use arcgis_auth_core::{ErrorKind, ExposeSecret, Portal, SecretString, Timestamp};
use arcgis_auth_flows::signin::{ApiKey, looks_like_api_key};
use arcgis_auth_flows::{FlowError, FlowErrorKind};
use arcgis_auth_storage::SessionKind;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "AAPK0123456789abcdefghijklmnopqrstuv";

#[test]
fn prefixes_are_recognised() {
    assert!(looks_like_api_key(KEY));
    assert!(looks_like_api_key("AAPTxxxxxxxxxxxxxxxxxxxxxxx-_.~"));
    assert!(looks_like_api_key(&format!("  {KEY}\n")));
    for not_a_key in [
        "",
        "AAPK",
        "AAPKshort",
        "my-client-id",
        "aapk0123456789abcdefghijklmnop",
        "AAPK0123456789 abcdefghijklmnop",
        "Bearer AAPK0123456789abcdefghijklmnop",
    ] {
        assert!(!looks_like_api_key(not_a_key), "{not_a_key:?}");
    }
    assert!(ApiKey::new(KEY.into()).unwrap().looks_like_api_key());
}

#[test]
fn keys_are_trimmed_and_garbage_refused() {
    let key = ApiKey::new(format!(" {KEY}\n").into()).unwrap();
    assert_eq!(key.secret().expose_secret(), KEY);
    for bad in ["", "   ", "two words", "tab\there"] {
        let err = ApiKey::new(SecretString::from(bad)).unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::InvalidInput, "{bad:?}");
    }
    assert!(!format!("{key:?}").contains("AAPK0123"));
}

#[tokio::test]
async fn verify_sends_the_key_in_a_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sharing/rest/portals/self"))
        .and(query_param("f", "json"))
        .and(header(
            "X-Esri-Authorization",
            format!("Bearer {KEY}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "org", "name": "Org"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    ApiKey::new(KEY.into())
        .unwrap()
        .verify(&portal(&server), &http())
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert!(!requests[0].url.as_str().contains(KEY), "never in the URL");
}

/// Verifies [`KEY`] against a portal whose `portals/self` gives `answer`.
async fn verify_against(answer: ResponseTemplate) -> Result<(), FlowError> {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/sharing/rest/portals/self"))
        .respond_with(answer)
        .mount(&server)
        .await;
    ApiKey::new(KEY.into())?
        .verify(&portal(&server), &http())
        .await
}

#[tokio::test]
async fn a_498_says_the_key_must_be_replaced() {
    let err = verify_against(ResponseTemplate::new(200).set_body_json(serde_json::json!({
        "error": {"code": 498, "message": "Invalid token.", "details": []}
    })))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NotRenewable);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::InvalidToken));
    assert!(
        err.message().contains("invalid, expired or revoked"),
        "{err}"
    );
    assert!(err.message().contains("new API key"), "{err}");
    assert!(!err.is_transient());
    assert!(!format!("{err:?}").contains(KEY));

    // A key sent to a remote plain-http portal is refused before sending.
    let insecure = Portal::parse("http://gis.example.com/portal").unwrap();
    let err = ApiKey::new(KEY.into())
        .unwrap()
        .verify(&insecure, &http())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::InsecureTransport)
    );
}

#[tokio::test]
async fn other_answers_keep_their_kind() {
    let err =
        verify_against(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
            .await
            .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::Server));
    assert!(err.is_transient());
}

#[tokio::test]
async fn an_endless_answer_is_refused_not_read_into_memory() {
    // `portals/self` is a few KiB; a portal (or something posing as one)
    // answering megabytes gets a typed error, like every other portal call.
    let huge = format!(r#"{{"id":"org","name":"{}"}}"#, "x".repeat(5 * 1024 * 1024));
    let err = verify_against(
        ResponseTemplate::new(200)
            .insert_header("content-type", "application/json")
            .set_body_string(huge),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::UnparseableResponse)
    );
    assert!(err.message().contains("more than"), "{err}");
}

#[tokio::test]
async fn the_manager_serves_the_key_and_never_renews_it() {
    let clock = clock();
    let key = ApiKey::new(KEY.into()).unwrap();
    let signed_in = key
        .session(Portal::arcgis_online())
        .with_clock(arc_clock(&clock));
    assert_eq!(signed_in.record().kind, SessionKind::ApiKey);
    assert!(!format!("{signed_in:?}").contains(KEY));
    let manager = signed_in.into_manager(store(), "key").await.unwrap();

    let token = manager.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), KEY);
    // Years later, still the key.
    clock.advance(Duration::from_secs(3 * 365 * 24 * 3600));
    assert_eq!(manager.token().await.unwrap().secret().expose_secret(), KEY);

    // A service answered 498: the key is dead, and the manager says so.
    assert!(manager.report_invalid(&token));
    let err = manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NotRenewable);
    assert!(err.message().contains("API key"), "{err}");
}

#[tokio::test]
async fn a_key_past_its_expiry_is_not_served() {
    let clock = clock();
    let expires = Timestamp::from_unix_millis(T0 + 86_400_000);
    let manager = ApiKey::new(KEY.into())
        .unwrap()
        .with_expiry(expires)
        .session(Portal::arcgis_online())
        .with_clock(arc_clock(&clock))
        .into_manager(store(), "key")
        .await
        .unwrap();
    assert_eq!(manager.token().await.unwrap().expires_at(), expires);
    clock.advance(Duration::from_secs(86_400));
    let err = manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NotRenewable);
}
