//! The parks feature layer, on a federated server and in the portal's hosted
//! services, each behind its own tokens, with plain reqwest.

mod common;

use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, FEATURE_LAYER_FIELDS,
    FEATURE_LAYER_NAME, FEATURE_SERVICE, FakePortal, PARKS, PASSWORD, SERVER_NAME, USERNAME,
};
use common::*;
use serde_json::Value;

/// POSTs a query form with the token in `X-Esri-Authorization`.
async fn query_post(url: &str, token: &str, form: &[(&str, &str)]) -> Value {
    let response = client()
        .post(format!("{url}/query"))
        .header("X-Esri-Authorization", format!("Bearer {token}"))
        .form(form)
        .send()
        .await
        .expect("the query is answered");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn the_hosted_layer_opens_to_portal_tokens_only() {
    let portal = FakePortal::start().await;
    let layer = portal.hosted_feature_layer_url();
    assert!(layer.ends_with(&format!(
        "/TestkitOrg0001/arcgis/rest/services/{FEATURE_SERVICE}/0"
    )));

    assert_eq!(error_code(&get_with_token(&layer, None).await), Some(499));
    assert_eq!(
        error_code(&get_with_token(&layer, Some("not-a-token")).await),
        Some(498)
    );

    let app = app_sign_in(&portal, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET).await;
    let app_token = app["access_token"].as_str().unwrap();
    let json = get_with_token(&layer, Some(app_token)).await;
    assert_eq!(json["name"], FEATURE_LAYER_NAME);
    assert_eq!(json["type"], "Feature Layer");
    let fields: Vec<&str> = json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = FEATURE_LAYER_FIELDS.iter().map(|f| f.0).collect();
    assert_eq!(fields, expected);

    let answer = query_post(
        &layer,
        app_token,
        &[("f", "json"), ("where", "1=1"), ("outFields", "*")],
    )
    .await;
    let features = answer["features"].as_array().unwrap();
    assert_eq!(features.len(), PARKS.len());
    for (feature, park) in features.iter().zip(PARKS) {
        assert_eq!(feature["attributes"]["OBJECTID"], park.object_id);
        assert_eq!(feature["attributes"]["NAME"], park.name);
        assert_eq!(feature["attributes"]["VISITORS"], park.visitors);
        assert_eq!(feature["geometry"]["x"], park.x);
    }

    // A user's portal token opens it too; a server's token does not.
    let generated = post_json(
        &portal.url("generateToken"),
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("f", "json"),
        ],
    )
    .await;
    let user_token = generated["token"].as_str().unwrap();
    let count = query_post(
        &layer,
        user_token,
        &[
            ("f", "json"),
            ("where", "VISITORS > 50000"),
            ("returnCountOnly", "true"),
        ],
    )
    .await;
    assert_eq!(count["count"], 2);
    let server = portal.server(SERVER_NAME).unwrap();
    let server_token = post_json(
        &portal.url("generateToken"),
        &[
            ("token", user_token),
            ("serverUrl", &server.root_url()),
            ("f", "json"),
        ],
    )
    .await;
    let refused = get_with_token(&layer, server_token["token"].as_str()).await;
    assert_eq!(error_code(&refused), Some(498));

    // Other hosted services do not exist.
    let other = get_with_token(
        &portal.hosted_service_url("Other/FeatureServer/0"),
        Some(app_token),
    )
    .await;
    assert_eq!(error_code(&other), Some(400));
    assert_eq!(portal.calls().endpoint(Endpoint::HostedServices), 7);
    assert_eq!(portal.calls().secrets_in_url(), 0);
}

#[tokio::test]
async fn the_servers_layer_opens_to_its_server_tokens_only() {
    let portal = FakePortal::start().await;
    let server = portal.server(SERVER_NAME).unwrap();
    let layer = server.feature_layer_url();
    assert_eq!(
        layer,
        server.service_url("Testkit/Parks/FeatureServer/0"),
        "under rest/services"
    );
    assert_eq!(error_code(&get_with_token(&layer, None).await), Some(499));
    let app = app_sign_in(&portal, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET).await;
    let portal_token = app["access_token"].as_str().unwrap();
    assert_eq!(
        error_code(&get_with_token(&layer, Some(portal_token)).await),
        Some(498),
        "a portal token does not open a federated server"
    );

    let generated = post_json(
        &portal.url("generateToken"),
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("serverUrl", &server.root_url()),
            ("f", "json"),
        ],
    )
    .await;
    let token = generated["token"].as_str().unwrap();
    let service = get_with_token(&layer.replace("/0", ""), Some(token)).await;
    assert_eq!(service["layers"][0]["name"], FEATURE_LAYER_NAME);
    let json = get_with_token(&layer, Some(token)).await;
    assert_eq!(json["objectIdField"], "OBJECTID");
    let answer = query_post(
        &layer,
        token,
        &[
            ("f", "json"),
            ("where", "NAME = 'Ford Park'"),
            ("outFields", "NAME"),
            ("returnGeometry", "false"),
        ],
    )
    .await;
    assert_eq!(
        answer["features"],
        serde_json::json!([{"attributes": {"NAME": "Ford Park"}}])
    );
    let bad = query_post(&layer, token, &[("f", "json"), ("where", "DROP TABLE")]).await;
    assert_eq!(error_code(&bad), Some(400));
    assert_eq!(
        portal.calls().server(SERVER_NAME, Endpoint::ServerServices),
        6
    );
}
