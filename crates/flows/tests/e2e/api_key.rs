//! The API-key strategy end to end, with real API keys from the testkit
//! (`FakePortal::create_api_key`): long-lived, never renewed, accepted by the
//! portal's secured resources, revocable, optionally expiring and scoped to
//! items. When the portal rejects a key, the strategy answers a typed
//! `NotRenewable` and never asks the token endpoint for anything.

use arcgis_auth_core::{ErrorKind, ExposeSecret};
use arcgis_auth_flows::signin::ApiKey;
use arcgis_auth_flows::{FlowErrorKind, TokenManager};
use arcgis_auth_testkit::{ApiKeySpec, Endpoint, IssuedToken, SERVER_NAME, TokenKind};

use crate::support::*;

/// The client id of the developer credentials the keys belong to.
const KEY_APP: &str = "maps-app";

/// A manager over `key`'s session, on the kit's clock and store.
async fn key_manager(kit: &Kit, key: &ApiKey) -> TokenManager {
    key.session(kit.portal.portal())
        .with_clock(kit.arc_clock())
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap()
}

/// `issued` as the flows strategy takes it.
fn api_key(issued: &IssuedToken) -> ApiKey {
    assert_eq!(issued.kind, TokenKind::ApiKey);
    ApiKey::new(issued.token.clone()).unwrap()
}

#[tokio::test]
async fn a_key_opens_the_portal_and_its_servers_until_it_is_revoked() {
    let kit = Kit::start().await;
    let issued = kit.portal.create_api_key(ApiKeySpec::new(KEY_APP));
    let key = api_key(&issued);
    assert!(
        key.looks_like_api_key(),
        "the testkit's keys look like keys"
    );
    key.verify(&kit.portal.portal(), &kit.http).await.unwrap();

    let manager = key_manager(&kit, &key).await;
    let (client, _) = kit.client(&manager);
    let item = kit.portal.secured_item_url("item1");
    let answer = get_json(&client, &item).await;
    assert_eq!(answer["accessedBy"], KEY_APP, "{answer}");
    // The federated server gets a server token bought with the key.
    let service = get_json(&client, &kit.service_url()).await;
    assert_eq!(service["server"], SERVER_NAME, "{service}");

    // Keys never expire on the client's clock, and the portal's access-token
    // expiry does not touch them.
    kit.clock.advance(30 * DAY);
    kit.portal.expire_access_tokens();
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        key.secret().expose_secret()
    );
    assert_eq!(get_json(&client, &item).await["accessedBy"], KEY_APP);

    // The owner revokes the key: a typed "not renewable" error, with no
    // attempt to renew, and the manager keeps saying so.
    kit.portal.revoke_api_key(&issued.token).unwrap();
    let (err, flow) = get_error(&client, &item).await;
    assert_eq!(flow.kind(), FlowErrorKind::NotRenewable, "{flow}");
    assert!(!flow.is_transient(), "{flow}");
    let again = manager.token().await.unwrap_err();
    assert_eq!(again.kind(), FlowErrorKind::NotRenewable, "{again}");
    let verified = key
        .verify(&kit.portal.portal(), &kit.http)
        .await
        .unwrap_err();
    assert_eq!(verified.kind(), FlowErrorKind::NotRenewable, "{verified}");
    assert_eq!(verified.arcgis_kind(), Some(ErrorKind::InvalidToken));
    assert!(verified.to_string().contains("new API key"), "{verified}");

    let calls = kit.portal.calls();
    assert_eq!(calls.endpoint(Endpoint::Token), 0, "a key is never renewed");
    assert_eq!(calls.endpoint(Endpoint::GenerateToken), 1);
    assert_eq!(calls.secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{key:?} {manager:?} {err} {err:?} {again:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn a_key_past_its_expiration_date_is_not_renewable() {
    let kit = Kit::start().await;
    let issued = kit
        .portal
        .create_api_key(ApiKeySpec::new(KEY_APP).expires_in(30 * DAY));
    let item = kit.portal.secured_item_url("item1");

    // Told the expiry, the manager stops serving the key at it, without a request.
    let told = api_key(&issued).with_expiry(issued.expires_at);
    let manager = key_manager(&kit, &told).await;
    let (client, _) = kit.client(&manager);
    assert_eq!(get_json(&client, &item).await["accessedBy"], KEY_APP);
    kit.clock.advance(30 * DAY);
    kit.portal.reset_calls();
    let err = manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NotRenewable, "{err}");
    assert_eq!(kit.portal.calls().total(), 0, "nothing asked of the portal");

    // Not told, it learns from the portal's 498: the same typed error.
    let untold = key_manager(&kit, &api_key(&issued)).await;
    let (client, _) = kit.client(&untold);
    let (_, flow) = get_error(&client, &item).await;
    assert_eq!(flow.kind(), FlowErrorKind::NotRenewable, "{flow}");
    assert_eq!(kit.portal.calls().endpoint(Endpoint::Token), 0);
    kit.assert_no_secret(&format!("{err:?} {flow:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn a_key_scoped_to_an_item_is_forbidden_elsewhere_and_stays_usable() {
    let kit = Kit::start().await;
    let issued = kit
        .portal
        .create_api_key(ApiKeySpec::new(KEY_APP).item("item1"));
    let manager = key_manager(&kit, &api_key(&issued)).await;
    let (client, _) = kit.client(&manager);

    // A 403 is ArcGIS saying "not allowed", not "bad key": the answer reaches
    // the caller and the key is not dropped.
    let elsewhere = get_json(&client, &kit.portal.secured_item_url("item2")).await;
    assert_eq!(arcgis_error(&elsewhere).0, 403, "{elsewhere}");
    let allowed = get_json(&client, &kit.portal.secured_item_url("item1")).await;
    assert_eq!(allowed["accessedBy"], KEY_APP, "{allowed}");
    manager.token().await.unwrap();
    assert_eq!(kit.portal.calls().endpoint(Endpoint::Token), 0);
    finish(kit).await;
}
