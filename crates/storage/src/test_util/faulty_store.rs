//! [`FaultyStore`]: a store wrapper that fails, breaks the store contract
//! and counts calls on demand, for tests of what sits on top of a store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use arcgis_auth_core::ExposeSecret;
use async_trait::async_trait;
use tokio::sync::{Semaphore, broadcast};

use crate::error::{StoreError, StoreResult};
use crate::feed::ChangeFeed;
use crate::id::random_id;
use crate::memory::MemoryStore;
use crate::record::SessionRecord;
use crate::store::{
    ChangeEvent, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned, validate_key,
};

/// What a [`FaultyStore`] can be told to do wrong. Each is off until
/// [`FaultyStore::set`] turns it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// `load` fails as [`Unavailable`](crate::StoreErrorKind::Unavailable).
    LoadsFail,
    /// `save` fails as unavailable.
    SavesFail,
    /// `delete` fails as unavailable.
    DeletesFail,
    /// `list` fails as unavailable.
    ListsFail,
    /// The refresh lock's `try_acquire` and `release` fail as unavailable.
    LocksFail,
    /// Every save overwrites, whatever its [`SaveMode`]: no compare-and-swap.
    SavesOverwrite,
    /// Errors of saves quote the record's access token.
    ErrorsQuoteTokens,
    /// `subscribe` hands out a receiver nobody sends to.
    NoEvents,
    /// Every `try_acquire` succeeds, even while another holder has the lock.
    LockAlwaysGranted,
    /// `list` ignores its prefix and lists every key.
    ListIgnoresPrefix,
}

impl Fault {
    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// An operation whose calls a [`FaultyStore`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`SessionStore::load`].
    Load,
    /// [`SessionStore::save`].
    Save,
    /// [`SessionStore::delete`].
    Delete,
    /// [`SessionStore::list`].
    List,
    /// [`RefreshLock::try_acquire`].
    TryAcquire,
    /// [`RefreshLock::release`].
    Release,
    /// [`RefreshLock::extend`].
    Extend,
}

/// A [`SessionStore`] around another (a [`MemoryStore`] unless said
/// otherwise) that fails or misbehaves when told to ([`Fault`]), holds saves
/// at a gate, and counts the calls that reach the store underneath.
///
/// Clones share the faults, the counts and the store underneath (when its
/// clones do, as a `MemoryStore`'s). Its refresh lock is the wrapped
/// store's, counted and with [`Fault::LocksFail`] and
/// [`Fault::LockAlwaysGranted`] applied; a store without one has none here
/// either.
///
/// ```
/// use arcgis_auth_storage::test_util::{Fault, FaultyStore, Op};
/// use arcgis_auth_storage::{SessionStore, StoreErrorKind};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = FaultyStore::new(arcgis_auth_storage::MemoryStore::new());
/// store.set(Fault::LoadsFail, true);
/// let err = store.load("k").await.unwrap_err();
/// assert_eq!(err.kind(), StoreErrorKind::Unavailable);
/// store.set(Fault::LoadsFail, false);
/// assert!(store.load("k").await.unwrap().is_none());
/// assert_eq!(store.calls(Op::Load), 1, "the failed load never reached the store");
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FaultyStore<S = MemoryStore> {
    inner: S,
    shared: Arc<Shared>,
    /// Saves wait for a permit of this before anything else.
    save_gate: Option<Arc<Semaphore>>,
}

#[derive(Debug)]
struct Shared {
    faults: AtomicU32,
    /// Indexed by `Op as usize`.
    calls: [AtomicUsize; 7],
    /// Saves the wrapped store refused as conflicts.
    conflicts: AtomicUsize,
    /// The feed of [`Fault::NoEvents`], which nothing is sent to.
    silent: ChangeFeed,
}

impl FaultyStore<MemoryStore> {
    /// A store that is down: every load, save, delete, list and lock call
    /// fails as unavailable (until told otherwise with [`set`](Self::set)).
    pub fn down() -> Self {
        let store = FaultyStore::new(MemoryStore::new());
        for fault in [
            Fault::LoadsFail,
            Fault::SavesFail,
            Fault::DeletesFail,
            Fault::ListsFail,
            Fault::LocksFail,
        ] {
            store.set(fault, true);
        }
        store
    }
}

