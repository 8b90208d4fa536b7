//! `Gateway::reload`: a new configuration whole; removed credentials stop at once, unchanged ones keep their tokens.

mod common;

use arcgis_auth_gateway::Config;
use arcgis_auth_testkit::Grant;
use common::{Bench, ORIGIN, env};

async fn token(b: &Bench, app: &str) -> (u16, serde_json::Value) {
    let r = b
        .client
        .get(format!("{}/token?app={app}", b.base))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("answer");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn an_unchanged_app_keeps_its_token_and_a_removed_one_stops_at_once() {
    let b = Bench::start().await;
    let (status, first) = token(&b, "geo").await;
    assert_eq!(status, 200);
    assert_eq!(b.portal.calls().token(Grant::ClientCredentials), 1);

    // The same configuration again: the same token, no new sign-in.
    let same = Config::from_toml(&b.text, &env()).expect("valid");
    b.gateway.reload(same).await.expect("reload");
    let (status, again) = token(&b, "geo").await;
    assert_eq!(status, 200);
    assert_eq!(again["token"], first["token"]);
    assert_eq!(b.portal.calls().token(Grant::ClientCredentials), 1);

    // `geo` renamed `geo2`: `geo` is gone at once, `geo2` signs in afresh.
    let renamed = b
        .text
        .replace("name = \"geo\"", "name = \"geo2\"")
        .replace("auth = \"app:geo\"", "auth = \"app:geo2\"");
    let config = Config::from_toml(&renamed, &env()).expect("valid");
    b.gateway.reload(config).await.expect("reload");
    let (status, body) = token(&b, "geo").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.get("token").is_none());
    let item = format!("{}?f=json", b.portal.secured_item_url("abc123"));
    assert_eq!(b.get(&item).await.status(), 200);
    assert_eq!(b.portal.calls().token(Grant::ClientCredentials), 2);
    let (status, renewed) = token(&b, "geo2").await;
    assert_eq!(status, 200);
    assert_ne!(renewed["token"], first["token"]);
}

#[tokio::test]
async fn proxy_paths_and_user_sign_in_change_with_a_reload() {
    let b = Bench::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/open/x"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string("up"))
        .mount(&b.upstream)
        .await;
    let open = b.up("/open/x");
    let status = |path: &'static str| {
        let url = format!("{}{path}?{open}", b.base);
        let client = b.client.clone();
        async move {
            client
                .get(url)
                .header("origin", ORIGIN)
                .send()
                .await
                .expect("answer")
                .status()
                .as_u16()
        }
    };
    let me = || async {
        b.client
            .get(format!("{}/auth/me", b.base))
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16()
    };
    assert_eq!(status("/proxy").await, 200);
    assert_eq!(status("/gis-proxy").await, 404);
    assert_eq!(me().await, 404);

    // New proxy paths, and users signing in: both at once, no restart.
    let changed = format!(
        "proxy_paths = [\"/gis-proxy\"]\n{}\n[user_sign_in]\nclient_id = \"web\"\npublic_url = \"{}\"\n",
        b.text, b.base
    );
    let config = Config::from_toml(&changed, &env()).expect("valid");
    b.gateway.reload(config).await.expect("reload");
    assert_eq!(status("/proxy").await, 404);
    assert_eq!(status("/gis-proxy").await, 200);
    assert_eq!(me().await, 401);

    // And back.
    let config = Config::from_toml(&b.text, &env()).expect("valid");
    b.gateway.reload(config).await.expect("reload");
    assert_eq!(status("/proxy").await, 200);
    assert_eq!(status("/gis-proxy").await, 404);
    assert_eq!(me().await, 404);
}
