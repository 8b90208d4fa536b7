//! One flight: sync with the store, take the refresh lock, renew, save, release.
//!
//! Everything here runs inside the one flight of a manager (its only writer
//! of the session record), on a copy of the session state that is put back
//! when the flight lands, unless the session was replaced or forgotten
//! meanwhile. No lock is held while it does I/O, so it can take its time;
//! the cached path, `session()`, `clear()` and the watcher never wait for it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arcgis_auth_core::__private::{constant_time_eq, effective_lead};
use arcgis_auth_core::{ErrorKind, ExposeSecret, Timestamp, Token};
use arcgis_auth_storage::{
    Lease, SaveMode, ServerTokenRecord, SessionRecord, StoreErrorKind, Versioned,
};
use tracing::Instrument;

use super::state::{Cached, Pending, SessionState};
use super::{Inner, save_mode};
use crate::access::AccessToken;
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::source::{Grant, RenewReason, RenewRequest, Renewal};

/// How often a compare-and-swap save is retried after conflicts before the
/// change is kept in memory and retried later.
const MAX_SAVE_CONFLICTS: usize = 3;

/// The longest pause between looks at the store while another process renews.
const MAX_LOCK_POLL: Duration = Duration::from_secs(1);

/// What a flight does.
pub(super) enum Work {
    /// Renews the session if needed (reading the store first).
    Renew,
    /// Saves the pending change (a new sign-in, or what a store outage kept
    /// in memory), and nothing else.
    Save,
    /// Saves a federated server token into the session record, and
    /// nothing else.
    ServerToken(Box<ServerTokenSave>),
}

/// A federated server token to save into the session record.
pub(crate) struct ServerTokenSave {
    /// The server root, as the record's `server_tokens` key.
    pub(crate) server: String,
    pub(crate) entry: ServerTokenRecord,
    /// The portal token it was made from: saved only while the session
    /// holds that one.
    pub(crate) portal: AccessToken,
}

/// After a conflict: what to save instead, or why to stop.
enum Rebase {
    Retry(Box<SessionRecord>, SaveMode),
    Stop(FlowError),
}

/// How the conflict loop ended.
enum Saved {
    /// Saved: the record as saved and its version.
    Done(SessionRecord, arcgis_auth_storage::Version),
    /// `rebase` (or a new generation) said to stop.
    Stopped(FlowError),
    /// The store failed, or kept conflicting: the record last tried, and why.
    Failed(SessionRecord, FlowError),
}

/// What a flight hands to everyone who waited for it.
#[derive(Clone)]
pub(super) enum Landed {
    /// The token to serve, or why there is none.
    Done(Result<AccessToken>),
    /// The session was replaced or forgotten while the flight ran: nothing
    /// it found was kept; look again.
    Again,
}

/// What waiting for the cross-process refresh lock ended with.
enum LockOutcome {
    /// We hold it (or the store has none, or it is unavailable: `None`).
    Acquired(Option<Lease>),
    /// Another process renewed meanwhile; this is its token.
    Adopted(Arc<Cached>),
}

/// The cross-process refresh lock while we hold it. Released explicitly when
/// the renewal ends; released by a spawned task if the renewal is dropped
/// half-way (cancelled, or a source panicked), so the process does not wait
/// out its own lease.
pub(super) struct HeldLock {
    store: Arc<dyn arcgis_auth_storage::SessionStore>,
    lease: Option<Lease>,
}

impl HeldLock {
    /// `lease` of `store`'s refresh lock, released when dropped.
    pub(super) fn new(store: Arc<dyn arcgis_auth_storage::SessionStore>, lease: Lease) -> Self {
        HeldLock {
            store,
            lease: Some(lease),
        }
    }

    pub(super) async fn release(mut self) {
        if let Some(lease) = self.lease.take() {
            release_lock(&*self.store, &lease).await;
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            runtime.spawn(async move { release_lock(&*store, &lease).await });
        }
    }
}

async fn release_lock(store: &dyn arcgis_auth_storage::SessionStore, lease: &Lease) {
    let Some(lock) = store.refresh_lock() else {
        return;
    };
    match lock.release(lease).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "the refresh lock ran out before the renewal finished; consider a longer lock_lease"
        ),
        Err(err) => tracing::warn!(
            error = %err,
            "could not release the refresh lock; it frees itself when the lease runs out"
        ),
    }
}

