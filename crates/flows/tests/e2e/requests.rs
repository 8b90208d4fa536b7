//! Authenticated requests through the middleware: recovery after the portal
//! revokes or expires tokens, and federated, foreign and standalone servers.

use arcgis_auth_core::ErrorKind;
use arcgis_auth_flows::FlowErrorKind;
use arcgis_auth_testkit::{CONFIDENTIAL_CLIENT_ID, Endpoint, Grant, SERVER_NAME, USERNAME};

use crate::support::*;

#[tokio::test]
async fn revoked_sessions_end_with_sign_in_required_after_one_renewal_attempt() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let (client, _) = kit.client(&manager);
    let item = kit.portal.secured_item_url("item1");
    assert_eq!(get_json(&client, &item).await["accessedBy"], USERNAME);

    // An administrator revokes everything: the item answers 498 inside an
    // HTTP 200, the middleware reports it, the refresh is refused (the
    // refresh token is revoked too), and the caller gets "sign in again".
    kit.portal.revoke_all_tokens();
    let (err, flow) = get_error(&client, &item).await;
    assert_eq!(flow.kind(), FlowErrorKind::SignInRequired, "{flow}");
    // The portal's answer to the refresh: 498 "Invalid refresh_token".
    assert_eq!(
        flow.arcgis_kind(),
        Some(ErrorKind::RefreshTokenExpired),
        "{flow}"
    );
    assert!(flow.to_string().contains("sign in again"), "{flow}");
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 1);
    assert_eq!(calls.endpoint(Endpoint::ContentItem), 2); // no retry without a token
    // The manager does not try again on its own: the session is over.
    assert_eq!(
        manager.token().await.unwrap_err().kind(),
        FlowErrorKind::SignInRequired
    );
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 1);
    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{err} {err:?} {manager:?} {client:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn expired_access_tokens_cost_one_refresh_and_one_retry() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let (client, _) = kit.client(&manager);
    let item = kit.portal.secured_item_url("item1");
    assert_eq!(get_json(&client, &item).await["accessedBy"], USERNAME);

    // Expired early at the portal (the client's clock says the token is fine).
    kit.portal.expire_access_tokens();
    assert_eq!(get_json(&client, &item).await["accessedBy"], USERNAME);
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 1);
    assert_eq!(calls.endpoint(Endpoint::ContentItem), 3); // ok, 498, retry
    // And the renewed token keeps working without another refresh.
    assert_eq!(get_json(&client, &item).await["accessedBy"], USERNAME);
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 1);
    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    finish(kit).await;
}

#[tokio::test]
async fn federated_server_gets_its_own_token_cached_and_renewed_with_the_portal_token() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let (client, federation) = kit.client(&manager);
    let server = kit.portal.server(SERVER_NAME).unwrap();
    let service = server.service_url("Hosted/Parcels/FeatureServer");

    // Discovery, a server token from the portal, success.
    let answer = get_json(&client, &service).await;
    assert_eq!(answer["user"], USERNAME, "{answer}");
    assert_eq!(answer["server"], SERVER_NAME);
    let calls = kit.portal.calls();
    assert_eq!(calls.server(SERVER_NAME, Endpoint::ServerInfo), 1);
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 1);
    assert_eq!(calls.server(SERVER_NAME, Endpoint::ServerServices), 1);
    // It was a server token (made with serverUrl), not the portal token.
    let sent = kit.portal.received_requests().await;
    let generate = sent
        .iter()
        .find(|r| r.url.path().ends_with("/generateToken"))
        .unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&generate.body)
        .into_owned()
        .collect();
    assert!(
        form.iter()
            .any(|(k, v)| k == "serverUrl" && v.trim_end_matches('/') == server.root_url())
    );

    // Cached: the second request makes no new token (and reads no /rest/info).
    assert_eq!(get_json(&client, &service).await["user"], USERNAME);
    let calls = kit.portal.calls();
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 1);
    assert_eq!(calls.server(SERVER_NAME, Endpoint::ServerInfo), 1);

    // The portal token is renewed (reported invalid): server tokens go with it.
    manager.report_invalid(&manager.token().await.unwrap());
    assert_eq!(get_json(&client, &service).await["user"], USERNAME);
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 1);
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 2);

    // The portal token expires on the shared clock: refreshed, and a new
    // server token made from it.
    kit.clock.advance(31 * MINUTE);
    assert_eq!(get_json(&client, &service).await["user"], USERNAME);
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 2);
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 3);
    assert_eq!(calls.server(SERVER_NAME, Endpoint::ServerServices), 4);
    assert_eq!(calls.secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{client:?} {federation:?} {manager:?}"));
    finish(kit).await;
}

