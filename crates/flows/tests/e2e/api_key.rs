//! The API-key strategy end to end. The testkit issues no API keys (no
//! `AAPK…` keys, no key items), so a long-lived app token stands in for one:
//! a static token the portal accepts until it is expired, which is exactly
//! what the strategy relies on. Key prefixes are covered by the unit tests.

use arcgis_auth_core::{Expiration, ExposeSecret};
use arcgis_auth_flows::{ApiKey, FlowErrorKind};
use arcgis_auth_testkit::{CONFIDENTIAL_CLIENT_ID, Endpoint, Grant};

use crate::support::*;

#[tokio::test]
async fn a_static_key_opens_the_secured_item_until_the_portal_rejects_it() {
    let kit = Kit::start().await;
    let issued = kit
        .app_sign_in()
        .with_expiration(Expiration::minutes(14 * 24 * 60))
        .sign_in()
        .await
        .unwrap();
    let key = ApiKey::new(issued.token().access_token().clone()).unwrap();
    key.verify(&kit.portal.portal(), &kit.http).await.unwrap();

    let manager = key
        .session(kit.portal.portal())
        .with_clock(kit.arc_clock())
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    let (client, _) = kit.client(&manager);
    let item = kit.portal.secured_item_url("item1");
    let answer = get_json(&client, &item).await;
    assert_eq!(answer["accessedBy"], CONFIDENTIAL_CLIENT_ID, "{answer}");

    // Keys never expire on the client's clock...
    kit.clock.advance(30 * DAY);
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        key.secret().expose_secret()
    );
    // ...but the portal may reject them: a typed "not renewable" error,
    // with no attempt to renew.
    kit.portal.expire_access_tokens();
    let (err, flow) = get_error(&client, &item).await;
    assert_eq!(flow.kind(), FlowErrorKind::NotRenewable, "{flow}");
    assert_eq!(
        key.verify(&kit.portal.portal(), &kit.http)
            .await
            .unwrap_err()
            .kind(),
        FlowErrorKind::NotRenewable
    );
    let calls = kit.portal.calls();
    assert_eq!(calls.endpoint(Endpoint::Token), 1); // the stand-in's own issue
    assert_eq!(calls.token(Grant::ClientCredentials), 1);
    assert_eq!(calls.secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{key:?} {manager:?} {err} {err:?}"));
    finish(kit).await;
}