impl Inner {
    /// Runs one flight on a copy of the session state, and puts what it
    /// found back (installing the token to serve) unless the session was
    /// replaced or forgotten meanwhile.
    pub(super) async fn run(self: Arc<Self>, work: Work) -> Landed {
        let mut st = self.shared().st.clone();
        let generation = st.generation;
        let now = self.clock.now();
        match &work {
            Work::Save => {
                // Already logged; the change stays in memory if it failed.
                let _ = self.save_pending(&mut st, now).await;
                let mut shared = self.shared();
                if shared.generation == generation {
                    self.install_from_state(&st, self.clock.now());
                    shared.st = st;
                }
                return Landed::Again;
            }
            Work::ServerToken(save) => {
                self.save_server_token(&mut st, save).await;
                // The access token is the same: what the cached path serves
                // stays as it is.
                let mut shared = self.shared();
                if shared.generation == generation {
                    shared.st = st;
                }
                return Landed::Again;
            }
            Work::Renew => {}
        }
        let current = self.current.load_full();
        let rejected = current
            .as_ref()
            .filter(|c| c.is_invalid())
            .map(|c| c.token.clone());
        let reason = match &current {
            Some(c) if c.is_invalid() => RenewReason::Invalidated,
            Some(c) if now < c.token.expires_at() => RenewReason::Early,
            _ => RenewReason::Expired,
        };
        let span = tracing::info_span!(
            "arcgis_auth.renew",
            session = %self.key,
            source = self.source.name(),
            reason = reason.as_str(),
            grant = tracing::field::Empty,
        );
        let result = self
            .renew_locked(&mut st, now, reason, rejected.as_ref())
            .instrument(span.clone())
            .await;
        let mut shared = self.shared();
        if shared.generation != generation {
            span.in_scope(|| {
                tracing::debug!("the session was replaced or forgotten while it was renewed; dropping what the renewal found");
            });
            return Landed::Again;
        }
        let now = self.clock.now();
        let landed = match result {
            Ok(cached) => {
                let token = cached.token.clone();
                self.current.store(Some(cached));
                Ok(token)
            }
            Err(err) => {
                // A token that is still valid and was not rejected keeps being
                // served; the renewal is tried again a little later.
                let keep = self.cached_for(&st, now).filter(|c| {
                    now < c.token.expires_at() && !is_rejected(&c.token, rejected.as_ref())
                });
                if let Some(mut cached) = keep {
                    let expires = cached.token.expires_at();
                    let retry_at = (now + self.config.early_retry_after).min(expires);
                    cached.check_at = cached.check_at.max(retry_at);
                    span.in_scope(|| {
                        tracing::warn!(
                            error = %err,
                            serving_until = %cached.check_at,
                            "renewal failed; the current token is still valid and keeps being served"
                        );
                    });
                    self.current.store(Some(Arc::new(cached)));
                } else if st.record.is_none() {
                    // Signed out (deleted from the store): nothing to serve.
                    self.current.store(None);
                }
                Err(err)
            }
        };
        shared.st = st;
        Landed::Done(landed)
    }

    async fn renew_locked(
        &self,
        st: &mut SessionState,
        now: Timestamp,
        reason: RenewReason,
        rejected: Option<&AccessToken>,
    ) -> Result<Arc<Cached>> {
        let store_error = self.sync_from_store(st, now).await.err();
        if st.pending.is_some() {
            // Already logged; the change stays in memory.
            let _ = self.save_pending(st, now).await;
        }
        if let Some(cached) = self.usable(st, now, rejected) {
            return Ok(cached);
        }
        if st.record.is_none() {
            return Err(store_error.unwrap_or_else(|| self.no_session()));
        }
        if let Some(ended) = &st.ended {
            return Err(ended.clone());
        }
        // Decide before locking: an API key needs no lock to fail.
        if let Err(err) = self.plan(st, now, reason) {
            return Err(end_if_final(st, err));
        }
        let held = match self.acquire_lock(st, rejected).await? {
            LockOutcome::Adopted(cached) => return Ok(cached),
            LockOutcome::Acquired(lease) => HeldLock {
                store: Arc::clone(&self.store),
                lease,
            },
        };
        let locked = held.lease.is_some();
        let renewal = self.renew_under_lock(st, reason, rejected, locked);
        let result = match &held.lease {
            // The lease is extended while the renewal runs: a slow portal
            // never lets a second process spend the same refresh token.
            Some(lease) => tokio::select! {
                biased;
                result = renewal => result,
                never = self.heartbeat(lease) => match never {},
            },
            None => renewal.await,
        };
        held.release().await;
        result
    }

