//! `generateToken` and the fake servers, with plain reqwest.

mod common;

use std::time::Duration;

use arcgis_auth_core::{Portal, ServerRoot};
use arcgis_auth_testkit::{Endpoint, FakePortal, PASSWORD, Server, TokenKind, USERNAME};
use common::*;
use serde_json::json;

async fn generate(portal: &FakePortal, form: &[(&str, &str)]) -> serde_json::Value {
    let mut form = form.to_vec();
    form.push(("f", "json"));
    post_json(&portal.url("generateToken"), &form).await
}

async fn portal_with_servers() -> FakePortal {
    FakePortal::builder()
        .user(USERNAME, PASSWORD)
        .server(Server::federated("server1").short_lived_token_validity(15))
        .federated_server("server2")
        .server(Server::standalone("standalone"))
        .server(Server::federated_with(
            "foreign",
            "https://other.example.com/portal/",
        ))
        .start()
        .await
}

#[tokio::test]
async fn user_form_gives_a_portal_token_with_epoch_millis_expiry() {
    let portal = FakePortal::start().await;
    let answer = generate(
        &portal,
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("client", "requestip"),
            ("expiration", "90"),
        ],
    )
    .await;
    let mut keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["expires", "ssl", "token"]);
    let expected = portal.now().as_unix_millis() + 90 * 60 * 1000;
    assert_eq!(answer["expires"].as_i64(), Some(expected));
    let me = get_with_token(&portal.url("community/self"), answer["token"].as_str()).await;
    assert_eq!(me["username"], USERNAME);

    let default = generate(&portal, &[("username", USERNAME), ("password", PASSWORD)]).await;
    assert_eq!(
        default["expires"].as_i64(),
        Some(portal.now().as_unix_millis() + 60 * 60 * 1000)
    );
    assert_eq!(portal.calls().endpoint(Endpoint::GenerateToken), 2);
}

