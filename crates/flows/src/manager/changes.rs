//! Following the store's change events, so that the cached path never keeps
//! serving a session that another process replaced or signed out.
//!
//! The watcher never touches the cached path: it bumps `Inner::store_epoch`
//! (under the manager's mutex), and the cached path compares one integer.
//! It never waits for a renewal in flight either: a deletion is applied at
//! once (and the renewal's result, when it lands, is dropped); the events of
//! the manager's own saves are told apart by their versions.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use arcgis_auth_storage::{ChangeEvent, ChangeKind};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::AbortHandle;

use super::Inner;
use super::state::{Pending, SessionState, Shared};

/// The watcher task of one manager, kept in the session state (under the
/// manager's one mutex): subscribed at `build` (which needs no runtime),
/// started on the first slow-path call that runs on Tokio, stopped when the
/// last clone of the manager is dropped. If its runtime shuts down first, the
/// cached token stops being served blindly and the next call on a runtime
/// subscribes again and starts another.
pub(super) struct Watcher(State);

enum State {
    /// Subscribed; events wait in the channel until the task starts.
    Waiting(broadcast::Receiver<ChangeEvent>),
    /// Being spawned (by the one `start_watcher` that found it waiting or lost).
    Starting,
    Running(AbortHandle),
    /// The task was dropped with its runtime; events since were missed.
    Lost,
    /// The store closed its event channel, or the manager follows nothing:
    /// nothing more to follow.
    Ended,
}

impl Watcher {
    pub(super) fn new(events: broadcast::Receiver<ChangeEvent>) -> Self {
        Watcher(State::Waiting(events))
    }

    /// A watcher that follows nothing ([`ManagerConfig::follow_store`] off).
    ///
    /// [`ManagerConfig::follow_store`]: crate::ManagerConfig::follow_store
    pub(super) fn off() -> Self {
        Watcher(State::Ended)
    }

    #[cfg(test)]
    fn abort_handle(&self) -> Option<AbortHandle> {
        match &self.0 {
            State::Running(handle) => Some(handle.clone()),
            _ => None,
        }
    }
}

impl Default for Watcher {
    fn default() -> Self {
        Watcher::off()
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            State::Waiting(_) => "Waiting",
            State::Starting => "Starting",
            State::Running(_) => "Running",
            State::Lost => "Lost",
            State::Ended => "Ended",
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let State::Running(task) = &self.0 {
            task.abort();
        }
    }
}

impl Inner {
    /// Starts the watcher on the current Tokio runtime unless it runs. Does
    /// nothing outside a runtime (the next call on one starts it).
    pub(super) fn start_watcher(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let waiting = {
            let mut shared = self.shared();
            match std::mem::replace(&mut shared.watcher.0, State::Starting) {
                State::Waiting(events) => Some(events),
                State::Lost => None,
                other => {
                    shared.watcher.0 = other;
                    return;
                }
            }
        };
        // Subscribed again (after a loss) before the renewal this call leads
        // to reads the store: nothing falls between the two.
        let events = waiting.unwrap_or_else(|| self.store.subscribe());
        // Spawned without the lock held: a runtime that is shutting down
        // drops the task at once, and its guard then takes the lock.
        // Weak references: the watcher must not keep the manager alive.
        let guard = LostGuard(Arc::downgrade(self));
        let task = runtime.spawn(follow(Arc::downgrade(self), events, guard));
        let mut shared = self.shared();
        if matches!(shared.watcher.0, State::Starting) {
            shared.watcher.0 = State::Running(task.abort_handle());
        }
    }
}

/// Marks the watcher lost when its task is dropped before it ends by itself
/// (its runtime shut down, possibly before it ever ran).
struct LostGuard(Weak<Inner>);

impl Drop for LostGuard {
    fn drop(&mut self) {
        let Some(inner) = self.0.upgrade() else {
            return; // The manager is gone: nothing to watch for.
        };
        // Changes from now on go unseen: stop serving the cache blindly.
        let mut shared = inner.shared();
        inner.store_epoch.fetch_add(1, Ordering::AcqRel);
        shared.watcher.0 = State::Lost;
        drop(shared);
        tracing::debug!(
            session = %inner.key,
            "the runtime of the store watcher shut down; the next call starts another"
        );
    }
}

/// Hands every event about this manager's session to it, until the manager
/// or the store is gone.
async fn follow(
    inner: Weak<Inner>,
    mut events: broadcast::Receiver<ChangeEvent>,
    mut guard: LostGuard,
) {
    let ended = follow_until_closed(&inner, &mut events).await;
    if ended && let Some(inner) = inner.upgrade() {
        inner.shared().watcher.0 = State::Ended;
    }
    // Ended by itself: not lost.
    guard.0 = Weak::new();
}

