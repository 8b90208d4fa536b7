//! `TokenManager` and its builder: the cached token and the calls around it (guide: `guide::token_manager`).

mod changes;
mod first;
mod flight;
mod state;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwapOption;
use arcgis_auth_core::{Clock, CoarseSystemClock, Timestamp};
use arcgis_auth_storage::{SaveMode, ServerTokenRecord, SessionRecord, SessionStore, validate_key};

use crate::access::AccessToken;
use crate::config::ManagerConfig;
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::jitter::Jitter;
use crate::single_flight::{Aborted, SingleFlight};
use crate::source::TokenSource;

use self::changes::Watcher;
use self::flight::{Landed, ServerTokenSave, Work};
use self::state::{Cached, Pending, SessionState, Shared};

/// Keeps one session's token valid for any number of concurrent callers.
///
/// Cheap to clone (clones share everything). See the [token manager guide](crate::guide::token_manager) for
/// how it renews, coordinates and persists.
///
/// It follows the store's change events for its key (a task started on the
/// first call that runs on Tokio, stopped with the last clone): a session
/// deleted elsewhere is forgotten at once, and after another process's
/// change, or a [`Resync`](arcgis_auth_storage::ChangeKind::Resync), the next
/// call reads the store before serving a token. See [Changes made
/// elsewhere](crate::guide::token_manager#changes-made-elsewhere).
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use arcgis_auth_core::{Clock, ExposeSecret, ManualClock, Portal, Timestamp, Token};
/// use arcgis_auth_flows::{FlowError, Renewal, RenewRequest, TokenManager, TokenSource};
/// use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
///
/// /// Stands in for app credentials: "signs in again" for a new token.
/// #[derive(Debug)]
/// struct AppSecret;
///
/// #[arcgis_auth_flows::async_trait]
/// impl TokenSource for AppSecret {
///     fn renewal(&self, _: &SessionRecord) -> Renewal {
///         Renewal::SignInAgain
///     }
///     async fn renew(&self, r: &RenewRequest<'_>) -> Result<Token, FlowError> {
///         Ok(Token::new("next".into(), r.now() + Duration::from_secs(7200)))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), FlowError> {
/// let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
/// let clock = ManualClock::new(Timestamp::from_unix_millis(0));
/// let manager = TokenManager::builder(AppSecret, store, "my-app")
///     .clock(Arc::new(clock.clone()))
///     .build()?;
///
/// // After signing in (see the strategies), hand the session to the manager.
/// let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
/// record.set_token(&Token::new("first".into(), clock.now() + Duration::from_secs(7200)));
/// manager.set_session(record).await?;
/// assert_eq!(manager.token().await?.secret().expose_secret(), "first");
///
/// // ArcGIS answered 498: report it, and the next call renews.
/// let rejected = manager.token().await?;
/// assert!(manager.report_invalid(&rejected));
/// assert_eq!(manager.token().await?.secret().expose_secret(), "next");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

/// Builds a [`TokenManager`]; start with [`TokenManager::builder`].
#[must_use = "call .build() to get the manager"]
pub struct TokenManagerBuilder {
    source: Arc<dyn TokenSource>,
    store: Arc<dyn SessionStore>,
    key: String,
    clock: Arc<dyn Clock>,
    config: ManagerConfig,
}

impl fmt::Debug for TokenManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManagerBuilder")
            .field("source", &self.source)
            .field("store", &self.store)
            .field("key", &self.key)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .finish()
    }
}