/// Every request the named server received: none carried a credential.
async fn assert_server_saw_no_token(kit: &Kit, name: &str) {
    let requests = kit
        .portal
        .server(name)
        .unwrap()
        .mock_server()
        .received_requests()
        .await
        .unwrap_or_default();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(!carries_token(request), "a token went to {}", request.url);
        let text = format!(
            "{:?} {}",
            request.headers,
            String::from_utf8_lossy(&request.body)
        );
        kit.assert_no_secret(&text);
    }
}

#[tokio::test]
async fn servers_of_another_portal_and_untrusted_standalone_servers_get_no_token() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let (client, federation) = kit.client(&manager);
    let issued_before = kit.portal.issued_tokens().len();

    for name in [FOREIGN, STANDALONE] {
        let server = kit.portal.server(name).unwrap();
        let answer = get_json(&client, &server.service_url("Hosted/Parcels/FeatureServer")).await;
        // Sent without a token, so the server asks for one (499 in a 200).
        assert_eq!(arcgis_error(&answer).0, 499, "{answer}");
        assert_server_saw_no_token(&kit, name).await;

        let err = federation
            .server_token(&server.server_root())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::NotFederated, "{err}");
        if name == FOREIGN {
            assert!(err.to_string().contains("other.example.com"), "{err}");
        }
        assert!(
            !federation
                .is_federated(&server.server_root())
                .await
                .unwrap()
        );
        kit.assert_no_secret(&format!("{err} {err:?}"));
    }
    let calls = kit.portal.calls();
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 0);
    assert_eq!(calls.server(STANDALONE, Endpoint::ServerGenerateToken), 0);
    assert_eq!(calls.token(Grant::RefreshToken), 0);
    assert_eq!(kit.portal.issued_tokens().len(), issued_before);
    assert_eq!(calls.secrets_in_url(), 0);
    finish(kit).await;
}

#[tokio::test]
async fn a_plain_client_without_the_middleware_sends_nothing() {
    // The counterpart of the tests above: the secured item refuses an
    // anonymous request, so their successes are the middleware's doing.
    let kit = Kit::start().await;
    let item = kit.portal.secured_item_url("item1");
    let answer = json_of(
        reqwest::Client::new()
            .get(format!("{item}?f=json"))
            .send()
            .await,
    )
    .await;
    assert_eq!(arcgis_error(&answer).0, 499, "{answer}");
    finish(kit).await;
}

#[tokio::test]
async fn a_server_that_rejects_its_token_when_the_portal_token_is_dead_too_recovers_once() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let (client, _) = kit.client(&manager);
    let service = kit.service_url();
    assert_eq!(get_json(&client, &service).await["user"], USERNAME);

    // Every access token dies at the portal (server and portal tokens alike),
    // while the client's clock says they are fine.
    kit.portal.expire_access_tokens();
    let answer = get_json(&client, &service).await;
    assert_eq!(answer["user"], USERNAME, "{answer}");
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 1);
    assert_eq!(calls.server(SERVER_NAME, Endpoint::ServerServices), 3);
    assert_eq!(calls.secrets_in_url(), 0);
    finish(kit).await;
}

#[tokio::test]
async fn server_tokens_are_persisted_and_reused_after_a_restart() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let (client, _) = kit.client(&manager);
    let service = kit.service_url();
    assert_eq!(get_json(&client, &service).await["user"], USERNAME);
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 1);

    // A restart: a manager and a middleware built from the store alone.
    let rebuilt = kit.manager_from_store(kit.store.clone());
    let (restarted, _) = kit.client(&rebuilt);
    assert_eq!(get_json(&restarted, &service).await["user"], USERNAME);
    let calls = kit.portal.calls();
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 1);
    assert_eq!(calls.endpoint(Endpoint::Token), 1);
    finish(kit).await;
}

#[tokio::test]
async fn app_sessions_recover_from_a_498_too() {
    let kit = Kit::start().await;
    let manager = kit.app_manager(kit.app_sign_in()).await;
    let (client, _) = kit.client(&manager);
    let item = kit.portal.secured_item_url("item1");
    assert_eq!(
        get_json(&client, &item).await["accessedBy"],
        CONFIDENTIAL_CLIENT_ID
    );

    kit.portal.expire_access_tokens();
    assert_eq!(
        get_json(&client, &item).await["accessedBy"],
        CONFIDENTIAL_CLIENT_ID
    );
    // Signed in, then once more after the 498 (the best-known JS client
    // never retries app sessions).
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::ClientCredentials), 2);
    assert_eq!(calls.endpoint(Endpoint::ContentItem), 3);
    assert_eq!(calls.secrets_in_url(), 0);
    finish(kit).await;
}