/// Returns `true` when the store closed its channel, `false` when the
/// manager is gone.
async fn follow_until_closed(
    inner: &Weak<Inner>,
    events: &mut broadcast::Receiver<ChangeEvent>,
) -> bool {
    loop {
        let event = match events.recv().await {
            Ok(event) => Some(event),
            // Events were dropped: any of them may have been about us.
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "fell behind the store's change events");
                None
            }
            Err(RecvError::Closed) => return true,
        };
        let Some(inner) = inner.upgrade() else {
            return false;
        };
        #[cfg(test)]
        inner.watch_seen.fetch_add(1, Ordering::AcqRel);
        if event.as_ref().is_some_and(|e| !e.concerns(&inner.key)) {
            continue;
        }
        inner.on_store_change(event.as_ref());
    }
}

impl Inner {
    /// Reacts to a change of this session in the store (`None`: changes may
    /// have been missed). Never waits: while one of the manager's own saves
    /// is in progress, an event is kept until the save says which version
    /// it wrote.
    pub(super) fn on_store_change(&self, event: Option<&ChangeEvent>) {
        let mut shared = self.shared();
        if let Some(event) = event
            && shared.saves.in_progress > 0
        {
            shared.saves.deferred.push(event.clone());
            return;
        }
        self.apply_change(&mut shared, event, false);
    }

    /// One of the manager's saves returned: the events kept while saves
    /// were in progress are sorted out once none is.
    pub(super) fn save_ended(&self, shared: &mut Shared) {
        shared.saves.in_progress = shared.saves.in_progress.saturating_sub(1);
        if shared.saves.in_progress > 0 {
            return;
        }
        for event in std::mem::take(&mut shared.saves.deferred) {
            self.apply_change(shared, Some(&event), true);
        }
    }

    /// Applies a change event. A deletion seen while the manager was saving
    /// may have come before or after its save: the next call reads the
    /// store to find out, instead of forgetting the session at once.
    fn apply_change(&self, shared: &mut Shared, event: Option<&ChangeEvent>, deferred: bool) {
        match event.map(|e| (&e.kind, e.version.as_ref())) {
            // Our own save, or a version we already read.
            Some((ChangeKind::Created | ChangeKind::Updated, Some(version)))
                if shared.st.version.as_ref() == Some(version) || shared.saves.is_own(version) =>
            {
                return;
            }
            // Signed out elsewhere: forget the session at once, and drop
            // whatever a renewal in flight finds. A sign-in made here and not
            // saved yet is newer; it stays (and is saved again).
            Some((ChangeKind::Deleted, _))
                if !deferred && !matches!(shared.st.pending, Some(Pending::Session)) =>
            {
                if shared.st.record.is_some() {
                    tracing::info!(
                        session = %self.key,
                        "the session was deleted from the store (signed out elsewhere); forgetting it"
                    );
                }
                self.new_generation(shared, SessionState::default());
                self.current.store(None);
            }
            _ => {}
        }
        // Whatever is cached was made at an older epoch: the next call reads
        // the store before serving it.
        self.store_epoch.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(
            session = %self.key,
            change = ?event.map(|e| &e.kind),
            "the session changed in the store; the next call reads it again"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use arcgis_auth_core::{ExposeSecret, Portal, Timestamp, Token};
    use arcgis_auth_storage::{
        FileStore, MemoryStore, RedisStore, SaveMode, SessionKind, SessionRecord, SessionStore,
    };

    use super::*;
    use crate::{FlowError, FlowErrorKind, RenewRequest, Renewal, TokenManager, TokenSource};
    use arcgis_auth_storage::test_util::RedisServer;

    const KEY: &str = "app:demo";

    /// Signs in again for a new token (`renewed-<n>`), counting calls.
    #[derive(Debug)]
    struct Source(Arc<AtomicUsize>);

    #[async_trait::async_trait]
    impl TokenSource for Source {
        fn renewal(&self, _: &SessionRecord) -> Renewal {
            Renewal::SignInAgain
        }
        async fn renew(&self, r: &RenewRequest<'_>) -> Result<Token, FlowError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Token::new(
                format!("renewed-{n}").into(),
                r.now() + Duration::from_secs(7200),
            ))
        }
    }

    /// A manager of `KEY` in `store` (one per "process") and its renewal count.
    fn manager(store: &Arc<dyn SessionStore>) -> (TokenManager, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let manager = TokenManager::builder(Source(Arc::clone(&calls)), Arc::clone(store), KEY)
            .build()
            .unwrap();
        (manager, calls)
    }