impl TokenManagerBuilder {
    /// The clock that decides expiry (default [`CoarseSystemClock`]: the wall
    /// clock read at most once per 1 to 4 ms, so a cached-token call does not
    /// pay for a full `SystemTime::now()`; pass `Arc::new(SystemClock)` for an
    /// exact reading every time). Waiting (backoff, lock polling) always uses
    /// tokio's clock.
    ///
    /// [`SystemClock`]: arcgis_auth_core::SystemClock
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Lead time, jitter, retries, locking (default [`ManagerConfig::default`]).
    pub fn config(mut self, config: ManagerConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the manager. No I/O happens here: the session is loaded from the
    /// store on the first call to [`TokenManager::token`], or given with
    /// [`TokenManager::set_session`]. The manager subscribes to the store's
    /// change events here (no runtime needed) and starts watching them on
    /// the first call that needs Tokio anyway (see [`TokenManager`]), unless
    /// [`ManagerConfig::follow_store`] is off.
    ///
    /// Fails with [`FlowErrorKind::InvalidInput`] when the key is not a valid
    /// session key (empty, longer than 512 bytes, control characters), and
    /// with [`FlowErrorKind::InvalidConfig`] when the config cannot work: a
    /// zero [`attempt_timeout`](ManagerConfig::attempt_timeout), a lease too
    /// short to extend, or a [`lock_wait`](ManagerConfig::lock_wait) that
    /// cannot cover the holder's [longest renewal](ManagerConfig::longest_renewal).
    pub fn build(self) -> Result<TokenManager> {
        self.config.check().map_err(|why| {
            FlowError::new(
                FlowErrorKind::InvalidConfig,
                format!("the token manager's config cannot work: {why}"),
            )
        })?;
        validate_key(&self.key).map_err(|e| {
            FlowError::repeating(
                FlowErrorKind::InvalidInput,
                format!("invalid session key: {}", e.message()),
                e,
            )
        })?;
        let jitter = Jitter::new(self.config.jitter_seed);
        // Subscribed before anything is read, so no change is missed between
        // the first load and the watcher starting.
        let watcher = if self.config.follow_store {
            Watcher::new(self.store.subscribe())
        } else {
            Watcher::off()
        };
        Ok(TokenManager {
            inner: Arc::new(Inner {
                source: self.source,
                store: self.store,
                key: self.key,
                clock: self.clock,
                config: self.config,
                jitter,
                current: ArcSwapOption::empty(),
                store_epoch: AtomicU64::new(0),
                flight: SingleFlight::default(),
                shared: Mutex::new(Shared {
                    watcher,
                    ..Shared::default()
                }),
                #[cfg(test)]
                watch_seen: AtomicU64::new(0),
                #[cfg(feature = "test-util")]
                slow_paths: AtomicU64::new(0),
            }),
        })
    }
}

pub(crate) struct Inner {
    source: Arc<dyn TokenSource>,
    store: Arc<dyn SessionStore>,
    key: String,
    clock: Arc<dyn Clock>,
    config: ManagerConfig,
    jitter: Jitter,
    /// What the cached path serves: one atomic load.
    current: ArcSwapOption<Cached>,
    /// Bumped by the watcher (under the `shared` mutex) when the store may
    /// hold something other than what `current` was made from: another
    /// writer's change to this session, or changes the store says may have
    /// been missed; and when the watcher is lost with its runtime. The cached
    /// path serves `current` only while its epoch is this one.
    store_epoch: AtomicU64,
    /// The one run that renews or saves the session: the only writer of the
    /// session record (see `flight`).
    flight: SingleFlight<Landed>,
    /// The session as the manager knows it, and what goes with it (the
    /// store watcher's task included); locked for a few instructions at a
    /// time, never across I/O.
    shared: Mutex<Shared>,
    /// How many events the store watcher has taken in (tests wait on it).
    #[cfg(test)]
    watch_seen: AtomicU64,
    /// How many calls took the slow path (tests count them).
    #[cfg(feature = "test-util")]
    slow_paths: AtomicU64,
}

impl TokenManager {
    /// Starts building a manager for the session stored under `key` in `store`,
    /// renewed by `source`.
    pub fn builder(
        source: impl TokenSource + 'static,
        store: Arc<dyn SessionStore>,
        key: impl Into<String>,
    ) -> TokenManagerBuilder {
        TokenManagerBuilder {
            source: Arc::new(source),
            store,
            key: key.into(),
            clock: Arc::new(CoarseSystemClock::new()),
            config: ManagerConfig::default(),
        }
    }