#[tokio::test]
async fn a_portal_clock_ahead_of_the_client_costs_one_refresh() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let (client, _) = kit.client(&manager);
    let item = kit.portal.secured_item_url("item1");
    // The portal's clock runs 40 minutes ahead: the client's token is dead
    // there, though the client's clock says it has 30 minutes left.
    kit.portal.advance_clock(40 * MINUTE);
    assert_eq!(get_json(&client, &item).await["accessedBy"], USERNAME);
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 1);
    finish(kit).await;
}

#[tokio::test]
async fn every_transport_is_accepted_by_the_portal_and_none_uses_the_url() {
    use arcgis_auth_flows::middleware::ArcGisAuth;
    use arcgis_auth_flows::routing::{TokenRouting, TokenTransport};

    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let item = kit.portal.secured_item_url("item1");
    for transport in [
        TokenTransport::EsriHeader,
        TokenTransport::AuthorizationHeader,
        TokenTransport::FormBody,
    ] {
        let routing = TokenRouting::new(kit.portal.portal()).default_transport(transport);
        let client = ArcGisAuth::new(manager.clone(), routing, kit.http.clone())
            .into_client()
            .unwrap();
        let answer = get_json(&client, &item).await;
        assert_eq!(answer["accessedBy"], USERNAME, "{transport:?}: {answer}");
    }
    let requests = kit.portal.received_requests().await;
    let items: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path().contains("/content/items/"))
        .collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].headers.contains_key("x-esri-authorization"));
    assert!(items[1].headers.contains_key("authorization"));
    assert_eq!(items[2].method.as_str(), "POST");
    assert!(url::form_urlencoded::parse(&items[2].body).any(|(k, _)| k == "token"));
    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    finish(kit).await;
}

#[tokio::test]
async fn a_trusted_standalone_servers_admin_api_gets_an_admin_token_that_goes_nowhere_else() {
    use arcgis_auth_flows::federation::Federation;
    use arcgis_auth_flows::middleware::ArcGisAuth;
    use arcgis_auth_flows::routing::{ServerCredentials, TokenRouting};
    use arcgis_auth_testkit::PASSWORD;

    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let standalone = kit.portal.server(STANDALONE).unwrap();
    let foreign = kit.portal.server(FOREIGN).unwrap();
    let machines = standalone.admin_url("machines");

    // The fake's Administrator API refuses a service token of its own server,
    // in the admin error shape: only an admin/generateToken token opens it.
    let plain = reqwest::Client::new();
    let form = [
        ("username", USERNAME),
        ("password", PASSWORD),
        ("client", "requestip"),
        ("f", "json"),
    ];
    let service_token = json_of(
        plain
            .post(standalone.generate_token_url())
            .form(&form)
            .send()
            .await,
    )
    .await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = json_of(
        plain
            .get(format!("{machines}?f=json"))
            .header("X-Esri-Authorization", format!("Bearer {service_token}"))
            .send()
            .await,
    )
    .await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert_eq!(refused["code"], 498, "{refused}");
    let anonymous = json_of(plain.get(format!("{machines}?f=json")).send().await).await;
    assert_eq!(anonymous["code"], 499, "{anonymous}");

    let routing = TokenRouting::new(kit.portal.portal()).trust_server_with_credentials(
        standalone.server_root(),
        ServerCredentials::new(USERNAME, PASSWORD.into()),
    );
    let federation = Federation::new(manager.clone(), routing, kit.http.clone());
    let client = ArcGisAuth::from_federation(federation)
        .into_client()
        .unwrap();

    // The Administrator API gets an admin token, fetched once and reused; the
    // services of the same server get a service token of their own.
    for _ in 0..2 {
        let answer = get_json(&client, &machines).await;
        assert_eq!(answer["user"], USERNAME, "{answer}");
        assert_eq!(answer["path"], "/admin/machines", "{answer}");
    }
    let service = get_json(&client, &standalone.service_url("A/MapServer")).await;
    assert_eq!(service["user"], USERNAME, "{service}");
    let calls = kit.portal.calls();
    assert_eq!(
        calls.server(STANDALONE, Endpoint::ServerAdminGenerateToken),
        1
    );
    assert_eq!(calls.server(STANDALONE, Endpoint::ServerGenerateToken), 2);
    assert_eq!(calls.server(STANDALONE, Endpoint::ServerAdmin), 4);

    // Another origin's /admin/ URL gets nothing: neither the admin token nor
    // any other.
    let answer = get_json(&client, &foreign.admin_url("machines")).await;
    assert!(answer.get("user").is_none(), "{answer}");
    assert_server_saw_no_token(&kit, FOREIGN).await;
    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    finish(kit).await;
}