    fn record(token: &str) -> SessionRecord {
        let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
        r.set_token(&Token::new(
            token.to_owned().into(),
            Timestamp::now() + Duration::from_secs(7200),
        ));
        r
    }

    async fn token(m: &TokenManager) -> String {
        m.token().await.unwrap().secret().expose_secret().to_owned()
    }

    fn cached(m: &TokenManager) -> Option<String> {
        m.cached().map(|t| t.secret().expose_secret().to_owned())
    }

    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("not within 5 s: {what}");
    }

    fn seen(m: &TokenManager) -> u64 {
        m.inner.watch_seen.load(Ordering::Acquire)
    }

    #[tokio::test]
    async fn a_sign_out_elsewhere_drops_the_cached_token() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let (a, a_calls) = manager(&store);
        let (b, _) = manager(&store);
        a.set_session(record("first")).await.unwrap();
        assert_eq!(token(&a).await, "first");

        // The other process signs out: it deletes the session from the store.
        assert!(b.store().delete(KEY, None).await.unwrap());
        wait_until("a forgets the session", || cached(&a).is_none()).await;
        assert!(a.session().await.is_none());
        let err = a.token().await.unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::NoSession, "{err}");
        assert_eq!(a_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_manager_that_does_not_follow_the_store_keeps_its_cache() {
        let store = Arc::new(MemoryStore::new());
        let dyn_store: Arc<dyn SessionStore> = store.clone();
        let config = crate::ManagerConfig {
            follow_store: false,
            ..Default::default()
        };
        let calls = Arc::new(AtomicUsize::new(0));
        let a = TokenManager::builder(Source(Arc::clone(&calls)), dyn_store, KEY)
            .config(config)
            .build()
            .unwrap();
        a.set_session(record("first")).await.unwrap();
        assert_eq!(token(&a).await, "first");
        assert!(store.delete(KEY, None).await.unwrap());
        // Events are not followed: give a watcher every chance, then check.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(seen(&a), 0);
        assert_eq!(cached(&a).as_deref(), Some("first"));
    }

    #[tokio::test]
    async fn a_change_elsewhere_is_read_before_the_cache_is_served_again() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let (a, a_calls) = manager(&store);
        let (b, b_calls) = manager(&store);
        a.set_session(record("first")).await.unwrap();
        assert_eq!(token(&a).await, "first");
        assert_eq!(token(&b).await, "first");

        // The other process signs in again (a new session, a new version).
        b.set_session(record("second")).await.unwrap();
        wait_until("a stops serving the old token", || cached(&a).is_none()).await;
        assert_eq!(token(&a).await, "second");
        assert_eq!(cached(&a).as_deref(), Some("second"));

        // The other process renews (its token was rejected).
        let rejected = b.token().await.unwrap();
        assert!(b.report_invalid(&rejected));
        assert_eq!(token(&b).await, "renewed-1");
        wait_until("a stops serving the old token", || cached(&a).is_none()).await;
        assert_eq!(token(&a).await, "renewed-1");
        assert_eq!(
            (
                a_calls.load(Ordering::SeqCst),
                b_calls.load(Ordering::SeqCst)
            ),
            (0, 1)
        );
    }

    #[tokio::test]
    async fn own_saves_and_other_sessions_leave_the_cache_alone() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let (a, a_calls) = manager(&store);
        a.set_session(record("first")).await.unwrap();
        wait_until("a sees its own save", || seen(&a) >= 1).await;
        assert_eq!(cached(&a).as_deref(), Some("first"));

        // Its own renewal's save.
        let rejected = a.token().await.unwrap();
        assert!(a.report_invalid(&rejected));
        assert_eq!(token(&a).await, "renewed-1");
        wait_until("a sees its own save", || seen(&a) >= 2).await;
        assert_eq!(cached(&a).as_deref(), Some("renewed-1"));

        // Another session in the same store.
        store
            .save("someone-else", &record("x"), SaveMode::Create)
            .await
            .unwrap();
        store.delete("someone-else", None).await.unwrap();
        wait_until("a sees the other session's changes", || seen(&a) >= 4).await;
        assert_eq!(cached(&a).as_deref(), Some("renewed-1"));
        assert_eq!(a_calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn missed_changes_make_the_next_call_read_the_store() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let (a, a_calls) = manager(&store);
        a.set_session(record("first")).await.unwrap();
        wait_until("a sees its own save", || seen(&a) >= 1).await;

        // A resync (as the Redis store sends after reconnecting).
        a.inner.on_store_change(Some(&ChangeEvent::resync()));
        assert_eq!(cached(&a), None);
        assert_eq!(token(&a).await, "first");
        assert_eq!(cached(&a).as_deref(), Some("first"));

        // A change of our session, then more events than the channel holds,
        // sent without yielding (this is a single-threaded runtime): the
        // watcher falls behind and the change's event is among those dropped.
        let current = store.load(KEY).await.unwrap().unwrap();
        store
            .save(KEY, &record("changed"), SaveMode::Update(current.version))
            .await
            .unwrap();
        for i in 0..2000 {
            store
                .save(&format!("other-{i}"), &record("x"), SaveMode::Create)
                .await
                .unwrap();
        }
        wait_until("a notices it lagged", || cached(&a).is_none()).await;
        assert_eq!(token(&a).await, "changed");
        assert_eq!(a_calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_watcher_starts_on_a_runtime_and_stops_with_the_last_manager() {
        // Built outside any runtime.
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let (a, _) = manager(&store);
        assert!(a.inner.shared().watcher.abort_handle().is_none());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async move {
            a.set_session(record("first")).await.unwrap();
            let task = a.inner.shared().watcher.abort_handle().expect("started");
            let clone = a.clone();
            drop(a);
            tokio::task::yield_now().await;
            assert!(!task.is_finished(), "stopped while a clone lives");
            assert_eq!(cached(&clone).as_deref(), Some("first"));
            drop(clone);
            wait_until("the watcher stops", || task.is_finished()).await;
        });
    }

    #[test]
    fn a_watcher_lost_with_its_runtime_is_replaced_on_the_next_one() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap()
        };
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let (a, a_calls) = manager(&store);
        let (b, _) = manager(&store);
        let first = runtime();
        first.block_on(async {
            a.set_session(record("first")).await.unwrap();
            assert_eq!(token(&a).await, "first");
        });
        // Its watcher goes with it (perhaps before it ever ran).
        drop(first);
        assert_eq!(cached(&a), None, "served blindly with nobody watching");

        runtime().block_on(async {
            // Unseen by a: no watcher runs now.
            b.set_session(record("second")).await.unwrap();
            // The next call reads the store, and watches again.
            assert_eq!(token(&a).await, "second");
            assert!(a.inner.shared().watcher.abort_handle().is_some());
            b.set_session(record("third")).await.unwrap();
            wait_until("a sees the change", || cached(&a).is_none()).await;
            assert_eq!(token(&a).await, "third");
        });
        assert_eq!(a_calls.load(Ordering::SeqCst), 0);
    }

    /// Two managers of `KEY` on two handles of one store (two processes):
    /// a sign-in and a sign-out through one reach the other. The store's
    /// feed of other processes' changes starts with its first subscriber and
    /// announces itself with a resync, after which remote changes arrive.
    async fn changes_reach_the_other_manager(
        a_store: Arc<dyn SessionStore>,
        b_store: Arc<dyn SessionStore>,
    ) {
        let mut probe = a_store.subscribe();
        let (a, a_calls) = manager(&a_store);
        let (b, _) = manager(&b_store);
        let first = tokio::time::timeout(Duration::from_secs(10), probe.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.kind, ChangeKind::Resync);

        a.set_session(record("first")).await.unwrap();
        assert_eq!(token(&a).await, "first");
        b.set_session(record("second")).await.unwrap();
        wait_until("a stops serving the old token", || {
            cached(&a).as_deref() != Some("first")
        })
        .await;
        assert_eq!(token(&a).await, "second");

        // The other process signs out.
        assert!(b.store().delete(KEY, None).await.unwrap());
        wait_until("a forgets the session", || cached(&a).is_none()).await;
        let err = a.token().await.unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::NoSession, "{err}");
        assert_eq!(a_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_processes_changes_reach_the_manager_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        // Two handles opened separately on one file stand in for two processes.
        let open = || {
            let store = FileStore::builder(&path)
                .poll_interval(Duration::from_millis(10))
                .build()
                .unwrap();
            Arc::new(store) as Arc<dyn SessionStore>
        };
        changes_reach_the_other_manager(open(), open()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_processes_changes_reach_the_manager_through_redis() {
        let Some(server) =
            RedisServer::for_test("other_processes_changes_reach_the_manager_through_redis")
        else {
            return;
        };
        let prefix = RedisServer::unique_prefix();
        let connect = || async {
            let store = RedisStore::builder(server.url())
                .prefix(&prefix)
                .connect()
                .await
                .unwrap();
            Arc::new(store) as Arc<dyn SessionStore>
        };
        // Two connections stand in for two processes.
        changes_reach_the_other_manager(connect().await, connect().await).await;
    }
}