    async fn renew_under_lock(
        &self,
        st: &mut SessionState,
        reason: RenewReason,
        rejected: Option<&AccessToken>,
        locked: bool,
    ) -> Result<Arc<Cached>> {
        if locked {
            // Another process may have renewed between our look and the lock.
            let now = self.clock.now();
            if self.sync_from_store(st, now).await.is_ok() {
                if let Some(cached) = self.usable(st, now, rejected) {
                    tracing::info!("another process renewed the token; using it");
                    return Ok(cached);
                }
                if let Some(ended) = &st.ended {
                    return Err(ended.clone());
                }
            }
        }
        let mut looked_for_rotation = false;
        loop {
            let now = self.clock.now();
            let grant = self
                .plan(st, now, reason)
                .map_err(|e| end_if_final(st, e))?;
            tracing::Span::current().record("grant", grant.as_str());
            let record = st.record.clone().ok_or_else(|| self.no_session())?;
            match self.request_with_retries(&record, grant, reason).await {
                Ok(token) => return self.store_renewed(st, token, grant).await,
                Err(err) => {
                    let err = classify(err, grant);
                    if err.kind() == FlowErrorKind::SignInRequired
                        && grant != Grant::SignIn
                        && !looked_for_rotation
                    {
                        // The refresh token may have been rotated by a process
                        // that did not (or could not) take the lock: look again.
                        looked_for_rotation = true;
                        let now = self.clock.now();
                        if self.sync_from_store(st, now).await.is_ok()
                            && !same_refresh_token(st.record.as_ref(), &record)
                        {
                            tracing::info!(
                                "the refresh token was rotated by another process; using the new one"
                            );
                            if let Some(cached) = self.usable(st, now, rejected) {
                                return Ok(cached);
                            }
                            continue;
                        }
                    }
                    if err.kind() == FlowErrorKind::SignInRequired {
                        tracing::warn!(error = %err, "the session cannot be renewed: sign in again");
                    } else {
                        tracing::warn!(error = %err, "token renewal failed");
                    }
                    return Err(end_if_final(st, err));
                }
            }
        }
    }

