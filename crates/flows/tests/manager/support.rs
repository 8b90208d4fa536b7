//! Helpers over the scripted `TokenSource` (from flows' `test_util`) and the faulty store (from storage's).

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, ManualClock, Portal, RefreshToken, Timestamp, Token};
use arcgis_auth_flows::{AccessToken, FlowError, FlowErrorKind, ManagerConfig, TokenManager};
use arcgis_auth_storage::{
    Lease, MemoryStore, SaveMode, SessionKind, SessionRecord, SessionStore, Version,
};
use tokio::task::JoinHandle;

pub(crate) const START: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);
pub(crate) const MINUTE: Duration = Duration::from_secs(60);
pub(crate) const HOUR: Duration = Duration::from_secs(3600);
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

pub(crate) use arcgis_auth_flows::test_util::{FakeSource, Step};

/// A user session whose access token expires at `expires_at`, with refresh
/// token `RT-SECRET-0` expiring at `rt_expires`.
pub(crate) fn user_record(
    access: &str,
    expires_at: Timestamp,
    rt_expires: Option<Timestamp>,
) -> SessionRecord {
    let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
    record.client_id = Some("client-id".into());
    record.redirect_uri = Some("https://app.example.com/callback".into());
    record.set_token(
        &Token::new(access.into(), expires_at).with_refresh_token(Some(RefreshToken::new(
            "RT-SECRET-0".into(),
            START,
            rt_expires,
        ))),
    );
    record.updated_at = Some(expires_at - 30 * MINUTE);
    record
}

/// A config without jitter and with a fixed seed, so refresh times are exact.
pub(crate) fn exact_config() -> ManagerConfig {
    let mut config = ManagerConfig::default();
    config.jitter = 0.0;
    config.jitter_seed = Some(1);
    config
}

/// A user session whose access token expired a minute ago (refresh token good for 10 days).
pub(crate) fn expired_user() -> SessionRecord {
    user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY))
}

/// A user session issued at START whose access token lives 30 minutes
/// (refresh token good for 10 days).
pub(crate) fn fresh_user() -> SessionRecord {
    user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY))
}

/// A clock at START, a memory store on it, and a fake source.
pub(crate) struct Fixture {
    pub(crate) clock: ManualClock,
    pub(crate) memory: MemoryStore,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) source: Arc<FakeSource>,
}

impl Fixture {
    /// The fixture with `record` stored under the session key.
    pub(crate) async fn new(source: FakeSource, record: Option<SessionRecord>) -> Self {
        let clock = ManualClock::new(START);
        let memory = MemoryStore::with_clock(Arc::new(clock.clone()));
        let store: Arc<dyn SessionStore> = Arc::new(memory.clone());
        if let Some(record) = record {
            seed(&*store, &record).await;
        }
        Fixture {
            clock,
            memory,
            store,
            source: Arc::new(source),
        }
    }

    /// A manager over the fixture's store, source and clock, without jitter.
    pub(crate) fn manager(&self) -> TokenManager {
        self.manager_with(exact_config())
    }

    pub(crate) fn manager_with(&self, config: ManagerConfig) -> TokenManager {
        manager(self.source.clone(), self.store.clone(), &self.clock, config)
    }

    /// Takes the store's refresh lock as "another process" would.
    pub(crate) async fn hold_lock(&self) -> Lease {
        self.memory
            .refresh_lock()
            .unwrap()
            .try_acquire("user:jdoe", Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap()
    }

    /// Releases a lease taken with `hold_lock`; whether it was still held.
    pub(crate) async fn release(&self, lease: &Lease) -> bool {
        self.memory
            .refresh_lock()
            .unwrap()
            .release(lease)
            .await
            .unwrap()
    }
}

/// The access token `m` serves now, exposed for comparison.
pub(crate) async fn token_of(m: &TokenManager) -> String {
    m.token().await.unwrap().secret().expose_secret().to_owned()
}

/// Spawns `n` concurrent callers spread over `managers`.
pub(crate) fn spawn_callers(
    managers: &[TokenManager],
    n: usize,
) -> Vec<JoinHandle<Result<AccessToken, FlowError>>> {
    (0..n)
        .map(|i| {
            let m = managers[i % managers.len()].clone();
            tokio::spawn(async move { m.token().await })
        })
        .collect()
}

/// Every caller must get `expected`.
pub(crate) async fn expect_tokens(
    tasks: Vec<JoinHandle<Result<AccessToken, FlowError>>>,
    expected: &str,
) {
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        assert_eq!(token.secret().expose_secret(), expected);
    }
}

/// `n` concurrent callers spread over `managers`; every one must get `expected`.
pub(crate) async fn all_callers_get(managers: &[TokenManager], n: usize, expected: &str) {
    expect_tokens(spawn_callers(managers, n), expected).await;
}

/// `n` concurrent callers of `m`; every one must fail with `kind`.
pub(crate) async fn all_callers_fail(m: &TokenManager, n: usize, kind: FlowErrorKind) {
    for task in spawn_callers(std::slice::from_ref(m), n) {
        assert_eq!(task.await.unwrap().unwrap_err().kind(), kind);
    }
}

pub(crate) fn manager(
    source: Arc<FakeSource>,
    store: Arc<dyn SessionStore>,
    clock: &ManualClock,
    config: ManagerConfig,
) -> TokenManager {
    TokenManager::builder(source, store, "user:jdoe")
        .clock(Arc::new(clock.clone()))
        .config(config)
        .build()
        .unwrap()
}

pub(crate) async fn seed(store: &dyn SessionStore, record: &SessionRecord) -> Version {
    store
        .save("user:jdoe", record, SaveMode::Overwrite)
        .await
        .unwrap()
}

pub(crate) async fn stored(store: &dyn SessionStore) -> SessionRecord {
    store.load("user:jdoe").await.unwrap().unwrap().record
}

pub(crate) fn secret(record: &SessionRecord) -> (String, Option<String>) {
    (
        record
            .access_token
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned(),
        record
            .refresh_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
    )
}
