//! Test controls: failures, counters, clock, expiry, revocation, the log, configuration.

mod common;

use std::time::Duration;

use arcgis_auth_core::{Clock, ExposeSecret, ManualClock, Portal, Timestamp};
use arcgis_auth_testkit::{
    App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, ErrorKind, Failure,
    FakePortal, Grant, PUBLIC_CLIENT_ID, SERVER_NAME, Server, TokenKind, USERNAME,
};
use common::*;

fn app_form() -> [(&'static str, &'static str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", CONFIDENTIAL_CLIENT_ID),
        ("client_secret", CONFIDENTIAL_CLIENT_SECRET),
        ("f", "json"),
    ]
}

async fn raw_token_call(portal: &FakePortal) -> Result<reqwest::Response, reqwest::Error> {
    client()
        .post(portal.url("oauth2/token"))
        .form(&app_form())
        .send()
        .await
}

#[tokio::test]
async fn failures_are_injected_in_order_then_the_portal_recovers() {
    let portal = FakePortal::start().await;
    portal.fail_next_token_calls(1, Failure::ServiceUnavailable503);
    portal.fail_next_token_calls(1, Failure::HtmlPage);
    portal.fail_next_token_calls(1, Failure::ErrorIn200);
    portal.fail_next_token_calls(1, Failure::ConnectionReset);

    let r = raw_token_call(&portal).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("Service Unavailable"));

    let r = raw_token_call(&portal).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(is_html(&r));
    assert!(r.json::<serde_json::Value>().await.is_err());

    let r = raw_token_call(&portal).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 500);

    let err = raw_token_call(&portal).await.unwrap_err();
    // reqwest: kind Request, source hyper IncompleteMessage; no status, no body.
    assert!(err.status().is_none(), "{err}");
    assert!(err.is_request(), "{err:?}");

    // Nothing was issued by the failed calls; the next call works.
    assert!(portal.issued_tokens().is_empty());
    let r = raw_token_call(&portal).await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert_eq!(portal.calls().token(Grant::ClientCredentials), 5);
    assert_eq!(portal.calls().endpoint(Endpoint::Token), 5);
}

#[tokio::test]
async fn a_failure_does_not_consume_the_code() {
    let portal = FakePortal::start().await;
    let (challenge, verifier) = pkce();
    let location = authorize_location(
        &portal,
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = query(&location, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1/callback"),
        ("code_verifier", verifier.secret().as_str()),
    ];
    portal.fail_next_token_calls(1, Failure::ConnectionReset);
    assert!(
        client()
            .post(portal.url("oauth2/token"))
            .form(&form)
            .send()
            .await
            .is_err()
    );
    let answer = token(&portal, &form).await;
    assert!(answer["access_token"].is_string(), "{answer}");
}

#[tokio::test]
async fn slow_answers_time_clients_out_but_the_work_is_done() {
    let portal = FakePortal::start().await;
    portal.fail_next_token_calls(1, Failure::Slow(Duration::from_millis(800)));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = impatient
        .post(portal.url("oauth2/token"))
        .form(&app_form())
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(portal.issued_tokens().len(), 1);
    assert_eq!(portal.calls().token(Grant::ClientCredentials), 1);
}

#[tokio::test]
async fn failures_on_other_endpoints_and_servers() {
    let portal = FakePortal::start().await;
    portal.fail_next_calls(Endpoint::GenerateToken, 2, Failure::ServiceUnavailable503);
    portal.fail_next_server_calls(SERVER_NAME, Endpoint::ServerInfo, 1, Failure::HtmlPage);
    let info = portal.server(SERVER_NAME).unwrap().info_url();
    let r = client()
        .get(with_query(&info, &[("f", "json")]))
        .send()
        .await
        .unwrap();
    assert!(is_html(&r));
    assert!(get_with_token(&info, None).await["owningSystemUrl"].is_string());

    let generate = || {
        client()
            .post(portal.url("generateToken"))
            .form(&[("f", "json")])
            .send()
    };
    assert_eq!(generate().await.unwrap().status(), 503);
    portal.clear_failures();
    assert_eq!(generate().await.unwrap().status(), 200);
    // Token calls were never affected.
    assert!(raw_token_call(&portal).await.unwrap().status().is_success());
}

#[tokio::test]
async fn counters_count_everything_and_reset() {
    let portal = FakePortal::start().await;
    let signed_in = sign_in(&portal).await;
    get_with_token(&portal.url("info"), None).await;
    get_with_token(
        &portal.url("portals/self"),
        signed_in["access_token"].as_str(),
    )
    .await;
    get_with_token(&portal.url("no/such/endpoint"), None).await;
    get_with_token(&portal.server(SERVER_NAME).unwrap().info_url(), None).await;

    let calls = portal.calls();
    assert_eq!(calls.endpoint(Endpoint::Authorize), 1);
    assert_eq!(calls.endpoint(Endpoint::Token), 1);
    assert_eq!(calls.token(Grant::AuthorizationCode), 1);
    assert_eq!(calls.token(Grant::RefreshToken), 0);
    assert_eq!(calls.endpoint(Endpoint::Info), 1);
    assert_eq!(calls.endpoint(Endpoint::PortalsSelf), 1);
    assert_eq!(calls.endpoint(Endpoint::Unknown), 1);
    assert_eq!(calls.server(SERVER_NAME, Endpoint::ServerInfo), 1);
    assert_eq!(calls.total(), 6);

    portal.reset_calls();
    assert_eq!(portal.calls().total(), 0);
    assert_eq!(portal.received_requests().await.len(), 5);
}

#[tokio::test]
async fn expire_and_revoke_everything() {
    let portal = FakePortal::start().await;
    let user = sign_in(&portal).await;
    let access = user["access_token"].as_str().unwrap().to_owned();
    let refresh = user["refresh_token"].as_str().unwrap().to_owned();
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("refresh_token", refresh.as_str()),
    ];
    let me = portal.url("community/self");

    portal.expire_access_tokens();
    assert_eq!(
        get_with_token(&me, Some(&access)).await["error"]["code"],
        498
    );
    let recovered = token(&portal, &refresh_form).await;
    let access2 = recovered["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        get_with_token(&me, Some(&access2)).await["username"],
        USERNAME
    );

    portal.expire_all_tokens();
    assert_eq!(
        get_with_token(&me, Some(&access2)).await["error"]["code"],
        498
    );
    let dead = token(&portal, &refresh_form).await;
    assert_eq!(dead["error"]["error_description"], "refresh_token expired");

    // Sign in again, then revoke everything.
    let user = sign_in(&portal).await;
    portal.revoke_all_tokens();
    assert_eq!(
        get_with_token(&me, user["access_token"].as_str()).await["error"]["code"],
        498
    );
    let revoked = refresh_grant(
        &portal,
        PUBLIC_CLIENT_ID,
        user["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(revoked["error"]["code"], 498);
    assert!(portal.issued_tokens().iter().all(|t| t.revoked));
}

#[tokio::test]
async fn clock_skew_moves_only_the_portal() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
    let portal = FakePortal::builder()
        .app(App::confidential("c", "s"))
        .clock(clock.clone())
        .start()
        .await;
    assert_eq!(portal.now(), Timestamp::from_unix_millis(1_700_000_000_000));
    portal.rewind_clock(Duration::from_secs(60));
    assert_eq!(portal.clock_offset_millis(), -60_000);
    let answer = app_sign_in(&portal, "c", "s").await;
    let issued = &portal.issued_tokens()[0];
    assert_eq!(
        issued.issued_at,
        Timestamp::from_unix_millis(1_699_999_940_000)
    );
    assert_eq!(issued.kind, TokenKind::App);
    assert_eq!(
        issued.token.expose_secret(),
        answer["access_token"].as_str().unwrap()
    );
    assert_eq!(clock.now(), Timestamp::from_unix_millis(1_700_000_000_000));

    portal.advance_clock(Duration::from_secs(60 + 7200));
    let item = get_with_token(
        &portal.secured_item_url("x"),
        answer["access_token"].as_str(),
    )
    .await;
    assert_eq!(item["error"]["code"], 498);
}

#[tokio::test]
async fn debug_never_shows_secrets() {
    let portal = FakePortal::builder()
        .app(App::confidential("c", "very-secret-value"))
        .user("jdoe", "hunter2-password")
        .start()
        .await;
    let answer = app_sign_in(&portal, "c", "very-secret-value").await;
    let access = answer["access_token"].as_str().unwrap();
    let debug = format!(
        "{portal:?} {:?} {:?}",
        portal.issued_tokens(),
        FakePortal::builder()
            .app(App::confidential("c", "very-secret-value"))
            .user("jdoe", "hunter2-password")
    );
    for secret in ["very-secret-value", "hunter2-password", access] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("jdoe") && debug.contains("[REDACTED]"));
}

