//! Other processes' writes to a [`FileStore`](crate::FileStore)'s file, turned
//! into change events by polling the file.
//!
//! The watcher is a thread of its own, started by the first `subscribe()`.
//! Every poll interval it compares the file's metadata (length, modified time
//! and, on Unix, device, inode and change time) with the last look; only when
//! they differ does it read the file (under the shared lock, as `load` does)
//! and compare each key's version with the last snapshot. Writes through the
//! store's own handle update that snapshot while they hold the exclusive
//! lock, so they are never reported twice.
//!
//! A thread rather than a Tokio task: the store is made without a runtime,
//! `subscribe()` may run outside one, and a poll is blocking file work that a
//! task would hand to the blocking pool anyway. A thread also outlives any
//! one runtime, so a store shared by several (or by none) keeps its feed.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::document::Sessions;
use super::paths::Paths;
use crate::feed::ChangeFeed;
use crate::store::{ChangeEvent, ChangeKind, Version};

/// How often the watcher looks at the file unless told otherwise.
pub(super) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Shorter intervals are raised to this, so a mistake cannot spin a core.
pub(super) const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One store's watcher: its settings, the snapshot it shares with the
/// store's writes, and (once started) the channel whose closing stops it.
pub(super) struct Watch {
    interval: Duration,
    shared: Arc<Shared>,
    /// Dropped with the store, which ends the thread's wait at once.
    stop: Mutex<Option<mpsc::Sender<()>>>,
}

/// What the watcher thread and the store's writes share.
pub(super) struct Shared {
    /// The versions the watcher last knew; `None` until it has read the file
    /// (and again after a failed read), while writes leave it alone.
    seen: Mutex<Option<Snapshot>>,
    /// How many times the thread looked at the file (tests wait on it).
    #[cfg(test)]
    pub(super) polls: std::sync::atomic::AtomicU64,
}

/// Each key's version, and the counter they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    next_version: u64,
    versions: BTreeMap<String, u64>,
}

impl Snapshot {
    fn of(table: &Sessions) -> Self {
        Snapshot {
            next_version: table.next_version,
            versions: table
                .sessions
                .iter()
                .map(|(k, e)| (k.clone(), e.version))
                .collect(),
        }
    }

    /// The events that lead from `self` to `now`, in key order.
    fn changes_to(&self, now: &Snapshot) -> Vec<ChangeEvent> {
        let mut events = Vec::new();
        for (key, &version) in &now.versions {
            let kind = match self.versions.get(key) {
                None => ChangeKind::Created,
                Some(&old) if old != version => ChangeKind::Updated,
                Some(_) => continue,
            };
            events.push(ChangeEvent {
                key: key.clone(),
                kind,
                version: Some(Version::new(version.to_string())),
            });
        }
        for key in self.versions.keys() {
            if !now.versions.contains_key(key) {
                events.push(ChangeEvent {
                    key: key.clone(),
                    kind: ChangeKind::Deleted,
                    version: None,
                });
            }
        }
        events
    }
}

impl Watch {
    pub(super) fn new(interval: Duration) -> Self {
        Watch {
            interval: interval.max(MIN_POLL_INTERVAL),
            shared: Arc::new(Shared {
                seen: Mutex::new(None),
                #[cfg(test)]
                polls: std::sync::atomic::AtomicU64::new(0),
            }),
            stop: Mutex::new(None),
        }
    }

    pub(super) fn interval(&self) -> Duration {
        self.interval
    }

    #[cfg(test)]
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    #[cfg(test)]
    pub(super) fn is_running(&self) -> bool {
        lock(&self.stop).is_some()
    }

