//! `info`, `portals/self`, `community/self`, `content/items`, `revokeToken`, with plain reqwest.

mod common;

use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, FakePortal, PASSWORD,
    PUBLIC_CLIENT_ID, USERNAME,
};
use common::*;
use serde_json::json;

async fn app_token(portal: &FakePortal) -> String {
    app_sign_in(portal, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET).await["access_token"]
        .as_str()
        .expect("an app token")
        .to_owned()
}

async fn revoke(portal: &FakePortal, token: &str) -> serde_json::Value {
    post_json(
        &portal.url("oauth2/revokeToken"),
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("token", token),
            ("f", "json"),
        ],
    )
    .await
}

#[tokio::test]
async fn info_is_public() {
    let portal = FakePortal::start().await;
    let info = get_with_token(&portal.url("info"), None).await;
    assert_eq!(
        info,
        json!({"owningSystemUrl": portal.url_root(), "authInfo": {"tokenServicesUrl": portal.url("generateToken"), "isTokenBasedSecurity": true}})
    );
    // Without f=json: HTML, as ArcGIS does.
    let page = client().get(portal.url("info")).send().await.unwrap();
    assert!(is_html(&page));
}

#[tokio::test]
async fn portals_self_anonymous_user_app_and_invalid() {
    let portal = FakePortal::start().await;
    let anonymous = get_with_token(&portal.url("portals/self"), None).await;
    assert_eq!(anonymous["id"], "TestkitOrg0001");
    assert!(anonymous.get("user").is_none());

    let user = sign_in(&portal).await;
    let with_user =
        get_with_token(&portal.url("portals/self"), user["access_token"].as_str()).await;
    assert_eq!(with_user["user"]["username"], USERNAME);

    let app = app_token(&portal).await;
    let with_app = get_with_token(&portal.url("portals/self"), Some(&app)).await;
    assert_eq!(with_app["appInfo"]["appId"], CONFIDENTIAL_CLIENT_ID);
    assert!(with_app.get("user").is_none());

    let invalid = get_with_token(&portal.url("portals/self"), Some("forged")).await;
    assert_eq!(
        invalid,
        json!({"error":{"code":498,"message":"Invalid token.","details":[]}})
    );
}

#[tokio::test]
async fn community_self_and_items_need_a_token() {
    let portal = FakePortal::start().await;
    let item = portal.secured_item_url("abc123");
    for url in [portal.url("community/self"), item.clone()] {
        assert_eq!(
            get_with_token(&url, None).await,
            json!({"error":{"code":499,"message":"Token Required","messageCode":"GWM_0003","details":[]}})
        );
        assert_eq!(
            get_with_token(&url, Some("forged")).await["error"]["code"],
            498
        );
    }
    let app = app_token(&portal).await;
    let forbidden = get_with_token(&portal.url("community/self"), Some(&app)).await;
    assert_eq!(forbidden["error"]["code"], 403);
    assert_eq!(forbidden["error"]["messageCode"], "GWM_0003");
    let by_app = get_with_token(&item, Some(&app)).await;
    assert_eq!(by_app["id"], "abc123");
    assert_eq!(by_app["accessedBy"], CONFIDENTIAL_CLIENT_ID);
    assert_eq!(portal.calls().endpoint(Endpoint::ContentItem), 3);
    assert_eq!(portal.calls().endpoint(Endpoint::CommunitySelf), 3);
}

#[tokio::test]
async fn tokens_are_read_from_headers_form_and_query() {
    let portal = FakePortal::start().await;
    let user = sign_in(&portal).await;
    let access = user["access_token"].as_str().unwrap();
    let url = portal.url("community/self");

    let by_authorization: serde_json::Value = send_json(
        client()
            .get(with_query(&url, &[("f", "json")]))
            .header("Authorization", format!("Bearer {access}")),
    )
    .await;
    assert_eq!(by_authorization["username"], USERNAME);

    let by_form = post_json(&url, &[("token", access), ("f", "json")]).await;
    assert_eq!(by_form["username"], USERNAME);
    assert_eq!(portal.calls().secrets_in_url(), 0);

    let by_query: serde_json::Value =
        send_json(client().get(with_query(&url, &[("f", "json"), ("token", access)]))).await;
    assert_eq!(by_query["username"], USERNAME);
    // Accepted, as ArcGIS does, but counted: tokens in URLs end up in logs.
    assert_eq!(portal.calls().secrets_in_url(), 1);
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_access_tokens() {
    let portal = FakePortal::start().await;
    let user = sign_in(&portal).await;
    let access = user["access_token"].as_str().unwrap();
    let refresh = user["refresh_token"].as_str().unwrap();
    let refreshed = refresh_grant(&portal, PUBLIC_CLIENT_ID, refresh).await;
    let refreshed = refreshed["access_token"].as_str().unwrap();

    assert_eq!(revoke(&portal, refresh).await, json!({"success": true}));
    for t in [access, refreshed] {
        assert_eq!(
            get_with_token(&portal.url("community/self"), Some(t)).await["error"]["code"],
            498
        );
    }
    let dead = refresh_grant(&portal, PUBLIC_CLIENT_ID, refresh).await;
    assert_eq!(dead["error"]["code"], 498);
    assert_eq!(portal.calls().endpoint(Endpoint::RevokeToken), 1);
}

#[tokio::test]
async fn revoke_answers_success_but_only_user_tokens_die() {
    let portal = FakePortal::start().await;
    assert_eq!(revoke(&portal, "unknown").await, json!({"success": true}));

    let user = sign_in(&portal).await;
    let access = user["access_token"].as_str().unwrap();
    assert_eq!(revoke(&portal, access).await, json!({"success": true}));
    assert_eq!(
        get_with_token(&portal.url("community/self"), Some(access)).await["error"]["code"],
        498
    );
    // Its refresh token still works.
    let refreshed = refresh_grant(
        &portal,
        PUBLIC_CLIENT_ID,
        user["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert!(refreshed["access_token"].is_string());

    // App tokens and generateToken tokens cannot be revoked.
    let app = app_token(&portal).await;
    let generated = post_json(
        &portal.url("generateToken"),
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("f", "json"),
        ],
    )
    .await;
    let generated = generated["token"].as_str().unwrap();
    for t in [app.as_str(), generated] {
        assert_eq!(revoke(&portal, t).await, json!({"success": true}));
        assert!(get_with_token(&portal.secured_item_url("i"), Some(t)).await["error"].is_null());
    }

    // Revoke needs a POST with a token.
    let missing = post_json(&portal.url("oauth2/revokeToken"), &[("f", "json")]).await;
    assert_eq!(missing["error"]["code"], 400);
}
