//! A scripted `TokenSource`, a store that can be made to fail, and helpers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arcgis_auth_core::{
    Error as CoreError, ErrorKind, ExposeSecret, ManualClock, Portal, RefreshToken, Timestamp,
    Token,
};
use arcgis_auth_flows::{
    FlowError, Grant, ManagerConfig, RenewRequest, Renewal, TokenManager, TokenSource, async_trait,
};
use arcgis_auth_storage::{
    ChangeEvent, MemoryStore, RefreshLock, SaveMode, SessionKind, SessionRecord, SessionStore,
    StoreError, StoreErrorKind, StoreResult, Version, Versioned,
};
use tokio::sync::{Semaphore, broadcast};

pub(crate) const START: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);
pub(crate) const MINUTE: Duration = Duration::from_secs(60);
pub(crate) const HOUR: Duration = Duration::from_secs(3600);
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

/// What the fake source answers on one call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step {
    Ok,
    Fail(ErrorKind),
}

/// One call the fake source received.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) grant: Grant,
    pub(crate) refresh_token: Option<String>,
}

/// A `TokenSource` that counts calls, follows a script and hands out
/// numbered tokens `AT-SECRET-<n>` (and `RT-SECRET-<n>` on exchange).
#[derive(Debug)]
pub(crate) struct FakeSource {
    pub(crate) renewal: Renewal,
    pub(crate) lifetime: Duration,
    pub(crate) delay: Duration,
    pub(crate) gate: Option<Arc<Semaphore>>,
    calls: AtomicUsize,
    script: Mutex<VecDeque<Step>>,
    seen: Mutex<Vec<Call>>,
}

impl FakeSource {
    pub(crate) fn new(renewal: Renewal) -> Self {
        FakeSource {
            renewal,
            lifetime: 30 * MINUTE,
            delay: Duration::ZERO,
            gate: None,
            calls: AtomicUsize::new(0),
            script: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub(crate) fn with_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    pub(crate) fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Answers the next calls with `steps`, then `Ok` forever.
    pub(crate) fn script(self, steps: &[Step]) -> Self {
        self.script.lock().unwrap().extend(steps.iter().copied());
        self
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn seen(&self) -> Vec<Call> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl TokenSource for FakeSource {
    fn renewal(&self, _session: &SessionRecord) -> Renewal {
        self.renewal
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.lock().unwrap().push(Call {
            grant: request.grant(),
            refresh_token: request
                .session()
                .refresh_token
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
        });
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await.unwrap();
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let step = self.script.lock().unwrap().pop_front().unwrap_or(Step::Ok);
        match step {
            Step::Fail(kind) => Err(CoreError::new(kind, format!("scripted failure {n}")).into()),
            Step::Ok => {
                let now = request.now();
                let token = Token::new(format!("AT-SECRET-{n}").into(), now + self.lifetime)
                    .with_username(Some("jdoe".into()));
                Ok(if request.grant() == Grant::Exchange {
                    token.with_refresh_token(Some(RefreshToken::new(
                        format!("RT-SECRET-{n}").into(),
                        now,
                        Some(now + 14 * DAY),
                    )))
                } else {
                    token
                })
            }
        }
    }
}

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

/// A store around a `MemoryStore` whose loads and saves can be switched to fail,
/// and whose saves can be held at a gate.
#[derive(Debug, Clone)]
pub(crate) struct FlakyStore {
    pub(crate) inner: MemoryStore,
    pub(crate) fail_saves: Arc<AtomicBool>,
    pub(crate) fail_loads: Arc<AtomicBool>,
    pub(crate) save_gate: Option<Arc<Semaphore>>,
    pub(crate) saves: Arc<AtomicUsize>,
}

impl FlakyStore {
    pub(crate) fn new(inner: MemoryStore) -> Self {
        FlakyStore {
            inner,
            fail_saves: Arc::new(AtomicBool::new(false)),
            fail_loads: Arc::new(AtomicBool::new(false)),
            save_gate: None,
            saves: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn down() -> StoreError {
        StoreError::new(StoreErrorKind::Unavailable, "store is down (test)")
    }
}

#[async_trait]
impl SessionStore for FlakyStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        if self.fail_loads.load(Ordering::SeqCst) {
            return Err(Self::down());
        }
        self.inner.load(key).await
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        if let Some(gate) = &self.save_gate {
            let _permit = gate.acquire().await.unwrap();
        }
        if self.fail_saves.load(Ordering::SeqCst) {
            return Err(Self::down());
        }
        let v = self.inner.save(key, record, mode).await?;
        self.saves.fetch_add(1, Ordering::SeqCst);
        Ok(v)
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        self.inner.delete(key, version).await
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        self.inner.list(prefix).await
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.subscribe()
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        self.inner.refresh_lock()
    }
}