#[tokio::test]
async fn user_form_refusals() {
    let portal = FakePortal::start().await;
    let wrong = generate(&portal, &[("username", USERNAME), ("password", "nope")]).await;
    assert_eq!(
        wrong,
        json!({"error":{"code":400,"message":"Unable to generate token.","details":["Invalid username or password."]}})
    );
    let unknown = generate(&portal, &[("username", "ghost"), ("password", PASSWORD)]).await;
    assert_eq!(unknown, wrong);
    let missing = generate(&portal, &[("password", PASSWORD)]).await;
    assert_eq!(
        missing["error"]["details"][0],
        "'username' must be specified."
    );
    let no_referer = generate(
        &portal,
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("client", "referer"),
        ],
    )
    .await;
    assert_eq!(
        no_referer["error"]["details"][0],
        "'referer' must be specified."
    );

    // Without f=json ArcGIS answers HTML; so does the fake.
    let response = client()
        .post(portal.url("generateToken"))
        .form(&[("username", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(is_html(&response));
}

#[tokio::test]
async fn referer_bound_tokens_need_the_referer() {
    let portal = FakePortal::start().await;
    let answer = generate(
        &portal,
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("client", "referer"),
            ("referer", "https://app.example.com"),
        ],
    )
    .await;
    let token = answer["token"].as_str().unwrap();
    let without = get_with_token(&portal.url("community/self"), Some(token)).await;
    assert_eq!(without["error"]["code"], 498);
    let with: serde_json::Value = send_json(
        client()
            .get(with_query(&portal.url("community/self"), &[("f", "json")]))
            .header("X-Esri-Authorization", format!("Bearer {token}"))
            .header("Referer", "https://app.example.com/page"),
    )
    .await;
    assert_eq!(with["username"], USERNAME);
}

#[tokio::test]
async fn server_info_describes_federation() {
    let portal = portal_with_servers().await;
    let info = get_with_token(&portal.server("server1").unwrap().info_url(), None).await;
    assert_eq!(info["owningSystemUrl"], portal.url_root());
    assert_eq!(
        info["authInfo"],
        json!({"isTokenBasedSecurity": true, "tokenServicesUrl": portal.url("generateToken"), "shortLivedTokenValidity": 15})
    );
    // The owningSystemUrl leads back to this portal.
    assert_eq!(
        Portal::parse(info["owningSystemUrl"].as_str().unwrap()).unwrap(),
        portal.portal()
    );

    let standalone = portal.server("standalone").unwrap();
    let info = get_with_token(&standalone.info_url(), None).await;
    assert!(info.get("owningSystemUrl").is_none());
    assert_eq!(
        info["authInfo"]["tokenServicesUrl"],
        standalone.generate_token_url()
    );

    let foreign = get_with_token(&portal.server("foreign").unwrap().info_url(), None).await;
    assert_eq!(
        foreign["owningSystemUrl"],
        "https://other.example.com/portal"
    );

    // Each server has its own origin.
    let origins: std::collections::HashSet<_> = portal
        .servers()
        .iter()
        .map(|s| s.server_root().origin().clone())
        .chain([portal.portal().origin().clone()])
        .collect();
    assert_eq!(origins.len(), 5);
}

#[tokio::test]
async fn server_tokens_open_their_server_only() {
    let portal = portal_with_servers().await;
    let portal_token = generate(&portal, &[("username", USERNAME), ("password", PASSWORD)]).await;
    let portal_token = portal_token["token"].as_str().unwrap();
    let server1 = portal.server("server1").unwrap();
    let server2 = portal.server("server2").unwrap();
    let service = server1.service_url("Roads/FeatureServer/0/query");

    // No token: 499; the portal token: 498 (both with HTTP 200).
    assert_eq!(
        get_with_token(&service, None).await,
        json!({"error":{"code":499,"message":"Token Required","details":[]}})
    );
    assert_eq!(
        get_with_token(&service, Some(portal_token)).await,
        json!({"error":{"code":498,"message":"Invalid Token","details":[]}})
    );

    // Any URL under the server works as serverUrl.
    let server_token = generate(&portal, &[("token", portal_token), ("serverUrl", &service)]).await;
    let expected = portal.now().as_unix_millis() + 15 * 60 * 1000;
    assert_eq!(server_token["expires"].as_i64(), Some(expected));
    let server_token = server_token["token"].as_str().unwrap();

    let ok = get_with_token(&service, Some(server_token)).await;
    assert_eq!(ok["user"], USERNAME);
    assert_eq!(ok["server"], "server1");
    assert_eq!(ok["path"], "/rest/services/Roads/FeatureServer/0/query");

    // Not on the other server, not on the portal.
    let elsewhere = get_with_token(&server2.service_url("x/MapServer"), Some(server_token)).await;
    assert_eq!(elsewhere["error"]["code"], 498);
    let on_portal = get_with_token(&portal.url("community/self"), Some(server_token)).await;
    assert_eq!(on_portal["error"]["code"], 498);

    // The server token is gone when it expires.
    portal.advance_clock(Duration::from_secs(15 * 60));
    assert_eq!(
        get_with_token(&service, Some(server_token)).await["error"]["code"],
        498
    );

    let calls = portal.calls();
    assert_eq!(calls.server("server1", Endpoint::ServerServices), 4);
    assert_eq!(calls.server("server2", Endpoint::ServerServices), 1);
    assert_eq!(calls.server_total("server1"), 4);
}

#[tokio::test]
async fn server_tokens_by_password_and_never_outliving_the_portal_token() {
    let portal = portal_with_servers().await;
    let root = portal.server("server2").unwrap().root_url();
    let by_password = generate(
        &portal,
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("serverUrl", &root),
        ],
    )
    .await;
    assert!(by_password["token"].is_string(), "{by_password}");

    // A portal token with 10 minutes left makes a server token with 10 minutes left.
    let portal_token = generate(
        &portal,
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("expiration", "10"),
        ],
    )
    .await;
    let server_token = generate(
        &portal,
        &[
            ("token", portal_token["token"].as_str().unwrap()),
            ("serverUrl", &root),
        ],
    )
    .await;
    assert_eq!(server_token["expires"], portal_token["expires"]);
    let kinds: Vec<TokenKind> = portal.issued_tokens().into_iter().map(|t| t.kind).collect();
    assert!(kinds.contains(&TokenKind::Server {
        server: "server2".into()
    }));
}

#[tokio::test]
async fn portal_refuses_servers_it_does_not_own() {
    let portal = portal_with_servers().await;
    let portal_token = generate(&portal, &[("username", USERNAME), ("password", PASSWORD)]).await;
    let portal_token = portal_token["token"].as_str().unwrap();
    for server in ["standalone", "foreign"] {
        let root = portal.server(server).unwrap().root_url();
        let refused = generate(&portal, &[("token", portal_token), ("serverUrl", &root)]).await;
        assert_eq!(refused["error"]["code"], 400, "{server}: {refused}");
    }
    let unknown = generate(
        &portal,
        &[
            ("token", portal_token),
            ("serverUrl", "https://elsewhere.example.com/server"),
        ],
    )
    .await;
    assert_eq!(unknown["error"]["code"], 400);
    let bad_token = generate(
        &portal,
        &[
            ("token", "forged"),
            ("serverUrl", &portal.server("server1").unwrap().root_url()),
        ],
    )
    .await;
    assert_eq!(
        bad_token,
        json!({"error":{"code":498,"message":"Invalid token.","details":[]}})
    );
}