    /// Extends `lease` every third of its term, for as long as it is polled
    /// (the renewal it guards is bounded: see `ManagerConfig::longest_renewal`).
    /// Stops extending once the lease turns out to be lost.
    pub(super) async fn heartbeat(&self, lease: &Lease) -> std::convert::Infallible {
        let every = (lease.duration / 3).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(every).await;
            let Some(lock) = self.store.refresh_lock() else {
                return std::future::pending().await;
            };
            match lock.extend(lease).await {
                Ok(true) => tracing::trace!("refresh lock extended"),
                Ok(false) => {
                    tracing::warn!(
                        "the refresh lock ran out, or this store cannot extend it, while the \
                         renewal runs; another process may renew too"
                    );
                    return std::future::pending().await;
                }
                Err(err) => tracing::warn!(
                    error = %err,
                    "could not extend the refresh lock; trying again"
                ),
            }
        }
    }

    /// Which grant renews the session now, or why it cannot be renewed.
    fn plan(&self, st: &SessionState, now: Timestamp, reason: RenewReason) -> Result<Grant> {
        let record = st.record.as_ref().ok_or_else(|| self.no_session())?;
        match self.source.renewal(record) {
            Renewal::SignInAgain | Renewal::WebTier => Ok(Grant::SignIn),
            Renewal::RefreshToken => {
                if record.refresh_token.is_none() {
                    return Err(FlowError::new(
                        FlowErrorKind::SignInRequired,
                        "the session has no refresh token: sign in again",
                    ));
                }
                let issued = record
                    .refresh_token_issued_at
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                let exchange = match record.refresh_token_expires_at {
                    Some(expiry) if now >= expiry => {
                        return Err(FlowError::new(
                            FlowErrorKind::SignInRequired,
                            format!("the refresh token expired at {expiry}: sign in again"),
                        ));
                    }
                    Some(expiry) => now + self.config.exchange_window >= expiry,
                    None => now.saturating_duration_since(issued) >= self.config.exchange_after,
                };
                if exchange && record.redirect_uri.is_none() {
                    // `exchange_refresh_token` needs the redirect URI of the sign-in.
                    tracing::debug!(
                        "the refresh token is due for exchange but the session has no redirect URI; refreshing instead"
                    );
                    return Ok(Grant::Refresh);
                }
                Ok(if exchange {
                    Grant::Exchange
                } else {
                    Grant::Refresh
                })
            }
            Renewal::UserMustSignIn => Err(FlowError::new(
                FlowErrorKind::SignInRequired,
                "this session cannot be renewed without the user (its password or secret is \
                 never stored): sign in again",
            )),
            Renewal::Never => Err(FlowError::new(
                FlowErrorKind::NotRenewable,
                match reason {
                    RenewReason::Invalidated => {
                        "the token was rejected (498) and this kind of token cannot be renewed: \
                         use a new API key or sign in again"
                    }
                    _ => {
                        "the token expired and this kind of token cannot be renewed: \
                         use a new API key or sign in again"
                    }
                },
            )),
        }
    }

    /// One request through the source, retrying transient failures with
    /// bounded, jittered exponential backoff on tokio's clock.
    async fn request_with_retries(
        &self,
        record: &SessionRecord,
        grant: Grant,
        reason: RenewReason,
    ) -> Result<Token> {
        let mut retry = 0;
        loop {
            let request = RenewRequest::new(record, grant, reason, self.clock.now());
            tracing::debug!(grant = grant.as_str(), retry, "requesting a token");
            let answer =
                tokio::time::timeout(self.config.attempt_timeout, self.source.renew(&request))
                    .await
                    .unwrap_or_else(|_| Err(self.attempt_timed_out()));
            match answer {
                Ok(token) => return Ok(token),
                Err(err) if err.is_transient() && retry < self.config.retry.max_retries => {
                    retry += 1;
                    let backoff = self.jitter.backoff(self.config.retry.ceiling(retry));
                    // Honour `Retry-After`, unless it is longer than we would
                    // ever wait: then the caller gets the error (with it) now.
                    let pause = match err.retry_after() {
                        Some(asked) if asked > self.config.retry.max_backoff => return Err(err),
                        Some(asked) => asked.max(backoff),
                        None => backoff,
                    };
                    tracing::warn!(
                        error = %err,
                        retry,
                        pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                        "token request failed; retrying"
                    );
                    tokio::time::sleep(pause).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn attempt_timed_out(&self) -> FlowError {
        FlowError::from(arcgis_auth_core::Error::new(
            ErrorKind::Transport,
            format!(
                "the token request got no answer within {:?} (attempt_timeout): check the \
                 network and the portal, or raise attempt_timeout",
                self.config.attempt_timeout
            ),
        ))
    }

    /// Saves a renewed token (compare-and-swap) and builds what to serve.
    /// The save happens before anyone is handed the token, so a rotated
    /// refresh token is in the store before it can be relied on.
    async fn store_renewed(
        &self,
        st: &mut SessionState,
        token: Token,
        grant: Grant,
    ) -> Result<Arc<Cached>> {
        let now = self.clock.now();
        let mut record = st.record.clone().ok_or_else(|| self.no_session())?;
        if grant == Grant::Exchange && token.refresh_token().is_none() {
            tracing::warn!("the exchange answer carried no new refresh token; keeping the old one");
        }
        apply_renewed(&mut record, &token, Some(now));
        st.record = Some(record);
        st.pending = Some(Pending::Token(Box::new(token)));
        st.ended = None;
        // A failed save keeps the session in memory (served, saved again
        // later); only a sign-out elsewhere stops it.
        if let Err(err) = self.save_pending(st, now).await
            && err.kind() == FlowErrorKind::NoSession
        {
            return Err(err);
        }
        let cached = self.cached_for(st, now).ok_or_else(|| self.no_session())?;
        tracing::info!(
            grant = grant.as_str(),
            expires_at = %cached.token.expires_at(),
            refresh_at = %cached.refresh_at,
            "token renewed"
        );
        Ok(Arc::new(cached))
    }

    /// Reads the session from the store and adopts it unless the memory holds
    /// a newer, unsaved change. A store error is returned (and logged); the
    /// memory is left as it was.
    pub(super) async fn sync_from_store(
        &self,
        st: &mut SessionState,
        now: Timestamp,
    ) -> Result<()> {
        // Read before the store: a change seen after it makes what is built
        // from this read stale.
        st.epoch = self.store_epoch.load(Ordering::Acquire);
        let loaded = match self.store.load(&self.key).await {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the session store; using the session in memory");
                return Err(err.into());
            }
        };
        match loaded {
            None => {
                if st.pending.is_some() {
                    st.version = None;
                } else if st.record.is_some() {
                    tracing::info!("the session was deleted from the store (signed out elsewhere)");
                    st.forget();
                }
            }
            Some(Versioned {
                mut record,
                version,
            }) => {
                if st.version.as_ref() == Some(&version) && st.record.is_some() {
                    return Ok(());
                }
                if record.updated_at.is_none() {
                    // Keep refresh times stable for records written without a time.
                    record.updated_at = st
                        .record
                        .as_ref()
                        .filter(|mine| same_access_token(mine, &record))
                        .and_then(|mine| mine.updated_at)
                        .or(Some(now));
                }
                let mine_is_newer = st.pending.is_some()
                    && st
                        .record
                        .as_ref()
                        .is_some_and(|mine| mine.updated_at >= record.updated_at);
                if mine_is_newer {
                    // Save ours over theirs (applying a renewed token on top of
                    // what they stored, or a new sign-in as a whole).
                    if let Some(Pending::Token(token)) = &st.pending {
                        let updated_at = st.record.as_ref().and_then(|r| r.updated_at);
                        apply_renewed(&mut record, token, updated_at);
                        st.record = Some(record);
                    }
                    st.version = Some(version);
                } else {
                    let different = st.record.as_ref().is_none_or(|mine| {
                        !same_access_token(mine, &record)
                            || !same_refresh_token(Some(mine), &record)
                    });
                    if different {
                        st.ended = None;
                    }
                    st.record = Some(record);
                    st.version = Some(version);
                    st.pending = None;
                    st.save_failed_at = None;
                    st.save_error = None;
                }
            }
        }
        Ok(())
    }

    /// Writes the pending change with compare-and-swap, re-applying it on top
    /// of whatever another writer stored when there is a conflict.
    pub(super) async fn save_pending(&self, st: &mut SessionState, now: Timestamp) -> Result<()> {
        let (Some(pending), Some(record)) = (st.pending.clone(), st.record.clone()) else {
            st.pending = None;
            return Ok(());
        };
        let mode = match (&pending, &st.version) {
            (Pending::Session, None) => SaveMode::Overwrite,
            (_, version) => save_mode(version.as_ref()),
        };
        let key = self.key.clone();
        let saved = self
            .save_rebasing(st, record, mode, |st, stored, record| {
                match (stored, &pending) {
                    (Some(stored), Pending::Token(token)) => {
                        let updated_at = record.updated_at;
                        let mut next = stored.record;
                        apply_renewed(&mut next, token, updated_at);
                        Rebase::Retry(Box::new(next), SaveMode::Update(stored.version))
                    }
                    (Some(stored), Pending::Session) => {
                        Rebase::Retry(Box::new(record.clone()), SaveMode::Update(stored.version))
                    }
                    (None, Pending::Session) => Rebase::Retry(Box::new(record.clone()), SaveMode::Create),
                    (None, Pending::Token(_)) => {
                        tracing::info!(
                            "the session was deleted from the store while it was renewed \
                             (signed out elsewhere)"
                        );
                        st.forget();
                        Rebase::Stop(FlowError::new(
                            FlowErrorKind::NoSession,
                            format!(
                                "session `{key}` was signed out elsewhere while it was renewed: sign in again"
                            ),
                        ))
                    }
                }
            })
            .await;
        match saved {
            Saved::Done(record, version) => {
                st.record = Some(record);
                st.version = Some(version);
                st.pending = None;
                st.save_failed_at = None;
                st.save_error = None;
                tracing::debug!("session saved");
                Ok(())
            }
            Saved::Stopped(err) => Err(err),
            Saved::Failed(record, err) => {
                st.record = Some(record);
                st.save_failed_at = Some(now);
                st.save_error = Some(err.clone());
                tracing::warn!(
                    error = %err,
                    "could not save the session; it stays in memory and is saved again later"
                );
                Err(err)
            }
        }
    }

    /// Saves a federated server token into the session record, if the
    /// session's access token is still the portal token it was made from.
    /// A change waiting to be saved carries it; otherwise it is saved as the
    /// manager's own (its change event changes nothing here). A failure
    /// only costs the copy in the store: federation keeps it in memory.
    pub(super) async fn save_server_token(&self, st: &mut SessionState, save: &ServerTokenSave) {
        let Some(record) = st.record.as_mut() else {
            return;
        };
        if !made_from(record, &save.portal) {
            tracing::debug!("the portal token changed; the server token is not saved");
            return;
        }
        record
            .server_tokens
            .insert(save.server.clone(), save.entry.clone());
        if st.pending.is_some() || st.version.is_none() {
            // Saved with the change waiting (or the next sign-in's save).
            return;
        }
        let record = record.clone();
        let mode = save_mode(st.version.as_ref());
        let saved = self
            .save_rebasing(st, record, mode, |_, stored, _| match stored {
                Some(stored) if made_from(&stored.record, &save.portal) => {
                    let mut next = stored.record;
                    next.server_tokens
                        .insert(save.server.clone(), save.entry.clone());
                    Rebase::Retry(Box::new(next), SaveMode::Update(stored.version))
                }
                _ => Rebase::Stop(FlowError::new(
                    FlowErrorKind::NoSession,
                    "the session changed while a server token was saved",
                )),
            })
            .await;
        match saved {
            Saved::Done(record, version) => {
                st.record = Some(record);
                st.version = Some(version);
                tracing::debug!("server token saved in the session record");
            }
            // Renewed, replaced or signed out meanwhile: the next read of
            // the store adopts what is there.
            Saved::Stopped(_) => {
                tracing::debug!("the session changed in the store; the server token is not saved");
            }
            Saved::Failed(_, err) => {
                tracing::warn!(error = %err, "could not save the server token (kept in memory)");
            }
        }
    }

    /// The manager's one compare-and-swap loop: saves `record` as its own
    /// (see [`save_own`](Self::save_own)), and after each conflict (up to
    /// `MAX_SAVE_CONFLICTS`) hands what is stored now to `rebase`, which
    /// says what to save instead, or to stop.
    async fn save_rebasing(
        &self,
        st: &mut SessionState,
        mut record: SessionRecord,
        mut mode: SaveMode,
        mut rebase: impl FnMut(&mut SessionState, Option<Versioned>, &SessionRecord) -> Rebase,
    ) -> Saved {
        let mut last_error = None;
        for _ in 0..MAX_SAVE_CONFLICTS {
            match self.save_own(st, &record, mode).await {
                Ok(version) => return Saved::Done(record, version),
                Err(err) if err.kind() == StoreErrorKind::Conflict => {
                    if self.shared().generation != st.generation {
                        // Replaced here meanwhile: what is stored now is newer.
                        return Saved::Stopped(superseded(&self.key));
                    }
                    let stored = match self.store.load(&self.key).await {
                        Ok(stored) => stored,
                        Err(load_err) => {
                            last_error = Some(load_err);
                            break;
                        }
                    };
                    match rebase(st, stored, &record) {
                        Rebase::Retry(next, next_mode) => {
                            record = *next;
                            mode = next_mode;
                        }
                        Rebase::Stop(err) => return Saved::Stopped(err),
                    }
                    last_error = Some(err);
                }
                Err(err) => {
                    last_error = Some(err);
                    break;
                }
            }
        }
        let err = match last_error {
            Some(err) => FlowError::from(err),
            None => FlowError::new(
                FlowErrorKind::Store(StoreErrorKind::Conflict),
                "session store: the session kept changing while it was saved: it stays in memory",
            ),
        };
        Saved::Failed(record, err)
    }

    /// One save by this manager: its change event is known as its own (see
    /// `OwnSaves`), so it never makes the manager read the store again.
    pub(super) async fn save_own(
        &self,
        st: &mut SessionState,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> arcgis_auth_storage::StoreResult<arcgis_auth_storage::Version> {
        {
            let mut shared = self.shared();
            shared.saves.in_progress += 1;
            st.epoch = self.store_epoch.load(Ordering::Acquire);
        }
        let result = self.store.save(&self.key, record, mode).await;
        let mut shared = self.shared();
        if let Ok(version) = &result {
            shared.saves.record(version);
        }
        self.save_ended(&mut shared);
        result
    }

    /// Waits for the cross-process refresh lock, watching the store for a
    /// token renewed by its holder.
    async fn acquire_lock(
        &self,
        st: &mut SessionState,
        rejected: Option<&AccessToken>,
    ) -> Result<LockOutcome> {
        let Some(lock) = self.store.refresh_lock() else {
            return Ok(LockOutcome::Acquired(None));
        };
        // `None`: a wait too long to represent (e.g. `Duration::MAX`) never ends.
        let deadline = tokio::time::Instant::now().checked_add(self.config.lock_wait);
        let mut pause = self.config.lock_poll.max(Duration::from_millis(1));
        let mut announced = false;
        loop {
            match lock.try_acquire(&self.key, self.config.lock_lease).await {
                Ok(Some(lease)) => return Ok(LockOutcome::Acquired(Some(lease))),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(
                        error = %err,
                        "the refresh lock is unavailable; renewing without cross-process coordination"
                    );
                    return Ok(LockOutcome::Acquired(None));
                }
            }
            if !announced {
                tracing::debug!("another process is renewing this session; waiting for it");
                announced = true;
            }
            let left = deadline.map_or(Duration::MAX, |deadline| {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            });
            if left.is_zero() {
                return Err(FlowError::new(
                    FlowErrorKind::LockTimeout,
                    format!(
                        "another process held the refresh lock of session `{}` for more than {:?} \
                         without storing a fresh token: try again",
                        self.key, self.config.lock_wait
                    ),
                ));
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = pause.saturating_mul(2).min(MAX_LOCK_POLL);
            let now = self.clock.now();
            if self.sync_from_store(st, now).await.is_ok() {
                if let Some(cached) = self.usable(st, now, rejected) {
                    tracing::info!("another process renewed the token; using it");
                    return Ok(LockOutcome::Adopted(cached));
                }
                if st.record.is_none() {
                    return Err(self.no_session());
                }
            }
        }
    }

    /// What to serve for the session in memory, if it has a token.
    pub(super) fn cached_for(&self, st: &SessionState, now: Timestamp) -> Option<Cached> {
        let record = st.record.as_ref()?;
        let token = record.token()?;
        let expires = token.expires_at();
        let renewable = st.ended.is_none()
            && matches!(
                self.source.renewal(record),
                Renewal::RefreshToken | Renewal::SignInAgain | Renewal::WebTier
            );
        let refresh_at = if renewable {
            let issued = record.updated_at.unwrap_or(now).min(expires);
            let lead = effective_lead(
                self.config.refresh_lead,
                expires.saturating_duration_since(issued),
            );
            let spread = jitter_fraction(self.config.jitter)
                * self
                    .jitter
                    .unit_for(expires.as_unix_millis().unsigned_abs());
            expires - lead - lead.mul_f64(spread)
        } else {
            expires
        };
        let mut check_at = refresh_at;
        if st.pending.is_some() {
            let retry_at = st.save_failed_at.unwrap_or(now) + self.config.save_retry_after;
            check_at = check_at.min(retry_at);
        }
        // The epoch read before the state was last read from or written to
        // the store: a change seen since makes it stale.
        Some(Cached::new(
            AccessToken::new(token),
            refresh_at,
            check_at,
            st.epoch,
        ))
    }

    /// The session in memory, if it can be served without renewing.
    fn usable(
        &self,
        st: &SessionState,
        now: Timestamp,
        rejected: Option<&AccessToken>,
    ) -> Option<Arc<Cached>> {
        self.cached_for(st, now)
            .filter(|c| now < c.refresh_at && !is_rejected(&c.token, rejected))
            .map(Arc::new)
    }

    /// Installs what the session state says (after `set_session`/`persist`).
    /// A token already reported invalid stays reported.
    pub(super) fn install_from_state(&self, st: &SessionState, now: Timestamp) {
        let Some(cached) = self.cached_for(st, now) else {
            return;
        };
        let previous = self.current.load_full();
        if previous.is_some_and(|p| p.is_invalid() && p.token.same_token(&cached.token)) {
            cached.mark_invalid();
        }
        self.current.store(Some(Arc::new(cached)));
    }

    fn no_session(&self) -> FlowError {
        FlowError::new(
            FlowErrorKind::NoSession,
            format!("no session is stored under `{}`: sign in first", self.key),
        )
    }
}

/// What a flight whose session was replaced meanwhile ends with (nobody
/// sees it: the flight lands nowhere).
fn superseded(key: &str) -> FlowError {
    FlowError::new(
        FlowErrorKind::NoSession,
        format!("session `{key}` was replaced or forgotten while it was renewed"),
    )
}

/// Writes a renewed token into `record`. Federated server tokens were made
/// from the previous portal token, so they are dropped with it.
fn apply_renewed(record: &mut SessionRecord, token: &Token, updated_at: Option<Timestamp>) {
    record.set_token(token);
    record.updated_at = updated_at;
    record.server_tokens.clear();
}

/// Marks the session as ended when `err` means only a new sign-in helps.
fn end_if_final(st: &mut SessionState, err: FlowError) -> FlowError {
    if err.kind() == FlowErrorKind::SignInRequired {
        st.ended = Some(err.clone());
    }
    err
}

/// Turns the failures whose cure is a new sign-in into `SignInRequired`,
/// with a message for the grant that failed.
fn classify(err: FlowError, grant: Grant) -> FlowError {
    let is_498 = err.arcgis_kind() == Some(ErrorKind::RefreshTokenExpired);
    let invalid_grant = err.arcgis_kind() == Some(ErrorKind::InvalidGrant);
    // A refused password (core reads ArcGIS's wordings as `InvalidGrant`) or a
    // refused client secret: sending it again can only fail again, and a
    // directory locks the account after a few failures.
    let refused_credential = invalid_grant
        || err.arcgis_kind() == Some(ErrorKind::InvalidClient)
        || err.arcgis_kind() == Some(ErrorKind::WebTierCredentialRejected);
    match grant {
        Grant::Refresh | Grant::Exchange if is_498 => FlowError::sign_in_required(
            "the refresh token expired or was revoked (498 from the token endpoint): sign in again",
            err,
        ),
        Grant::Refresh | Grant::Exchange if invalid_grant => FlowError::sign_in_required(
            "the refresh token was rejected (revoked, or already exchanged by another client): sign in again",
            err,
        ),
        Grant::SignIn if refused_credential => FlowError::sign_in_required(
            "the credentials were rejected (a changed password or secret, or a revoked app?); \
             they are not sent again: sign in again with new ones",
            err,
        ),
        _ => err,
    }
}

fn jitter_fraction(jitter: f64) -> f64 {
    if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn is_rejected(token: &AccessToken, rejected: Option<&AccessToken>) -> bool {
    rejected.is_some_and(|r| r.same_token(token))
}

/// Whether the record's access token is `portal` (server tokens are saved
/// only with the portal token they were made from).
fn made_from(record: &SessionRecord, portal: &AccessToken) -> bool {
    record.access_token.as_ref().is_some_and(|t| {
        constant_time_eq(
            t.expose_secret().as_bytes(),
            portal.secret().expose_secret().as_bytes(),
        )
    })
}

fn same_access_token(a: &SessionRecord, b: &SessionRecord) -> bool {
    secret_eq(a.access_token.as_ref(), b.access_token.as_ref())
}

fn same_refresh_token(a: Option<&SessionRecord>, b: &SessionRecord) -> bool {
    a.is_some_and(|a| secret_eq(a.refresh_token.as_ref(), b.refresh_token.as_ref()))
}

fn secret_eq(
    a: Option<&arcgis_auth_core::SecretString>,
    b: Option<&arcgis_auth_core::SecretString>,
) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            constant_time_eq(a.expose_secret().as_bytes(), b.expose_secret().as_bytes())
        }
        (None, None) => true,
        _ => false,
    }
}
