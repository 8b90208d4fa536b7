//! [`MemoryStore`]: sessions in this process's memory.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arcgis_auth_core::{Clock, SystemClock};
use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::StoreResult;
use crate::feed::ChangeFeed;
use crate::lease::{LeaseTable, validate_lease};
use crate::record::SessionRecord;
use crate::store::{
    ChangeEvent, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned, validate_key,
};
use crate::table::Table;

/// A session store in this process's memory, for tests and single-process apps.
///
/// Clones share the same sessions, events and refresh locks. The refresh lock
/// only coordinates tasks of this process (which is all there is to coordinate);
/// leases expire by the injected [`Clock`], so tests can move time instead of sleeping.
///
/// ```
/// use arcgis_auth_core::Portal;
/// use arcgis_auth_storage::{MemoryStore, SaveMode, SessionKind, SessionRecord, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let record = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
/// let v1 = store.save("app", &record, SaveMode::Create).await?;
///
/// // A second writer that read v1 too loses the race with a typed conflict.
/// let v2 = store.save("app", &record, SaveMode::Update(v1.clone())).await?;
/// let err = store.save("app", &record, SaveMode::Update(v1)).await.unwrap_err();
/// assert_eq!(err.kind(), arcgis_auth_storage::StoreErrorKind::Conflict);
/// assert_eq!(store.load("app").await?.unwrap().version, v2);
/// # Ok::<_, arcgis_auth_storage::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    events: ChangeFeed,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct State {
    table: Table<SessionRecord>,
    leases: LeaseTable,
}

impl MemoryStore {
    /// An empty store whose leases expire by the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store whose leases expire by `clock` (a
    /// [`ManualClock`](arcgis_auth_core::ManualClock) in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryStore {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                events: ChangeFeed::new(),
                clock,
            }),
        }
    }

    /// How many sessions are stored.
    pub fn len(&self) -> usize {
        self.state().table.sessions.len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; should it ever, the data is still
        // consistent (every change is a single insert or remove).
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, event: ChangeEvent) {
        self.inner.events.publish(event);
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .field("clock", &self.inner.clock)
            .finish()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        validate_key(key)?;
        Ok(self
            .state()
            .table
            .get(key)
            .map(|(record, version)| Versioned {
                record: record.clone(),
                version,
            }))
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        validate_key(key)?;
        let mut state = self.state();
        let event = state.table.save(key, record.clone(), &mode)?;
        let version = event.version.clone();
        // Published under the lock, so subscribers see events in version order.
        self.publish(event);
        drop(state);
        version.ok_or_else(|| crate::StoreError::corrupt("save produced no version"))
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        validate_key(key)?;
        let mut state = self.state();
        let event = state.table.delete(key, version)?;
        let deleted = event.is_some();
        if let Some(event) = event {
            self.publish(event);
        }
        drop(state);
        Ok(deleted)
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        Ok(self.state().table.list(prefix))
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.events.subscribe()
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        Some(self)
    }
}

#[async_trait]
impl RefreshLock for MemoryStore {
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>> {
        validate_key(key)?;
        validate_lease(lease)?;
        let now = self.inner.clock.now();
        Ok(self.state().leases.try_acquire(key, lease, now))
    }

    async fn release(&self, lease: &Lease) -> StoreResult<bool> {
        let now = self.inner.clock.now();
        Ok(self.state().leases.release(lease, now))
    }

    async fn extend(&self, lease: &Lease) -> StoreResult<bool> {
        let now = self.inner.clock.now();
        Ok(self.state().leases.extend(lease, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::{ManualClock, Portal, Timestamp};

    use crate::{ChangeKind, SessionKind, StoreErrorKind};

    fn record() -> SessionRecord {
        SessionRecord::new(Portal::arcgis_online(), SessionKind::User)
    }

    #[tokio::test]
    async fn clones_share_records_and_events() {
        let a = MemoryStore::new();
        let b = a.clone();
        let mut events = b.subscribe();
        let v = a.save("k", &record(), SaveMode::Create).await.unwrap();
        assert_eq!(b.load("k").await.unwrap().unwrap().version, v);
        let e = events.recv().await.unwrap();
        assert_eq!(e.kind, ChangeKind::Created);
        assert_eq!(e.version, Some(v));
        assert_eq!(b.len(), 1);
        assert!(b.delete("k", None).await.unwrap());
        assert!(a.is_empty());
        assert_eq!(events.recv().await.unwrap().kind, ChangeKind::Deleted);
    }

    #[tokio::test]
    async fn lease_expires_by_injected_clock() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000_000));
        let store = MemoryStore::with_clock(Arc::new(clock.clone()));
        let lock = store.refresh_lock().unwrap();
        let lease = Duration::from_secs(30);
        let first = lock.try_acquire("k", lease).await.unwrap().unwrap();
        assert!(lock.try_acquire("k", lease).await.unwrap().is_none());

        clock.advance(Duration::from_secs(29));
        assert!(lock.try_acquire("k", lease).await.unwrap().is_none());

        clock.advance(Duration::from_secs(1));
        let second = lock.try_acquire("k", lease).await.unwrap().unwrap();
        assert!(
            !lock.release(&first).await.unwrap(),
            "expired lease must not release"
        );
        assert!(lock.try_acquire("k", lease).await.unwrap().is_none());
        assert!(lock.release(&second).await.unwrap());
    }

    #[tokio::test]
    async fn bad_keys_and_leases_are_rejected() {
        let store = MemoryStore::new();
        assert_eq!(
            store.load("").await.unwrap_err().kind(),
            StoreErrorKind::InvalidInput
        );
        assert_eq!(
            store
                .try_acquire("k", Duration::ZERO)
                .await
                .unwrap_err()
                .kind(),
            StoreErrorKind::InvalidInput
        );
    }

    #[test]
    fn debug_shows_no_records() {
        let store = MemoryStore::new();
        assert!(format!("{store:?}").starts_with("MemoryStore { sessions: 0"));
    }
}