#[tokio::test]
async fn web_adaptor_and_portal_parsing() {
    let portal = FakePortal::builder()
        .web_adaptor("portal")
        .user("jdoe", "pw")
        .federated_server("hosted")
        .start()
        .await;
    assert!(portal.portal_url().ends_with("/portal/sharing/rest"));
    assert_eq!(
        Portal::parse(&portal.portal_url()).unwrap(),
        portal.portal()
    );
    assert_eq!(
        portal.portal().token_url().as_str(),
        portal.url("oauth2/token")
    );
    let info = get_with_token(&portal.server("hosted").unwrap().info_url(), None).await;
    assert_eq!(info["owningSystemUrl"], portal.url_root());
    assert!(portal.url_root().ends_with("/portal"));
    let generated = post_json(
        &portal.url("generateToken"),
        &[("username", "jdoe"), ("password", "pw"), ("f", "json")],
    )
    .await;
    assert!(generated["token"].is_string());

    let default = FakePortal::start().await;
    let url = default.portal_url();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/sharing/rest"),
        "{url}"
    );
    assert_eq!(Portal::parse(&url).unwrap().sharing_root().as_str(), url);
}

#[tokio::test]
async fn configuration_errors_are_typed() {
    let cases = [
        FakePortal::builder()
            .app(App::public("a"))
            .app(App::public("a")),
        FakePortal::builder().user("a", "1").user("a", "2"),
        FakePortal::builder().signed_in_user("ghost"),
        FakePortal::builder().server(Server::federated("rest")),
        FakePortal::builder().server(Server::federated("a/b")),
        FakePortal::builder()
            .federated_server("s")
            .federated_server("s"),
        FakePortal::builder().web_adaptor("a/b"),
    ];
    for builder in cases {
        let err = builder.try_start().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    }
    let portal = FakePortal::start().await;
    assert_eq!(
        portal.set_signed_in_user("ghost").unwrap_err().kind(),
        ErrorKind::UnknownUser
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_are_all_counted_and_answered() {
    fn shareable<T: Send + Sync + 'static>(_: &T) {}
    let portal = std::sync::Arc::new(FakePortal::start().await);
    shareable(&portal);
    let signed_in = sign_in(&portal).await;
    let refresh = signed_in["refresh_token"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let portal = std::sync::Arc::clone(&portal);
            let refresh = refresh.clone();
            tokio::spawn(async move { refresh_grant(&portal, PUBLIC_CLIENT_ID, &refresh).await })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        let answer = task.await.unwrap();
        tokens.insert(answer["access_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 32, "every refresh gets its own token");
    assert_eq!(portal.calls().token(Grant::RefreshToken), 32);
}