    /// A valid access token.
    ///
    /// When the cached token is fresh this is one atomic load and a
    /// reference-count increment: no lock, no allocation, no I/O. When it is
    /// due for early renewal but still valid, every caller (the one that
    /// starts the renewal too) gets it at once and the renewal goes on in the
    /// background; if the renewal fails they all keep getting it until it
    /// expires. Only without a valid token does a call join the one renewal
    /// in flight (or start it) and wait for it.
    ///
    /// # Errors
    ///
    /// - [`FlowErrorKind::NoSession`]: nothing stored under the key; sign in.
    /// - [`FlowErrorKind::SignInRequired`]: the session ended (refresh token
    ///   expired or revoked); sign in again.
    /// - [`FlowErrorKind::NotRenewable`]: an API key or implicit token expired
    ///   or was rejected.
    /// - [`FlowErrorKind::ArcGis`]: the renewal failed (after retries, if
    ///   transient). The next call tries again.
    /// - [`FlowErrorKind::InvalidInput`]: a renewal was needed outside a
    ///   Tokio runtime (renewals run as Tokio tasks and wait on Tokio time).
    /// - [`FlowErrorKind::Store`] / [`FlowErrorKind::LockTimeout`]: the store
    ///   could not be read and there is no valid session in memory, or another
    ///   process held the refresh lock too long.
    pub async fn token(&self) -> Result<AccessToken> {
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        self.inner.token_slow().await
    }

    /// Waits until the renewal in flight, if any, has finished (the one a
    /// call in the refresh window left running in the background, say).
    /// Returns at once when none is running. Its outcome is what the next
    /// call to [`token`](Self::token) serves or reports.
    pub async fn wait_for_renewal(&self) {
        if let Some(flight) = self.inner.flight.current() {
            // However it ended, it ended.
            let _ = flight.wait().await;
        }
    }

    /// The cached token if it is fresh (not due for renewal, not reported
    /// invalid), without waiting or doing I/O. This is the fast path of
    /// [`token`](Self::token).
    pub fn cached(&self) -> Option<AccessToken> {
        self.inner.cached()
    }

    /// Reports that ArcGIS rejected `token` (HTTP or in-body 498).
    ///
    /// If it is the current token, it is no longer served and the next call to
    /// [`token`](Self::token) renews the session, even if the token looked
    /// fresh (a password change or an admin revoke invalidates tokens early).
    /// Reports of a token that was already replaced, or already reported, are
    /// ignored, so a thousand callers reporting the same token cause one
    /// renewal. Returns whether this report marked the token. The comparison
    /// is constant-time.
    pub fn report_invalid(&self, token: &AccessToken) -> bool {
        let reported = self.inner.report_invalid(token);
        if reported {
            tracing::info!(session = %self.inner.key, "token reported invalid; the next call renews it");
        }
        reported
    }

    /// Adopts a freshly signed-in session and saves it to the store
    /// (overwriting whatever was stored under the key).
    ///
    /// The session is served at once. If the save fails, the error is
    /// returned, the session stays in memory (and keeps being served), and the
    /// manager tries to save it again on later calls; see
    /// [`persist`](Self::persist).
    pub async fn set_session(&self, record: SessionRecord) -> Result<()> {
        self.inner.set_session(record).await
    }

    /// Saves a session that could not be saved before (the store was
    /// unavailable). Does nothing when everything is saved.
    pub async fn persist(&self) -> Result<()> {
        self.inner.start_watcher();
        if self.inner.shared().st.pending.is_none() {
            return Ok(());
        }
        self.inner.save_in_flight().await
    }

    /// The session as the manager currently knows it (a copy), or `None`
    /// before it was loaded or set. Its secrets stay [`SecretString`](arcgis_auth_core::SecretString)s.
    ///
    /// Never waits for a renewal in flight: it shows the session as it was
    /// before the renewal, until the renewal lands.
    pub async fn session(&self) -> Option<SessionRecord> {
        self.inner.shared().st.record.clone()
    }

    /// Forgets the session in memory (after a sign-out, say): the cached token
    /// is no longer served, and the next call to [`token`](Self::token) loads
    /// the session from the store again. The store is not touched; delete the
    /// session there to sign out everywhere.
    ///
    /// Takes effect at once, also while a renewal is in flight: what that
    /// renewal finds is dropped when it lands.
    pub async fn clear(&self) {
        let mut shared = self.inner.shared();
        self.inner
            .new_generation(&mut shared, SessionState::default());
        self.inner.current.store(None);
        drop(shared);
        tracing::info!(session = %self.inner.key, "session forgotten in memory");
    }