impl<S: SessionStore> FaultyStore<S> {
    /// `inner`, without faults (yet).
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            shared: Arc::new(Shared {
                faults: AtomicU32::new(0),
                calls: Default::default(),
                conflicts: AtomicUsize::new(0),
                silent: ChangeFeed::new(),
            }),
            save_gate: None,
        }
    }

    /// Makes every save wait for a permit of `gate` (taken and given back)
    /// before anything else: a test holds saves with `Semaphore::new(0)`
    /// and lets them go with `add_permits`. Clones made after this share
    /// the gate.
    pub fn with_save_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.save_gate = Some(gate);
        self
    }

    /// Turns `fault` on or off, for this store and its clones.
    pub fn set(&self, fault: Fault, on: bool) {
        if on {
            self.shared.faults.fetch_or(fault.bit(), Ordering::SeqCst);
        } else {
            self.shared.faults.fetch_and(!fault.bit(), Ordering::SeqCst);
        }
    }

    /// Whether `fault` is on.
    pub fn has(&self, fault: Fault) -> bool {
        self.shared.faults.load(Ordering::SeqCst) & fault.bit() != 0
    }

    /// How many calls of `op` reached the wrapped store and came back (with
    /// an answer or its error); calls failed by a fault, or still waiting at
    /// the save gate, are not counted.
    pub fn calls(&self, op: Op) -> usize {
        self.shared.calls[op as usize].load(Ordering::SeqCst)
    }

    /// How many saves the wrapped store refused as a
    /// [`Conflict`](crate::StoreErrorKind::Conflict) (the record had changed
    /// since the version they were based on).
    pub fn conflicts(&self) -> usize {
        self.shared.conflicts.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Fails with "the store is down" when `fault` is on.
    fn check(&self, fault: Fault) -> StoreResult<()> {
        if self.has(fault) {
            return Err(StoreError::unavailable(
                "the store is down (an injected fault)",
            ));
        }
        Ok(())
    }

    /// Counts a call that came back from the wrapped store.
    fn counted<T>(&self, op: Op, answer: T) -> T {
        self.shared.calls[op as usize].fetch_add(1, Ordering::SeqCst);
        answer
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for FaultyStore<S> {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        self.check(Fault::LoadsFail)?;
        let answer = self.inner.load(key).await;
        self.counted(Op::Load, answer)
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        if let Some(gate) = &self.save_gate {
            // A closed gate lets saves through.
            let _permit = gate.acquire().await;
        }
        self.check(Fault::SavesFail)?;
        let mode = if self.has(Fault::SavesOverwrite) {
            SaveMode::Overwrite
        } else {
            mode
        };
        let answer = self.inner.save(key, record, mode).await;
        let answer = self.counted(Op::Save, answer);
        if answer
            .as_ref()
            .is_err_and(|e| e.kind() == crate::StoreErrorKind::Conflict)
        {
            self.shared.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        if self.has(Fault::ErrorsQuoteTokens) {
            return answer.map_err(|e| {
                let token = record
                    .access_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned())
                    .unwrap_or_default();
                StoreError::new(e.kind(), format!("{e} while saving {token}"))
            });
        }
        answer
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        self.check(Fault::DeletesFail)?;
        let answer = self.inner.delete(key, version).await;
        self.counted(Op::Delete, answer)
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        self.check(Fault::ListsFail)?;
        let prefix = if self.has(Fault::ListIgnoresPrefix) {
            ""
        } else {
            prefix
        };
        let answer = self.inner.list(prefix).await;
        self.counted(Op::List, answer)
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        if self.has(Fault::NoEvents) {
            return self.shared.silent.subscribe();
        }
        self.inner.subscribe()
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        self.inner.refresh_lock()?;
        Some(self)
    }
}

#[async_trait]
impl<S: SessionStore> RefreshLock for FaultyStore<S> {
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>> {
        self.check(Fault::LocksFail)?;
        let lock = self.inner.refresh_lock().ok_or_else(no_lock)?;
        if self.has(Fault::LockAlwaysGranted) {
            validate_key(key)?;
            return Ok(self.counted(
                Op::TryAcquire,
                Some(Lease {
                    key: key.to_owned(),
                    holder: random_id(),
                    duration: lease,
                }),
            ));
        }
        let answer = lock.try_acquire(key, lease).await;
        self.counted(Op::TryAcquire, answer)
    }

    async fn release(&self, lease: &Lease) -> StoreResult<bool> {
        self.check(Fault::LocksFail)?;
        let lock = self.inner.refresh_lock().ok_or_else(no_lock)?;
        let answer = lock.release(lease).await;
        self.counted(Op::Release, answer)
    }

    async fn extend(&self, lease: &Lease) -> StoreResult<bool> {
        self.check(Fault::LocksFail)?;
        let lock = self.inner.refresh_lock().ok_or_else(no_lock)?;
        let answer = lock.extend(lease).await;
        self.counted(Op::Extend, answer)
    }
}

/// Only reachable through a `RefreshLock` kept from a store whose lock went
/// away, which no store in this crate does.
fn no_lock() -> StoreError {
    StoreError::unavailable("the wrapped store has no refresh lock")
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use super::*;
    use crate::StoreErrorKind;
    use crate::conformance;

    #[tokio::test]
    async fn without_faults_it_is_the_store_underneath_and_counts() {
        let store = FaultyStore::new(MemoryStore::new());
        conformance::create_conflicts(&store).await;
        let lock = store.refresh_lock().unwrap();
        let lease = lock
            .try_acquire("k", Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert!(
            lock.try_acquire("k", Duration::from_secs(5))
                .await
                .unwrap()
                .is_none()
        );
        assert!(lock.release(&lease).await.unwrap());
        assert_eq!(store.calls(Op::TryAcquire), 2);
        assert_eq!(store.calls(Op::Release), 1);
        assert!(store.calls(Op::Save) >= 2);
    }

    #[tokio::test]
    async fn a_down_store_fails_everything_as_unavailable_and_counts_nothing() {
        let store = FaultyStore::down();
        let record = conformance::sample_record();
        let lock = store.refresh_lock().unwrap();
        let errors = [
            store.load("k").await.unwrap_err(),
            store
                .save("k", &record, SaveMode::Create)
                .await
                .unwrap_err(),
            store.delete("k", None).await.unwrap_err(),
            store.list("").await.unwrap_err(),
            lock.try_acquire("k", Duration::from_secs(1))
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
        }
        for op in [Op::Load, Op::Save, Op::Delete, Op::List] {
            assert_eq!(store.calls(op), 0);
        }
        store.set(Fault::SavesFail, false);
        assert!(store.has(Fault::LoadsFail));
        store.save("k", &record, SaveMode::Create).await.unwrap();
        assert_eq!(store.inner().len(), 1);
    }
}
