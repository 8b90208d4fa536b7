//! Helpers shared by the sign-in tests: a wiremock portal on loopback, form
//! bodies as maps, an injected clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use arcgis_auth_core::{Clock, HttpClient, ManualClock, Portal, Timestamp};
use arcgis_auth_storage::{MemoryStore, SessionStore};
use wiremock::{MockServer, Request};

/// 2023-11-14T22:13:20Z.
pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_millis(T0))
}

pub(crate) fn arc_clock(clock: &ManualClock) -> Arc<dyn Clock> {
    Arc::new(clock.clone())
}

pub(crate) fn http() -> HttpClient {
    HttpClient::new().expect("HTTP client")
}

pub(crate) fn store() -> Arc<dyn SessionStore> {
    Arc::new(MemoryStore::default())
}

/// The portal whose sharing root is on the mock server.
pub(crate) fn portal(server: &MockServer) -> Portal {
    Portal::parse(&format!("{}/sharing/rest", server.uri())).expect("portal on loopback")
}

/// The form body of a request, as a map (a repeated key keeps its last value).
pub(crate) fn form(request: &Request) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A map from literal pairs, to compare with [`form`].
pub(crate) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The form bodies of every request the server received, in order.
pub(crate) async fn forms(server: &MockServer) -> Vec<BTreeMap<String, String>> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(form)
        .collect()
}

/// A token endpoint success body.
pub(crate) fn token_body(access: &str, refresh: Option<(&str, u64)>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "access_token": access,
        "expires_in": 1800,
        "username": "jdoe",
        "ssl": true,
    });
    if let Some((rt, expires_in)) = refresh {
        body["refresh_token"] = rt.into();
        body["refresh_token_expires_in"] = expires_in.into();
    }
    body
}

/// A portal on loopback that answers POSTs to `endpoint` (below the sharing
/// root) with `answers` in turn, the last one for good.
pub(crate) async fn portal_answering(
    endpoint: &str,
    answers: Vec<wiremock::ResponseTemplate>,
) -> MockServer {
    use wiremock::matchers::{method, path};
    let server = MockServer::start().await;
    let last = answers.len().saturating_sub(1);
    for (i, answer) in answers.into_iter().enumerate() {
        let mock = wiremock::Mock::given(method("POST"))
            .and(path(format!("/sharing/rest/{endpoint}")))
            .respond_with(answer);
        let mock = if i < last {
            mock.up_to_n_times(1)
        } else {
            mock
        };
        mock.mount(&server).await;
    }
    server
}

/// A testkit portal (the ready-made set: apps, the user `jdoe`, a federated
/// server) on `clock`, for tests of behaviour rather than of exact bytes: it
/// checks passwords, secrets and refresh tokens for real.
pub(crate) async fn fake_portal(clock: &ManualClock) -> arcgis_auth_testkit::FakePortal {
    use arcgis_auth_testkit::{
        App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, LOOPBACK_REDIRECT_URI,
        PASSWORD, PUBLIC_CLIENT_ID, USERNAME,
    };
    FakePortal::builder()
        .clock(clock.clone())
        .app(App::public(PUBLIC_CLIENT_ID).redirect_uri(LOOPBACK_REDIRECT_URI))
        .app(
            App::confidential(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET)
                .redirect_uri(LOOPBACK_REDIRECT_URI),
        )
        .user(USERNAME, PASSWORD)
        .signed_in_user(USERNAME)
        .start()
        .await
}