#[tokio::test]
async fn standalone_server_has_its_own_token_service() {
    let portal = portal_with_servers().await;
    let standalone = portal.server("standalone").unwrap();
    let answer = post_json(
        &standalone.generate_token_url(),
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("f", "json"),
        ],
    )
    .await;
    let token = answer["token"].as_str().unwrap();
    assert!(answer["expires"].as_i64().unwrap() > portal.now().as_unix_millis());
    let ok = get_with_token(&standalone.service_url("a/MapServer"), Some(token)).await;
    assert_eq!(ok["server"], "standalone");
    // Its tokens mean nothing to the portal; federated servers have no token service.
    assert_eq!(
        get_with_token(&portal.url("community/self"), Some(token)).await["error"]["code"],
        498
    );
    let federated = post_json(
        &portal.server("server1").unwrap().generate_token_url(),
        &[
            ("username", USERNAME),
            ("password", PASSWORD),
            ("f", "json"),
        ],
    )
    .await;
    assert_eq!(federated["error"]["code"], 400);
    assert_eq!(
        portal
            .calls()
            .server("standalone", Endpoint::ServerGenerateToken),
        1
    );
    assert_eq!(
        ServerRoot::parse(&standalone.service_url("a/MapServer")).unwrap(),
        standalone.server_root()
    );
}

#[tokio::test]
async fn a_standalone_servers_admin_api_takes_only_its_admin_tokens() {
    let portal = portal_with_servers().await;
    let standalone = portal.server("standalone").unwrap();
    let form = [
        ("username", USERNAME),
        ("password", PASSWORD),
        ("f", "json"),
    ];
    let admin = post_json(&standalone.admin_generate_token_url(), &form).await;
    let admin = admin["token"].as_str().unwrap().to_owned();
    let service = post_json(&standalone.generate_token_url(), &form).await;
    let service = service["token"].as_str().unwrap().to_owned();
    let machines = standalone.admin_url("machines");

    let ok = get_with_token(&machines, Some(&admin)).await;
    assert_eq!(ok["user"], USERNAME, "{ok}");
    assert_eq!(ok["path"], "/admin/machines");
    // The admin error shape: no token, a service token, a portal token.
    let missing = get_with_token(&machines, None).await;
    assert_eq!(missing["status"], "error");
    assert_eq!(missing["code"], 499);
    assert!(
        missing["messages"][0]
            .as_str()
            .unwrap()
            .contains("Token not found")
    );
    let refused = get_with_token(&machines, Some(&service)).await;
    assert_eq!(
        (&refused["status"], &refused["code"]),
        (&json!("error"), &json!(498))
    );
    let portal_token = generate(&portal, &[("username", USERNAME), ("password", PASSWORD)]).await;
    let refused = get_with_token(&machines, portal_token["token"].as_str()).await;
    assert_eq!(refused["code"], 498, "{refused}");
    // An admin token opens neither the services nor the portal.
    let services = get_with_token(&standalone.service_url("a/MapServer"), Some(&admin)).await;
    assert_eq!(services["error"]["code"], 498);
    let community = get_with_token(&portal.url("community/self"), Some(&admin)).await;
    assert_eq!(community["error"]["code"], 498);
    // Federated servers have no Administrator API of their own here.
    let federated = post_json(
        &portal.server("server1").unwrap().admin_generate_token_url(),
        &form,
    )
    .await;
    assert!(federated["token"].is_null(), "{federated}");
    let calls = portal.calls();
    assert_eq!(
        calls.server("standalone", Endpoint::ServerAdminGenerateToken),
        1
    );
    assert_eq!(calls.server("standalone", Endpoint::ServerAdmin), 4);
    let kinds: Vec<TokenKind> = portal.issued_tokens().into_iter().map(|t| t.kind).collect();
    assert!(kinds.contains(&TokenKind::ServerAdmin {
        server: "standalone".into()
    }));
}