    /// Starts the watcher thread unless it runs. Never panics: when no
    /// thread can be made, the store reports its own writes only, and the
    /// next `subscribe()` tries again.
    pub(super) fn start(&self, paths: &Paths, events: &ChangeFeed) {
        let mut stop = lock(&self.stop);
        if stop.is_some() {
            return;
        }
        let (stop_tx, stop_rx) = mpsc::channel();
        // The thread holds no reference to the store, so dropping the last
        // clone drops `stop_tx`, which ends the thread.
        let mut poller = Poller {
            paths: paths.clone(),
            events: events.clone(),
            shared: Arc::clone(&self.shared),
            last: None,
            failing: false,
        };
        let interval = self.interval;
        let spawned = std::thread::Builder::new()
            .name("arcgis-auth-file-watch".into())
            .spawn(move || {
                loop {
                    poller.poll();
                    match stop_rx.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => {}
                        // The store is gone.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        match spawned {
            Ok(_) => *stop = Some(stop_tx),
            Err(e) => tracing::warn!(
                error = %e,
                "cannot start the session store's file watcher: other processes' changes \
                 will not be reported"
            ),
        }
    }

    /// Records a write made through this store (already announced), so the
    /// watcher does not announce it again. Call it under the exclusive lock.
    pub(super) fn own_write(&self, key: &str, version: Option<u64>) {
        let mut seen = lock(&self.shared.seen);
        let Some(seen) = seen.as_mut() else {
            return; // The watcher's next read takes it in silently.
        };
        match version {
            Some(v) => seen.versions.insert(key.to_owned(), v),
            None => seen.versions.remove(key),
        };
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The watcher thread's state.
struct Poller {
    paths: Paths,
    events: ChangeFeed,
    shared: Arc<Shared>,
    /// The file's metadata at the last successful read (`Some(None)`: there
    /// was no file); `None` forces a read.
    last: Option<Option<Stamp>>,
    /// Whether the last read failed (logged once per streak).
    failing: bool,
}

impl Poller {
    fn poll(&mut self) {
        #[cfg(test)]
        self.shared
            .polls
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        // Taken before the read: a write after it shows as a change next
        // time (one read too many), never as no change.
        let stamp = stamp(&self.paths.file).ok();
        if stamp.is_some() && stamp == self.last {
            return;
        }
        let read = self.paths.read_shared_with(|doc| {
            let now = Snapshot::of(&doc.body);
            let mut seen = lock(&self.shared.seen);
            match seen.as_mut() {
                // The counter only grows: a file whose counter went back was
                // replaced (restored, deleted): anything may have changed.
                Some(before) if now.next_version >= before.next_version => {
                    for event in before.changes_to(&now) {
                        self.events.publish(event);
                    }
                    *before = now;
                }
                // The first read, or the first since a failure or a replaced
                // file: what happened before it is unknown.
                _ => {
                    *seen = Some(now);
                    self.events.publish(ChangeEvent::resync());
                }
            }
        });
        match read {
            Ok(()) => {
                if self.failing {
                    tracing::info!(path = %self.paths.file.display(), "the session store file is readable again");
                }
                self.failing = false;
                self.last = stamp;
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(
                        error = %e,
                        "cannot read the session store file for other processes' changes; \
                         retrying every poll"
                    );
                }
                self.failing = true;
                self.last = None;
                // Writes stop updating the snapshot; the next good read resyncs.
                *lock(&self.shared.seen) = None;
            }
        }
    }
}

/// What the watcher compares between polls.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device, inode and change time: every atomic write is a new inode.
    #[cfg(unix)]
    unix: (u64, u64, i64, i64),
}

/// The file's stamp; `None` when there is no file.
fn stamp(path: &Path) -> io::Result<Option<Stamp>> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    let unix = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec())
    };
    Ok(Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        unix,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use arcgis_auth_core::Portal;
    use tokio::sync::broadcast;
    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;
    use crate::{FileStore, SaveMode, SessionKind, SessionRecord, SessionStore};

    const POLL: Duration = Duration::from_millis(10);
    const WAIT: Duration = Duration::from_secs(10);

    fn record() -> SessionRecord {
        SessionRecord::new(Portal::arcgis_online(), SessionKind::User)
    }

    /// Two handles opened separately on one file: two processes.
    fn two_handles(dir: &tempfile::TempDir) -> (FileStore, FileStore) {
        let path = dir.path().join("sessions.json");
        let mine = FileStore::builder(&path)
            .poll_interval(POLL)
            .build()
            .unwrap();
        let other = FileStore::new(&path).unwrap();
        (mine, other)
    }

    fn polls(store: &FileStore) -> u64 {
        store.inner.watch.shared().polls.load(Ordering::Acquire)
    }

    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < WAIT, "not within {WAIT:?}: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    async fn next(events: &mut broadcast::Receiver<ChangeEvent>) -> ChangeEvent {
        tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("an event in time")
            .expect("the channel is open")
    }

    /// Waits until the watcher has looked at the file `n` more times.
    async fn polled(store: &FileStore, n: u64) {
        let target = polls(store) + n;
        let start = Instant::now();
        while polls(store) < target {
            assert!(start.elapsed() < WAIT, "the watcher stopped polling");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Replaces the file at once (a write in place could be read half done).
    fn replace(path: &Path, bytes: &[u8]) {
        let temp = path.with_extension("replacing");
        fs::write(&temp, bytes).unwrap();
        fs::rename(&temp, path).unwrap();
    }

    fn summary(e: &ChangeEvent) -> (&str, ChangeKind, Option<&str>) {
        (
            e.key.as_str(),
            e.kind.clone(),
            e.version.as_ref().map(Version::as_str),
        )
    }

    #[tokio::test]
    async fn other_writers_changes_arrive_and_own_writes_arrive_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, other) = two_handles(&dir);
        other
            .save("before", &record(), SaveMode::Create)
            .await
            .unwrap();
        let mut events = mine.subscribe();
        assert_eq!(next(&mut events).await.kind, ChangeKind::Resync);

        let v1 = other.save("k", &record(), SaveMode::Create).await.unwrap();
        let e = next(&mut events).await;
        assert_eq!(summary(&e), ("k", ChangeKind::Created, Some(v1.as_str())));
        let v2 = other
            .save("k", &record(), SaveMode::Update(v1))
            .await
            .unwrap();
        let e = next(&mut events).await;
        assert_eq!(summary(&e), ("k", ChangeKind::Updated, Some(v2.as_str())));
        assert!(other.delete("k", Some(&v2)).await.unwrap());
        let e = next(&mut events).await;
        assert_eq!(summary(&e), ("k", ChangeKind::Deleted, None));

        // Own writes: one event each, from the write itself.
        let own = mine.save("own", &record(), SaveMode::Create).await.unwrap();
        let e = next(&mut events).await;
        assert_eq!(
            summary(&e),
            ("own", ChangeKind::Created, Some(own.as_str()))
        );
        assert!(mine.delete("before", None).await.unwrap());
        let e = next(&mut events).await;
        assert_eq!(summary(&e), ("before", ChangeKind::Deleted, None));
        polled(&mine, 5).await;
        assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);

        // Another writer's change after ours still arrives, and only it.
        let v3 = other.save("k", &record(), SaveMode::Create).await.unwrap();
        let e = next(&mut events).await;
        assert_eq!(summary(&e), ("k", ChangeKind::Created, Some(v3.as_str())));
        polled(&mine, 5).await;
        assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);
    }

    #[tokio::test]
    async fn nothing_polls_before_the_first_subscribe() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, other) = two_handles(&dir);
        let clone = mine.clone();
        other.save("k", &record(), SaveMode::Create).await.unwrap();
        mine.save("own", &record(), SaveMode::Create).await.unwrap();
        assert!(!mine.inner.watch.is_running());
        assert_eq!(polls(&mine), 0);

        let mut events = clone.subscribe();
        assert!(mine.inner.watch.is_running());
        assert_eq!(next(&mut events).await.kind, ChangeKind::Resync);
        polled(&mine, 2).await;
        // A second subscriber shares the one watcher.
        let mut second = mine.subscribe();
        other.delete("k", None).await.unwrap();
        for events in [&mut events, &mut second] {
            let e = next(events).await;
            assert_eq!(summary(&e), ("k", ChangeKind::Deleted, None));
        }
    }

    #[test]
    fn dropping_the_last_clone_stops_the_watcher() {
        // Subscribed outside any runtime.
        let dir = tempfile::tempdir().unwrap();
        let (mine, _other) = two_handles(&dir);
        let clone = mine.clone();
        let mut events = mine.subscribe();
        let shared = Arc::downgrade(mine.inner.watch.shared());
        wait_until("the first look", || polls(&mine) > 0);
        drop(mine);
        let before = polls(&clone);
        wait_until("polls while a clone lives", || polls(&clone) > before + 2);
        drop(clone);
        // The thread held the last reference to what it shares with the store.
        wait_until("the watcher thread ends", || shared.upgrade().is_none());
        assert_eq!(events.try_recv().unwrap().kind, ChangeKind::Resync);
        assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Closed);
    }

    #[tokio::test]
    async fn an_unreadable_file_is_survived_and_followed_by_a_resync() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, other) = two_handles(&dir);
        let older = other.save("a", &record(), SaveMode::Create).await.unwrap();
        let older_bytes = fs::read(mine.path()).unwrap();
        let mut events = mine.subscribe();
        assert_eq!(next(&mut events).await.kind, ChangeKind::Resync);
        let v = other.save("b", &record(), SaveMode::Create).await.unwrap();
        assert_eq!(
            summary(&next(&mut events).await),
            ("b", ChangeKind::Created, Some(v.as_str()))
        );
        let good = fs::read(mine.path()).unwrap();

        // Damaged: the watcher keeps going.
        replace(mine.path(), b"{\"format\": \"arcgis-auth-sessions\", tru");
        let shared = Arc::clone(mine.inner.watch.shared());
        wait_until("the watcher finds the file unreadable", || {
            lock(&shared.seen).is_none()
        });
        polled(&mine, 3).await;
        assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);

        // Readable again: what happened meanwhile is unknown.
        replace(mine.path(), &good);
        assert_eq!(next(&mut events).await.kind, ChangeKind::Resync);
        // And other writers' changes arrive again.
        assert!(other.delete("b", None).await.unwrap());
        assert_eq!(
            summary(&next(&mut events).await),
            ("b", ChangeKind::Deleted, None)
        );

        // Replaced by an older copy (its counter went back): a resync, not
        // per-key events that could be wrong.
        replace(mine.path(), &older_bytes);
        assert_eq!(next(&mut events).await.kind, ChangeKind::Resync);
        assert_eq!(mine.load("a").await.unwrap().unwrap().version, older);
        polled(&mine, 3).await;
        assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);
    }

    fn snapshot(next_version: u64, versions: &[(&str, u64)]) -> Snapshot {
        Snapshot {
            next_version,
            versions: versions.iter().map(|&(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    #[test]
    fn changes_between_snapshots_are_created_updated_and_deleted() {
        let before = snapshot(5, &[("kept", 1), ("changed", 2), ("gone", 3)]);
        let now = snapshot(8, &[("kept", 1), ("changed", 6), ("new", 7)]);
        let events: Vec<_> = before
            .changes_to(&now)
            .into_iter()
            .map(|e| (e.key, e.kind, e.version.map(|v| v.as_str().to_owned())))
            .collect();
        assert_eq!(
            events,
            [
                ("changed".into(), ChangeKind::Updated, Some("6".into())),
                ("new".into(), ChangeKind::Created, Some("7".into())),
                ("gone".into(), ChangeKind::Deleted, None),
            ]
        );
        assert!(now.changes_to(&now).is_empty());
    }

    #[test]
    fn short_intervals_are_raised() {
        assert_eq!(Watch::new(Duration::ZERO).interval(), MIN_POLL_INTERVAL);
        assert_eq!(
            Watch::new(Duration::from_secs(3)).interval(),
            Duration::from_secs(3)
        );
    }
}
