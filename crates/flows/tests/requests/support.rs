//! Shared pieces for the request, federation and session tests: a counting
//! token source, a manager over a memory store, loopback mock servers, and
//! the "no token in any URL" check.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arcgis_auth_core::{Clock, ManualClock, Portal, Timestamp, Token};
use arcgis_auth_flows::{FlowError, RenewRequest, Renewal, TokenManager, TokenSource};
use arcgis_auth_storage::{
    ChangeEvent, MemoryStore, SaveMode, SessionKind, SessionRecord, SessionStore, StoreError,
    StoreResult, Version, Versioned,
};
use wiremock::MockServer;

pub const KEY: &str = "user:test";

/// Renews by "signing in again" (as app credentials do): token-1, token-2, ...
#[derive(Debug)]
pub struct Counting {
    pub renewals: AtomicUsize,
    pub renewal: Renewal,
}

impl Counting {
    pub fn new(renewal: Renewal) -> Arc<Self> {
        Arc::new(Counting {
            renewals: AtomicUsize::new(0),
            renewal,
        })
    }

    pub fn count(&self) -> usize {
        self.renewals.load(Ordering::SeqCst)
    }
}

#[arcgis_auth_flows::async_trait]
impl TokenSource for Counting {
    fn renewal(&self, _session: &SessionRecord) -> Renewal {
        self.renewal
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        let n = self.renewals.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Token::new(
            format!("token-{n}").into(),
            request.now() + Duration::from_secs(7200),
        ))
    }
}

pub struct Session {
    pub manager: TokenManager,
    pub store: Arc<MemoryStore>,
    pub source: Arc<Counting>,
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
    let source = Counting::new(renewal);
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

/// Whether a request carried any credential (header, or `token` in a form body).
pub fn carries_token(request: &wiremock::Request) -> bool {
    request.headers.contains_key("x-esri-authorization")
        || request.headers.contains_key("authorization")
        || url::form_urlencoded::parse(&request.body).any(|(k, _)| k == "token")
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

/// A store that is down: every call fails as unavailable.
#[derive(Debug)]
pub struct DownStore(tokio::sync::broadcast::Sender<ChangeEvent>);

impl DownStore {
    pub fn new() -> Arc<Self> {
        Arc::new(DownStore(tokio::sync::broadcast::channel(4).0))
    }
}

#[arcgis_auth_flows::async_trait]
impl SessionStore for DownStore {
    async fn load(&self, _key: &str) -> StoreResult<Option<Versioned>> {
        Err(StoreError::unavailable("the store is down"))
    }

    async fn save(&self, _: &str, _: &SessionRecord, _: SaveMode) -> StoreResult<Version> {
        Err(StoreError::unavailable("the store is down"))
    }

    async fn delete(&self, _key: &str, _version: Option<&Version>) -> StoreResult<bool> {
        Err(StoreError::unavailable("the store is down"))
    }

    async fn list(&self, _prefix: &str) -> StoreResult<Vec<String>> {
        Err(StoreError::unavailable("the store is down"))
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ChangeEvent> {
        self.0.subscribe()
    }
}
