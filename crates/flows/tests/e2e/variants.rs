//! Portals that differ from the default: a web adaptor path, an organisation
//! that caps token lifetimes, an older Enterprise release without
//! `refresh_token_expires_in`; and many requests recovering at once.

use arcgis_auth_core::Expiration;
use arcgis_auth_testkit::{Endpoint, Grant, SERVER_NAME, USERNAME};
use reqwest_middleware::ClientWithMiddleware;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::support::*;

async fn kit_with(
    edit: impl FnOnce(arcgis_auth_testkit::FakePortalBuilder) -> arcgis_auth_testkit::FakePortalBuilder,
) -> Kit {
    let clock = arcgis_auth_core::ManualClock::new(arcgis_auth_core::Timestamp::from_unix_millis(
        1_700_000_000_000,
    ));
    let portal = edit(builder(&clock)).start().await;
    Kit::with(portal, clock)
}

/// `n` concurrent GETs of `url` (with `f=json`); their JSON answers.
async fn concurrent_gets(client: &ClientWithMiddleware, url: &str, n: usize) -> Vec<Value> {
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (client, url) = (client.clone(), format!("{url}?f=json"));
        tasks.spawn(async move {
            client
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn a_portal_behind_a_web_adaptor_federates_its_servers() {
    let kit = kit_with(|b| b.web_adaptor("portal")).await;
    assert!(kit.portal.portal_url().ends_with("/portal/sharing/rest"));
    let manager = kit.user_manager().await;
    let service = kit.service_url();
    let answer = get_json(&kit.client(&manager).0, &service).await;
    assert_eq!(answer["user"], USERNAME, "{answer}");
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 1);
    finish(kit).await;
}

#[tokio::test]
async fn an_organisation_cap_on_token_lifetimes_is_trusted_over_the_request() {
    let kit = kit_with(|b| b.max_token_expiration_minutes(60)).await;
    let app = kit
        .app_sign_in()
        .with_expiration(Expiration::minutes(14 * 24 * 60));
    let manager = kit.app_manager(app).await;
    let first = manager.token().await.unwrap();
    // Asked for two weeks, granted an hour: renewed after the hour, not later.
    kit.clock.advance(61 * MINUTE);
    let second = manager.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(kit.portal.calls().token(Grant::ClientCredentials), 2);
    finish(kit).await;
}

#[tokio::test]
async fn without_refresh_token_expiry_the_refresh_token_is_exchanged_by_age() {
    let kit = kit_with(|b| b.omit_refresh_token_expires_in()).await;
    let manager = kit.user_manager().await;
    let record = kit.stored().await.unwrap();
    assert!(record.refresh_token_expires_at.is_none());

    kit.clock.advance(31 * MINUTE);
    manager.token().await.unwrap();
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 1);
    assert_eq!(kit.portal.calls().token(Grant::ExchangeRefreshToken), 0);

    // Older than `exchange_after` (7 days): exchanged, before the portal's
    // two weeks run out.
    kit.clock.advance(7 * DAY);
    manager.token().await.unwrap();
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 1);
    assert_eq!(calls.token(Grant::ExchangeRefreshToken), 1);
    let refreshed = kit.stored().await.unwrap();
    assert_ne!(
        arcgis_auth_core::ExposeSecret::expose_secret(refreshed.refresh_token.as_ref().unwrap()),
        arcgis_auth_core::ExposeSecret::expose_secret(record.refresh_token.as_ref().unwrap())
    );
    finish(kit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_rejected_at_once_cause_one_refresh_and_one_server_token() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let client = kit.client(&manager).0;
    let item = kit.portal.secured_item_url("item1");
    let service = kit.service_url();

    // 100 requests discover the federated server at once: one server token.
    let answers = concurrent_gets(&client, &service, 100).await;
    assert!(answers.iter().all(|a| a["user"] == USERNAME));
    let calls = kit.portal.calls();
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 1);
    assert_eq!(calls.server(SERVER_NAME, Endpoint::ServerInfo), 1);

    // Every token dies at the portal; 100 requests get 498 together and
    // report the same token: one refresh, no storm.
    kit.portal.expire_access_tokens();
    let answers = concurrent_gets(&client, &item, 100).await;
    assert!(
        answers.iter().all(|a| a["accessedBy"] == USERNAME),
        "{answers:?}"
    );
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 1);
    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    finish(kit).await;
}
