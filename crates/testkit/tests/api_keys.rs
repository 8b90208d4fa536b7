//! API keys: created by the test, sent like tokens, never renewed, revocable,
//! optionally expiring and scoped to items. With plain reqwest.

mod common;

use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, SecretString, Timestamp};
use arcgis_auth_testkit::{
    ApiKeySpec, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, ErrorKind,
    FakePortal, PUBLIC_CLIENT_ID, SERVER_NAME, TokenKind,
};
use common::*;
use serde_json::json;

const KEY_APP: &str = "maps-app";
const DAY: Duration = Duration::from_secs(24 * 3600);

fn invalid_token() -> serde_json::Value {
    json!({"error":{"code":498,"message":"Invalid token.","details":[]}})
}

#[tokio::test]
async fn a_key_opens_the_portal_like_a_token_and_is_never_renewed() {
    let portal = FakePortal::start().await;
    let issued = portal.create_api_key(ApiKeySpec::new(KEY_APP));
    let key = issued.token.expose_secret().to_owned();
    assert!(key.starts_with("AAPK") && key.len() > 40, "a legacy key");
    assert_eq!(issued.kind, TokenKind::ApiKey);
    assert_eq!(issued.client_id.as_deref(), Some(KEY_APP));
    assert_eq!(issued.username, None);
    assert_eq!(issued.expires_at, Timestamp::MAX);
    assert!(!format!("{issued:?}").contains(&key));
    let log = portal.issued_tokens();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].token.expose_secret(), key);

    // It opens what an app token opens, and says whose it is.
    let item = get_with_token(&portal.secured_item_url("item1"), Some(&key)).await;
    assert_eq!(item["accessedBy"], KEY_APP, "{item}");
    let me = get_with_token(&portal.url("portals/self"), Some(&key)).await;
    assert_eq!(me["appInfo"]["appId"], KEY_APP, "{me}");
    // No user behind it.
    let community = get_with_token(&portal.url("community/self"), Some(&key)).await;
    assert_eq!(error_code(&community), Some(403), "{community}");
    // In a POST body too.
    let posted = post_json(
        &portal.secured_item_url("item1"),
        &[("token", key.as_str()), ("f", "json")],
    )
    .await;
    assert_eq!(posted["accessedBy"], KEY_APP, "{posted}");

    // The token endpoint cannot renew it, and revokeToken does not end it.
    let refreshed = refresh_grant(&portal, PUBLIC_CLIENT_ID, &key).await;
    assert_eq!(error_code(&refreshed), Some(498), "{refreshed}");
    let revoked = post_json(
        &portal.url("oauth2/revokeToken"),
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("auth_token", &key),
            ("f", "json"),
        ],
    )
    .await;
    assert_eq!(revoked, json!({"success": true}));
    // Expiring every access token leaves keys alone; years pass.
    portal.expire_access_tokens();
    portal.advance_clock(3 * 365 * DAY);
    let item = get_with_token(&portal.secured_item_url("item1"), Some(&key)).await;
    assert_eq!(item["accessedBy"], KEY_APP, "{item}");
    // Creating and using a key asks nothing of oauth2/token.
    assert_eq!(portal.calls().endpoint(Endpoint::Token), 1); // the refresh attempt above
}