    /// Whether the session in memory has changes the store has not accepted yet.
    pub async fn has_unsaved_changes(&self) -> bool {
        self.inner.shared().st.pending.is_some()
    }

    /// The key the session is stored under.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The configuration in use.
    pub fn config(&self) -> &ManagerConfig {
        &self.inner.config
    }

    /// The store the session lives in (sign-out deletes it there; federated
    /// server tokens are saved there).
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The clock that decides expiry.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// How many calls of [`token`](Self::token) did not find a fresh
    /// cached token and took the slow path (feature `test-util`: tests
    /// check that nothing invalidates the cache behind their back).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn slow_path_calls(&self) -> u64 {
        self.inner.slow_paths.load(Ordering::Relaxed)
    }

    /// Saves a federated server token made from the portal token `portal`
    /// into the session record, as the manager's own save: through its one
    /// flight, the only writer of the record, so the save neither makes the
    /// cached token stale nor meets a conflict later. Saved only while the
    /// session still holds `portal`. A renewal in flight is not waited for:
    /// it replaces the portal token (and drops server tokens) or re-reads
    /// the store, so the server token then stays in federation's memory only.
    pub(crate) async fn save_server_token(
        &self,
        server: String,
        entry: ServerTokenRecord,
        portal: AccessToken,
    ) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let save = Box::new(ServerTokenSave {
            server,
            entry,
            portal,
        });
        let mut started = false;
        let flight = self.inner.flight.join_or_start(|| {
            started = true;
            Some(async move { inner.run(Work::ServerToken(save)).await })
        });
        match flight {
            Some(flight) if started => {
                // Its outcome is logged by the flight.
                let _ = flight.wait().await;
            }
            _ => tracing::debug!(
                "a renewal is in flight; the server token is not saved in the session record"
            ),
        }
    }
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("key", &self.inner.key)
            .field("source", &self.inner.source)
            .field("store", &self.inner.store)
            .field(
                "current",
                &self.inner.current.load().as_ref().map(|c| &c.token),
            )
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn cached(&self) -> Option<AccessToken> {
        let guard = self.current.load();
        let cached = (*guard).as_ref()?;
        if cached.is_invalid() || !self.is_current(cached) {
            return None;
        }
        (self.clock.now() < cached.check_at).then(|| cached.token.clone())
    }

    /// Whether nothing has changed in the store since `cached` was made
    /// (one atomic load).
    fn is_current(&self, cached: &Cached) -> bool {
        cached.epoch == self.store_epoch.load(Ordering::Acquire)
    }

    /// The current token if it is valid at `now`, not reported invalid and
    /// not overtaken by a change in the store, even if it is due for renewal.
    fn still_valid(&self, now: Timestamp) -> Option<AccessToken> {
        let guard = self.current.load();
        (*guard)
            .as_ref()
            .filter(|c| !c.is_invalid() && self.is_current(c) && now < c.token.expires_at())
            .map(|c| c.token.clone())
    }

    fn report_invalid(&self, token: &AccessToken) -> bool {
        let guard = self.current.load();
        match (*guard).as_ref() {
            Some(cached) if cached.token.same_token(token) => cached.mark_invalid(),
            _ => false,
        }
    }

    async fn set_session(self: &Arc<Self>, mut record: SessionRecord) -> Result<()> {
        self.start_watcher();
        let now = self.clock.now();
        record.updated_at = Some(now);
        tracing::info!(
            session = %self.key,
            kind = ?record.kind,
            portal = %record.portal,
            "signed in; saving the session"
        );
        {
            let mut shared = self.shared();
            let st = SessionState {
                record: Some(record),
                pending: Some(Pending::Session),
                epoch: self.store_epoch.load(Ordering::Acquire),
                ..SessionState::default()
            };
            // A renewal of the previous session lands nowhere.
            self.new_generation(&mut shared, st);
            self.install_from_state(&shared.st, now);
        }
        self.save_in_flight().await
    }

    /// Replaces the session state with `st` in a new generation: the flight
    /// in progress, if any, goes on alone and what it finds is dropped.
    fn new_generation(&self, shared: &mut Shared, mut st: SessionState) {
        shared.generation += 1;
        st.generation = shared.generation;
        shared.st = st;
        self.flight.detach();
    }

    /// Saves the pending change in the flight (joining the one in
    /// progress), and reports whether the store took it.
    async fn save_in_flight(self: &Arc<Self>) -> Result<()> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(outside_runtime());
        }
        let inner = Arc::clone(self);
        let flight = self
            .flight
            .join_or_start(|| Some(async move { inner.run(Work::Save).await }));
        if let Some(flight) = flight {
            let _ = flight.wait().await;
        }
        let shared = self.shared();
        match (&shared.st.pending, &shared.st.save_error) {
            (None, _) => Ok(()),
            (Some(_), Some(err)) => Err(err.clone()),
            (Some(_), None) => Err(FlowError::new(
                FlowErrorKind::Store(arcgis_auth_storage::StoreErrorKind::Unavailable),
                "session store: the session could not be saved yet: it stays in memory and is \
                 saved again later",
            )),
        }
    }

    /// Joins the renewal in flight, or starts one, and waits for its result
    /// unless a valid token can be served meanwhile.
    async fn token_slow(self: &Arc<Self>) -> Result<AccessToken> {
        #[cfg(feature = "test-util")]
        self.slow_paths.fetch_add(1, Ordering::Relaxed);
        self.start_watcher();
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(outside_runtime());
        }
        // A run that landed nowhere (the session was replaced meanwhile) or
        // that only saved is followed by another; a few at most.
        let mut last = None;
        for _ in 0..4 {
            let now = self.clock.now();
            // A token that is still valid and not reported invalid is served
            // while the renewal goes on in the background, and if it fails.
            let still_valid = self.still_valid(now);
            let mut fresh = None;
            let inner = Arc::clone(self);
            let flight = self.flight.join_or_start(|| {
                // A renewal may have finished between our look at the cache
                // and the slot: look again before starting one.
                fresh = self.cached();
                match fresh {
                    Some(_) => None,
                    None => Some(async move { inner.run(Work::Renew).await }),
                }
            });
            if let Some(token) = fresh {
                return Ok(token);
            }
            // Nobody waits while a valid token exists, not even the caller
            // that started the renewal.
            if let Some(token) = still_valid {
                return Ok(token);
            }
            let Some(flight) = flight else {
                continue;
            };
            match flight.wait().await {
                Ok(Landed::Done(Ok(token))) => return Ok(token),
                // A failed renewal leaves a still-valid token in place (it
                // keeps being served until it expires); anything else is the
                // error.
                Ok(Landed::Done(Err(err))) => {
                    return self.still_valid(self.clock.now()).ok_or(err);
                }
                Ok(Landed::Again) => last = None,
                Err(Aborted::Panicked(message)) => {
                    return self
                        .still_valid(self.clock.now())
                        .ok_or_else(|| panicked(&message));
                }
                Err(Aborted::Cancelled) => last = Some(interrupted()),
            }
        }
        Err(last.unwrap_or_else(interrupted))
    }

    /// The shared state, locked (never across an `await`).
    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A renewal whose token source panicked, with the panic's message.
fn panicked(message: &str) -> FlowError {
    FlowError::new(
        FlowErrorKind::SourcePanicked,
        format!(
            "the token source panicked while renewing (a bug in the token source, not the \
             portal): {message}"
        ),
    )
}

fn interrupted() -> FlowError {
    FlowError::new(
        FlowErrorKind::Interrupted,
        "the token renewal was interrupted before it finished (was the runtime shutting down?): try again",
    )
}

fn outside_runtime() -> FlowError {
    FlowError::new(
        FlowErrorKind::InvalidInput,
        "TokenManager::token must be called from within a Tokio runtime to renew a token",
    )
}

/// `SaveMode` for the record as the manager last saw it in the store.
fn save_mode(version: Option<&arcgis_auth_storage::Version>) -> SaveMode {
    match version {
        Some(v) => SaveMode::Update(v.clone()),
        None => SaveMode::Create,
    }
}
