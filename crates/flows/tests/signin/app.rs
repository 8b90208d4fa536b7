//! App credentials (client_credentials), against a wiremock portal.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{
    arc_clock, clock, fake_portal, forms, http, map, portal, portal_answering, store,
};
use arcgis_auth_core::{Clock, ErrorKind, Expiration, ExposeSecret, SecretString};
use arcgis_auth_flows::signin::AppSignIn;
use arcgis_auth_flows::{FlowErrorKind, TokenManager};
use arcgis_auth_storage::test_util::FaultyStore;
use arcgis_auth_storage::{SessionKind, SessionStore, StoreErrorKind};
use arcgis_auth_testkit::{CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Grant};
use wiremock::ResponseTemplate;

const SECRET: &str = "app-s3cret-value";

fn app_token(access: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(serde_json::json!({"access_token": access, "expires_in": 86_400}))
}

/// The app `my-app` with [`SECRET`], signing in at `server`.
fn app(server: &wiremock::MockServer) -> AppSignIn {
    AppSignIn::new(portal(server), "my-app", SecretString::from(SECRET), http())
}

#[tokio::test]
async fn sign_in_sends_the_expiration_and_keeps_the_secret_out_of_everything() {
    let server = portal_answering("oauth2/token", vec![app_token("APP-1")]).await;
    let clock = clock();
    let app = app(&server)
        .with_expiration(Expiration::minutes(1440))
        .with_clock(arc_clock(&clock));

    let signed_in = app.sign_in().await.unwrap();
    assert_eq!(
        forms(&server).await,
        vec![map(&[
            ("grant_type", "client_credentials"),
            ("client_id", "my-app"),
            ("client_secret", SECRET),
            ("expiration", "1440"),
            ("f", "json"),
        ])]
    );
    assert_eq!(signed_in.token().access_token().expose_secret(), "APP-1");
    assert_eq!(
        signed_in.token().expires_at(),
        clock.now() + Duration::from_secs(86_400)
    );
    let record = signed_in.record();
    assert_eq!(record.kind, SessionKind::App);
    assert_eq!(record.client_id.as_deref(), Some("my-app"));

    // The secret is in no Debug output and in no stored form.
    assert!(!format!("{app:?}").contains(SECRET));
    assert!(!format!("{signed_in:?}").contains(SECRET));
    assert!(!record.to_json().unwrap().contains(SECRET));
    let store = store();
    let manager = signed_in.into_manager(store.clone(), "app").await.unwrap();
    let stored = store.load("app").await.unwrap().unwrap();
    assert!(!stored.record.to_json().unwrap().contains(SECRET));
    assert!(stored.record.to_json().unwrap().contains("APP-1"));
    assert!(!format!("{manager:?}").contains(SECRET));
}

#[tokio::test]
async fn the_manager_signs_in_again_when_the_token_expires() {
    let server =
        portal_answering("oauth2/token", vec![app_token("APP-1"), app_token("APP-2")]).await;
    let clock = clock();
    let app = app(&server).with_clock(arc_clock(&clock));
    let store = store();
    let manager = app
        .sign_in()
        .await
        .unwrap()
        .into_manager(store.clone(), "app")
        .await
        .unwrap();
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "APP-1"
    );
    clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "APP-2"
    );
    let sent = forms(&server).await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["grant_type"], "client_credentials");
    assert_eq!(sent[1]["client_secret"], SECRET);
    assert!(
        !sent[1].contains_key("expiration"),
        "no expiration asked for"
    );

    // Another process with the secret renews the stored session by itself.
    clock.advance(Duration::from_secs(86_400));
    let other = TokenManager::builder(app.clone(), store, "app")
        .clock(arc_clock(&clock))
        .build()
        .unwrap();
    assert_eq!(
        other.token().await.unwrap().secret().expose_secret(),
        "APP-2"
    );
    assert_eq!(forms(&server).await.len(), 3);
}

#[tokio::test]
async fn wrong_credentials_and_bad_expirations_are_typed() {
    // The testkit portal checks client ids and secrets for real.
    let clock = clock();
    let kit = fake_portal(&clock).await;
    let wrong_secret = AppSignIn::new(
        kit.portal(),
        CONFIDENTIAL_CLIENT_ID,
        SecretString::from(SECRET),
        http(),
    );
    let err = wrong_secret.sign_in().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidClient));
    assert!(!err.is_transient());
    assert!(!format!("{err:?} {err}").contains(SECRET));
    let wrong_id = AppSignIn::new(
        kit.portal(),
        "no-such-app",
        SecretString::from(CONFIDENTIAL_CLIENT_SECRET),
        http(),
    );
    let err = wrong_id.sign_in().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidClient));
    assert_eq!(kit.calls().token(Grant::ClientCredentials), 2);

    let too_long = wrong_secret.with_expiration(Expiration::minutes(30_000));
    let err = too_long.sign_in().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidInput));
    assert_eq!(
        kit.calls().token(Grant::ClientCredentials),
        2,
        "nothing sent for a bad expiration"
    );
}

#[tokio::test]
async fn a_store_that_refuses_the_first_save_does_not_lose_the_sign_in() {
    let server = portal_answering("oauth2/token", vec![app_token("APP-1")]).await;
    let app = app(&server);
    let store: Arc<dyn SessionStore> = Arc::new(FaultyStore::down());
    let manager = app
        .sign_in()
        .await
        .unwrap()
        .into_manager(store, "app")
        .await
        .expect("the manager is returned even though the save failed");
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "APP-1"
    );
    assert!(manager.has_unsaved_changes().await);
    let err = manager.persist().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::Store(StoreErrorKind::Unavailable)
    );
}

#[tokio::test]
async fn an_invalid_session_key_is_refused() {
    let server = portal_answering("oauth2/token", vec![app_token("APP-1")]).await;
    let app = app(&server);
    let err = app
        .sign_in()
        .await
        .unwrap()
        .into_manager(store(), "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
}
