//! The conformance suite is only worth running if it fails broken stores: each
//! store here breaks one rule, and the matching check must panic.

use std::time::Duration;

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_storage::{
    ChangeEvent, Lease, MemoryStore, RefreshLock, SaveMode, SessionRecord, SessionStore,
    StoreError, StoreErrorKind, StoreResult, Version, Versioned, conformance,
};
use async_trait::async_trait;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flaw {
    /// `Update` and `Create` behave like `Overwrite`.
    NoCompareAndSwap,
    /// Conflict errors quote the record's access token.
    LeakyErrors,
    /// `subscribe` returns a receiver nobody sends to.
    NoEvents,
    /// Every `try_acquire` succeeds.
    NoLockExclusion,
    /// `list` ignores the prefix.
    ListIgnoresPrefix,
}

#[derive(Debug, Clone)]
struct Broken {
    inner: MemoryStore,
    flaw: Flaw,
    silent: broadcast::Sender<ChangeEvent>,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Broken {
            inner: MemoryStore::new(),
            flaw,
            silent: broadcast::channel(16).0,
        }
    }
}

#[async_trait]
impl SessionStore for Broken {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        self.inner.load(key).await
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        match self.flaw {
            Flaw::NoCompareAndSwap => self.inner.save(key, record, SaveMode::Overwrite).await,
            Flaw::LeakyErrors => self.inner.save(key, record, mode).await.map_err(|e| {
                let token = record
                    .access_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned())
                    .unwrap_or_default();
                StoreError::new(e.kind(), format!("{e} while saving {token}"))
            }),
            _ => self.inner.save(key, record, mode).await,
        }
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        self.inner.delete(key, version).await
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        if self.flaw == Flaw::ListIgnoresPrefix {
            return self.inner.list("").await;
        }
        self.inner.list(prefix).await
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        if self.flaw == Flaw::NoEvents {
            return self.silent.subscribe();
        }
        self.inner.subscribe()
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        Some(self)
    }
}

#[async_trait]
impl RefreshLock for Broken {
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>> {
        if self.flaw == Flaw::NoLockExclusion {
            arcgis_auth_storage::validate_key(key)?;
            return Ok(Some(Lease {
                key: key.to_owned(),
                holder: format!("{:?}", std::time::Instant::now()),
                duration: lease,
            }));
        }
        self.inner.try_acquire(key, lease).await
    }

    async fn release(&self, lease: &Lease) -> StoreResult<bool> {
        self.inner.release(lease).await
    }
}

/// Runs `check` in its own task and returns whether it panicked.
async fn panics<F>(check: F) -> bool
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(check).await.is_err_and(|e| e.is_panic())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_flaw_is_caught() {
    let s = Broken::new(Flaw::NoCompareAndSwap);
    assert!(panics(async move { conformance::create_conflicts(&s).await }).await);
    let s = Broken::new(Flaw::NoCompareAndSwap);
    assert!(panics(async move { conformance::concurrent_updates(|| s.clone()).await }).await);

    let s = Broken::new(Flaw::LeakyErrors);
    assert!(panics(async move { conformance::no_secrets_in_errors(&s).await }).await);

    let (a, b) = (
        Broken::new(Flaw::NoLockExclusion),
        Broken::new(Flaw::NoLockExclusion),
    );
    assert!(panics(async move { conformance::refresh_lock_exclusion(&a, &b).await }).await);

    let s = Broken::new(Flaw::ListIgnoresPrefix);
    assert!(panics(async move { conformance::list_by_prefix(&s).await }).await);
}

#[tokio::test(start_paused = true)]
async fn missing_events_are_caught() {
    // Paused time: the check's wait for the event runs out without sleeping.
    let s = Broken::new(Flaw::NoEvents);
    assert!(panics(async move { conformance::change_events(&s).await }).await);
}

#[tokio::test]
async fn the_conflict_check_sees_the_real_error_kind() {
    // Sanity check of the harness itself: a correct store passes the same checks.
    let s = Broken::new(Flaw::ListIgnoresPrefix);
    let t = s.clone();
    assert!(!panics(async move { conformance::create_conflicts(&t).await }).await);
    assert_eq!(
        s.save("k", &conformance::sample_record(), SaveMode::Create)
            .await
            .and(
                s.save("k", &conformance::sample_record(), SaveMode::Create)
                    .await
            )
            .unwrap_err()
            .kind(),
        StoreErrorKind::Conflict
    );
}
