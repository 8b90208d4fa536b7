//! Shared pieces for the request, federation and session tests: the counting
//! token source (`test_util`'s fake), a manager over a memory store, loopback mock servers, and
//! the "no token in any URL" check. (The down store is `down_store`, shared
//! with the sign-in tests.)

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{Clock, ManualClock, Portal, Timestamp, Token};
use arcgis_auth_flows::test_util::{self, FakeSource};
use arcgis_auth_flows::{Renewal, TokenManager};
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
use wiremock::MockServer;

pub const KEY: &str = "user:test";

/// The counting source of these tests: renews as `renewal` says with
/// token-1, token-2, ... (each valid two hours, no username).
pub fn counting(renewal: Renewal) -> Arc<FakeSource> {
    Arc::new(
        FakeSource::new(renewal)
            .with_token_prefix("token-")
            .with_lifetime(Duration::from_secs(7200))
            .without_username(),
    )
}

pub struct Session {
    pub manager: TokenManager,
    pub store: Arc<MemoryStore>,
    pub source: Arc<FakeSource>,
    pub clock: ManualClock,
    pub portal: Portal,
}

/// A session on `portal` holding `token-0` (valid for two hours), renewed as `renewal` says.
pub async fn session(portal: Portal, kind: SessionKind, renewal: Renewal) -> Session {
    session_with(portal, kind, renewal, |_| {}).await
}

pub async fn session_with(
    portal: Portal,
    kind: SessionKind,
    renewal: Renewal,
    edit: impl FnOnce(&mut SessionRecord),
) -> Session {
    let store = Arc::new(MemoryStore::default());
    let clock = ManualClock::new(Timestamp::now());
    let source = counting(renewal);
    let dyn_store: Arc<dyn SessionStore> = store.clone();
    let manager = TokenManager::builder(source.clone(), dyn_store, KEY)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let mut record = SessionRecord::new(portal.clone(), kind);
    record.set_token(&Token::new(
        "token-0".into(),
        clock.now() + Duration::from_secs(7200),
    ));
    edit(&mut record);
    manager.set_session(record).await.unwrap();
    Session {
        manager,
        store,
        source,
        clock,
        portal,
    }
}

/// The portal at `{server}/portal`.
pub fn portal_of(server: &MockServer) -> Portal {
    Portal::parse(&format!("{}/portal", server.uri())).unwrap()
}

/// A mock server listening on `ip` (any loopback address: 127.0.0.2 is
/// another origin than 127.0.0.1, and still this machine).
pub async fn server_on(ip: &str) -> MockServer {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    MockServer::builder().listener(listener).start().await
}

/// Every request a server received: none carries a token in its URL.
pub async fn assert_no_token_in_urls(server: &MockServer) {
    for request in server.received_requests().await.unwrap_or_default() {
        let url = request.url.as_str();
        assert!(
            !request
                .url
                .query_pairs()
                .any(|(k, _)| k.eq_ignore_ascii_case("token")),
            "token parameter in {url}"
        );
        assert!(!url.contains("token-"), "token value in {url}");
        assert!(!url.contains("server-"), "server token value in {url}");
    }
}

/// Whether a request carried any credential (the shared check), or a token
/// value of these tests (`token-<n>`) anywhere in its body.
pub fn carries_token(request: &wiremock::Request) -> bool {
    test_util::carries_token(&request.headers, &request.url, &request.body)
        || String::from_utf8_lossy(&request.body).contains("token-")
}

pub fn esri_header(request: &wiremock::Request) -> Option<String> {
    request
        .headers
        .get("x-esri-authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// A generateToken answer expiring an hour after `now`.
pub fn generate_token_answer(token: &str, now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "token": token,
        "expires": (now + Duration::from_secs(3600)).as_unix_millis(),
        "ssl": false
    })
}

/// Drops mock servers outside tokio's cooperative budget: wiremock verifies
/// its expectations on drop with a nested `block_on`, which can spin forever
/// when the test task has used up its budget (after many awaits).
pub async fn drop_servers(servers: Vec<MockServer>) {
    tokio::task::unconstrained(async move { drop(servers) }).await;
}
