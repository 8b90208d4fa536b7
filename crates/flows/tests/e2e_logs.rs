//! Every flow end to end against the testkit portal with every `arcgis_auth*`
//! tracing event and span captured at TRACE level: no token, refresh token,
//! password or client secret the portal ever saw appears in the output.
//!
//! A test binary of its own: the subscriber is the global default (renewals
//! run in their own tasks), and tracing caches per call site whether anyone
//! listens, so other tests in the same binary could make this one miss events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "e2e/support.rs"]
mod support;

#[path = "capture/mod.rs"]
mod capture;
use capture::Capture;

use std::str::FromStr;

use arcgis_auth_core::TokenBinding;
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::signin::PasswordSignIn;
use arcgis_auth_testkit::{Failure, PASSWORD, USERNAME};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::*;

#[tokio::test]
async fn no_secret_reaches_the_logs_in_any_flow() {
    let capture = Capture::default();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(capture.clone())
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL);
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::filter::Targets::from_str("arcgis_auth=trace").unwrap());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let kit = Kit::start().await;

    // User sign-in through the loopback listener, refresh, exchange.
    let (signed_in, _, _) = kit.sign_in_with_listener().await;
    let manager = signed_in
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    kit.clock.advance(31 * MINUTE);
    manager.token().await.unwrap();
    kit.clock.advance(36 * HOUR);
    manager.token().await.unwrap();

    // Requests: a 498 recovered, a federated server, a transient failure.
    let (client, _) = kit.client(&manager);
    let item = format!("{}?f=json", kit.portal.secured_item_url("item1"));
    let service = format!("{}?f=json", kit.service_url());
    client.get(&item).send().await.unwrap();
    kit.portal.expire_access_tokens();
    client.get(&item).send().await.unwrap();
    client.get(&service).send().await.unwrap();
    kit.portal.fail_next_token_calls(1, Failure::ErrorIn200);
    kit.clock.advance(31 * MINUTE);
    client.get(&service).send().await.unwrap();
    // Revoked: the middleware's error, and sign-out.
    kit.portal.revoke_all_tokens();
    let _ = client.get(&item).send().await.unwrap_err();
    let report = Account::new(manager, kit.http.clone()).sign_out().await;
    assert!(report.deleted.is_ok());

    // App credentials and generateToken, each renewed once.
    let app = kit.app_manager(kit.app_sign_in()).await;
    let password = PasswordSignIn::new(
        kit.portal.portal(),
        kit.http.clone(),
        TokenBinding::RequestIp,
    )
    .with_clock(kit.arc_clock())
    .sign_in(USERNAME, PASSWORD.to_owned().into())
    .await
    .unwrap()
    .into_manager_with(kit.store.clone(), "e2e:password", config())
    .await
    .unwrap();
    kit.clock.advance(3 * HOUR);
    app.token().await.unwrap();
    password.token().await.unwrap();

    let logs = capture.text();
    // The capture saw the flows (so an empty log cannot pass)...
    for expected in [
        "user signed in",
        "token renewed",
        "exchange",
        "the token was rejected",
        "app signed in",
        "signed out",
    ] {
        assert!(logs.contains(expected), "no `{expected}` event in:\n{logs}");
    }
    // ...and not one of the secrets the portal issued or knows.
    assert!(
        kit.secrets().len() > 10,
        "the portal issued the tokens checked for"
    );
    kit.assert_no_secret(&logs);
    finish(kit).await;
}