#[tokio::test]
async fn revoking_a_key_makes_every_use_a_498() {
    let portal = FakePortal::start().await;
    let keep = portal.create_api_key(ApiKeySpec::new("other-app"));
    let issued = portal.create_api_key(ApiKeySpec::new(KEY_APP));
    let key = issued.token.expose_secret();
    let item = portal.secured_item_url("item1");
    assert_eq!(
        get_with_token(&item, Some(key)).await["accessedBy"],
        KEY_APP
    );

    portal.revoke_api_key(&issued.token).unwrap();
    assert_eq!(get_with_token(&item, Some(key)).await, invalid_token());
    assert_eq!(
        get_with_token(&portal.url("portals/self"), Some(key)).await,
        invalid_token()
    );
    let generated = post_json(
        &portal.url("generateToken"),
        &[
            ("token", key),
            ("serverUrl", &portal.server(SERVER_NAME).unwrap().root_url()),
            ("f", "json"),
        ],
    )
    .await;
    assert_eq!(error_code(&generated), Some(498), "{generated}");
    let log = portal.issued_tokens();
    assert!(log[1].revoked && !log[0].revoked);
    // Other keys are untouched.
    let other = get_with_token(&item, Some(keep.token.expose_secret())).await;
    assert_eq!(other["accessedBy"], "other-app");

    // Only keys of this portal can be revoked this way.
    let forged = portal.revoke_api_key(&SecretString::from("AAPKforged".to_owned()));
    assert_eq!(forged.unwrap_err().kind(), ErrorKind::UnknownApiKey);
    let app = app_sign_in(&portal, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET).await;
    let app_token = app["access_token"].as_str().unwrap().to_owned();
    let err = portal
        .revoke_api_key(&SecretString::from(app_token.clone()))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownApiKey);
    assert!(!err.to_string().contains(&app_token));
    assert_eq!(
        get_with_token(&item, Some(&app_token)).await["accessedBy"],
        CONFIDENTIAL_CLIENT_ID
    );

    // revoke_all_tokens and expire_all_tokens end keys too.
    portal.revoke_all_tokens();
    assert_eq!(
        get_with_token(&item, Some(keep.token.expose_secret())).await,
        invalid_token()
    );
    let fresh = portal.create_api_key(ApiKeySpec::new(KEY_APP));
    portal.expire_all_tokens();
    assert_eq!(
        get_with_token(&item, Some(fresh.token.expose_secret())).await,
        invalid_token()
    );
}

#[tokio::test]
async fn a_key_with_an_expiration_date_stops_at_it() {
    let portal = FakePortal::start().await;
    let issued = portal.create_api_key(ApiKeySpec::new(KEY_APP).expires_in(30 * DAY));
    let key = issued.token.expose_secret();
    assert!(key.starts_with("AAPT"), "API key credentials");
    assert_eq!(issued.expires_at, portal.now() + 30 * DAY);
    let item = portal.secured_item_url("item1");

    portal.advance_clock(30 * DAY - Duration::from_secs(1));
    assert_eq!(
        get_with_token(&item, Some(key)).await["accessedBy"],
        KEY_APP
    );
    portal.advance_clock(Duration::from_secs(1));
    assert_eq!(get_with_token(&item, Some(key)).await, invalid_token());
}

#[tokio::test]
async fn a_key_scoped_to_items_is_forbidden_elsewhere_not_invalid() {
    let portal = FakePortal::start().await;
    let issued = portal.create_api_key(ApiKeySpec::new(KEY_APP).item("item1").item("item2"));
    let key = issued.token.expose_secret();
    for id in ["item1", "item2"] {
        let item = get_with_token(&portal.secured_item_url(id), Some(key)).await;
        assert_eq!(item["id"], id, "{item}");
    }
    let elsewhere = get_with_token(&portal.secured_item_url("item3"), Some(key)).await;
    assert_eq!(error_code(&elsewhere), Some(403), "{elsewhere}");
    assert_eq!(elsewhere["error"]["messageCode"], "GWM_0003");
    // The portal itself still knows the key.
    let me = get_with_token(&portal.url("portals/self"), Some(key)).await;
    assert_eq!(me["appInfo"]["appId"], KEY_APP);
}

#[tokio::test]
async fn a_key_buys_a_federated_server_token_that_never_outlives_it() {
    let portal = FakePortal::start().await;
    let issued =
        portal.create_api_key(ApiKeySpec::new(KEY_APP).expires_in(Duration::from_secs(600)));
    let server = portal.server(SERVER_NAME).unwrap();
    let answer = post_json(
        &portal.url("generateToken"),
        &[
            ("token", issued.token.expose_secret()),
            ("serverUrl", &server.root_url()),
            ("f", "json"),
        ],
    )
    .await;
    // The server's default is 60 minutes; the key has 10 left.
    assert_eq!(
        answer["expires"].as_i64(),
        Some(issued.expires_at.as_unix_millis()),
        "{answer}"
    );
    let server_token = answer["token"].as_str().unwrap();
    let service = get_with_token(
        &server.service_url("Hosted/Parcels/FeatureServer"),
        Some(server_token),
    )
    .await;
    assert_eq!(service["server"], SERVER_NAME, "{service}");
    // The key itself is not a server token.
    let direct = get_with_token(
        &server.service_url("Hosted/Parcels/FeatureServer"),
        Some(issued.token.expose_secret()),
    )
    .await;
    assert_eq!(error_code(&direct), Some(498), "{direct}");
}
