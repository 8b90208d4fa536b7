//! The crate page's first program, run against the testkit's portal: an app
//! signs in with its client credentials and the client it gets signs its
//! requests, through this crate's names alone.

use std::sync::Arc;

use arcgis_auth::core::{HttpClient, SecretString};
use arcgis_auth::flows::{middleware::ArcGisAuth, routing::TokenRouting, signin::AppSignIn};
use arcgis_auth::storage::MemoryStore;
use arcgis_auth_testkit::{CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, Grant};

#[arcgis_auth::tokio::test(crate = "arcgis_auth::tokio")]
async fn the_first_program_signs_its_requests() {
    let fake = FakePortal::start().await;
    let portal = fake.portal();
    let secret = SecretString::from(CONFIDENTIAL_CLIENT_SECRET);
    let http = HttpClient::new().unwrap();
    let app = AppSignIn::new(portal.clone(), CONFIDENTIAL_CLIENT_ID, secret, http.clone());
    let manager = app
        .sign_in()
        .await
        .unwrap()
        .into_manager(Arc::new(MemoryStore::new()), "app")
        .await
        .unwrap();
    let client = ArcGisAuth::new(manager, TokenRouting::new(portal.clone()), http)
        .into_client()
        .unwrap();
    for _ in 0..3 {
        let answer = client
            .get(format!("{}?f=json", portal.portals_self_url()))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = answer.json().await.unwrap();
        // portals/self answers the app (not an anonymous visitor) only with its token.
        assert!(body.get("error").is_none(), "{body}");
        assert_eq!(body["appInfo"]["appId"], CONFIDENTIAL_CLIENT_ID, "{body}");
    }
    // One sign-in served every request.
    assert_eq!(fake.calls().token(Grant::ClientCredentials), 1);
}
