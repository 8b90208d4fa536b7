//! What the web-tier tests share: the referer their tokens are bound to, a
//! middleware client, and the two secured requests (an item on the portal, a
//! query on a federated server) with the request the server received.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use arcgis_auth_core::HttpClient;
use arcgis_auth_flows::TokenManager;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_testkit::{FakePortal, FakeServer};
use reqwest_middleware::ClientWithMiddleware;

/// The referer the web-tier tokens are bound to.
pub(crate) const REFERER: &str = "https://app.example.com";

/// A client through the middleware for `manager`'s session, sending the
/// web-tier credential `http` holds.
pub(crate) fn client(
    manager: TokenManager,
    portal: &FakePortal,
    http: &HttpClient,
) -> ClientWithMiddleware {
    ArcGisAuth::new(manager, TokenRouting::new(portal.portal()), http.clone())
        .into_client()
        .unwrap()
}

/// `GET {secured item}?f=json` with the referer: the answer, or the error.
pub(crate) async fn get_item(
    client: &ClientWithMiddleware,
    portal: &FakePortal,
) -> reqwest_middleware::Result<reqwest::Response> {
    client
        .get(format!("{}?f=json", portal.secured_item_url("abc123")))
        .header("Referer", REFERER)
        .send()
        .await
}

/// A query of `server`'s secured feature service with the referer: the
/// answer, or the error.
pub(crate) async fn query(
    client: &ClientWithMiddleware,
    server: &FakeServer,
) -> reqwest_middleware::Result<reqwest::Response> {
    client
        .get(format!(
            "{}?f=json",
            server.service_url("Hosted/Parcels/FeatureServer/0/query")
        ))
        .header("Referer", REFERER)
        .send()
        .await
}

/// Asserts that `answer` is a 200, showing its body if not.
pub(crate) async fn assert_ok(answer: reqwest_middleware::Result<reqwest::Response>) {
    let answer = answer.unwrap();
    let status = answer.status();
    assert_eq!(status, 200, "{}", answer.text().await.unwrap());
}

/// The last service request `server` received (under `/rest/services/`).
pub(crate) async fn last_query_at(server: &FakeServer) -> wiremock::Request {
    server
        .mock_server()
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|r| r.url.path().contains("/rest/services/"))
        .expect("a service request reached the server")
}
