//! [`FileStore`]: the store, and its `SessionStore` and `RefreshLock`
//! implementations on the file's documents.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::Clock;
use async_trait::async_trait;
use tokio::sync::broadcast;

use super::document::{Document, SESSIONS_FORMAT, Sessions};
use super::paths::Paths;
use super::watch::Watch;
use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::feed::ChangeFeed;
use crate::lease::validate_lease;
use crate::record::SessionRecord;
use crate::store::{
    ChangeEvent, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned, validate_key,
};

/// A session store in one JSON file, the default for desktop and command-line use.
///
/// Several processes may use the same file at once: every operation holds an OS
/// file lock on a sidecar `.lock` file (shared while reading, exclusive while
/// writing), saves are compare-and-swap, and writes are atomic (temporary file,
/// fsync, rename, fsync of the directory), so a crash leaves the old or the new
/// file, never a torn one. On Unix the files are created with mode `0600` and a
/// missing directory with mode `0700`.
///
/// A file that is not a store written by this crate (another program's JSON, a
/// damaged file, a newer format) is reported as
/// [`StoreErrorKind::Corrupt`] and never overwritten.
///
/// The refresh lock keeps leases with a wall-clock expiry in a sidecar
/// `.leases` file, so processes on one machine (sharing a clock) coordinate
/// refreshes.
///
/// Keep the file on a local disk: network file systems may not honour the
/// OS file lock. All file work runs on tokio's blocking thread pool (the
/// watcher's below on a thread of its own).
///
/// ```
/// use arcgis_auth_core::Portal;
/// use arcgis_auth_storage::{FileStore, SaveMode, SessionKind, SessionRecord, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::new(dir.path().join("sessions.json"))?;
/// let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
/// record.username = Some("jdoe".into());
/// let version = store.save("jdoe@online", &record, SaveMode::Create).await?;
///
/// // Another handle (or another process) on the same file sees it.
/// let other = FileStore::new(dir.path().join("sessions.json"))?;
/// let loaded = other.load("jdoe@online").await?.unwrap();
/// assert_eq!(loaded.version, version);
/// assert_eq!(loaded.record.username.as_deref(), Some("jdoe"));
/// # Ok::<_, arcgis_auth_storage::StoreError>(())
/// # }).unwrap();
/// ```
///
/// # Other processes' changes
///
/// [`subscribe`](SessionStore::subscribe) delivers the writes made through
/// this store and its clones at once, and other handles' and other
/// processes' writes to the same file by polling it. The watcher starts with
/// the first `subscribe()` on the store or any of its clones (a store nobody
/// subscribes to never polls), runs on a thread of its own (so it needs no
/// Tokio runtime, and works whichever runtime, if any, `subscribe()` is
/// called on), and stops when the last clone of the store is dropped.
///
/// Every poll interval (1 s unless set with
/// [`FileStoreBuilder::poll_interval`](super::FileStoreBuilder::poll_interval)) it reads the file's
/// metadata; only when that changed does it read the file, under the shared
/// lock, and compare each session's version with what it saw last: other
/// writers' changes arrive as [`Created`](crate::ChangeKind::Created),
/// [`Updated`](crate::ChangeKind::Updated) (with the new version) and
/// [`Deleted`](crate::ChangeKind::Deleted) events. Several changes to one
/// session between two polls arrive as one event with the latest version.
/// Writes through this store are never reported twice.
///
/// The watcher sends a [`Resync`](crate::ChangeKind::Resync) when it may
/// have missed changes: after its first read of the file (what happened between
/// `subscribe()` and that read is unknown), after the file could not be read
/// or parsed for a while (sent once it can be read again), and when the file
/// was replaced by an older or unrelated store (its version counter went
/// back). Re-read the sessions you care about then.
///
/// ```
/// use std::time::Duration;
///
/// use arcgis_auth_core::Portal;
/// use arcgis_auth_storage::{
///     ChangeKind, FileStore, SaveMode, SessionKind, SessionRecord, SessionStore,
/// };
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// # let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("sessions.json");
/// let mine = FileStore::builder(&path)
///     .poll_interval(Duration::from_millis(50))
///     .build()?;
/// let mut events = mine.subscribe();
/// // The watcher's first read of the file.
/// assert_eq!(events.recv().await.unwrap().kind, ChangeKind::Resync);
///
/// // Another process signs in.
/// let other = FileStore::new(&path)?;
/// let record = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
/// let version = other.save("jdoe@online", &record, SaveMode::Create).await?;
///
/// let event = events.recv().await.unwrap();
/// assert_eq!((event.key.as_str(), event.kind), ("jdoe@online", ChangeKind::Created));
/// assert_eq!(event.version, Some(version));
/// # Ok::<_, arcgis_auth_storage::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct FileStore {
    pub(super) inner: Arc<Inner>,
}

/// What the clones of a store share.
pub(super) struct Inner {
    pub(super) paths: Paths,
    pub(super) events: ChangeFeed,
    pub(super) clock: Arc<dyn Clock>,
    /// Other writers' changes, followed from the first `subscribe()`.
    pub(super) watch: Watch,
}

impl FileStore {
    /// The watcher's poll interval (see
    /// [`FileStoreBuilder::poll_interval`](super::FileStoreBuilder::poll_interval)).
    pub fn poll_interval(&self) -> Duration {
        self.inner.watch.interval()
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.paths.file
    }

    /// Runs `op` on the blocking pool.
    async fn blocking<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&inner))
            .await
            .map_err(|e| {
                StoreError::unavailable("the session store's file task did not finish")
                    .with_source(e)
            })?
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.inner.paths.file)
            .field("clock", &self.inner.clock)
            .field("poll_interval", &self.inner.watch.interval())
            .finish()
    }
}

#[async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        validate_key(key)?;
        let key = key.to_owned();
        self.blocking(move |inner| {
            let doc: Document<Sessions> = inner.paths.read_shared()?;
            match doc.body.get(&key) {
                None => Ok(None),
                Some((value, version)) => Ok(Some(Versioned {
                    record: SessionRecord::from_value(value.clone()).map_err(|e| {
                        StoreError::corrupt(format!(
                            "session `{key}` in `{}`: {}",
                            inner.paths.file.display(),
                            e.message()
                        ))
                    })?,
                    version,
                })),
            }
        })
        .await
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        validate_key(key)?;
        let value = serde_json::to_value(record).map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidInput,
                "session record cannot be serialised",
            )
            .with_source(e)
        })?;
        let key = key.to_owned();
        self.blocking(move |inner| {
            inner
                .update(|doc| {
                    let event = doc.body.save(&key, value, &mode)?;
                    Ok((event.version.clone(), Some(event)))
                })?
                .ok_or_else(|| StoreError::corrupt("save produced no version"))
        })
        .await
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        let version = version.cloned();
        self.blocking(move |inner| {
            inner.update(|doc| {
                let event = doc.body.delete(&key, version.as_ref())?;
                Ok((event.is_some(), event))
            })
        })
        .await
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let prefix = prefix.to_owned();
        self.blocking(move |inner| {
            let doc: Document<Sessions> = inner.paths.read_shared()?;
            Ok(doc.body.list(&prefix))
        })
        .await
    }

    /// Change events; the first call starts the watcher of other writers'
    /// changes (see [`FileStore`]), which announces its first read of the
    /// file with a [`ChangeKind::Resync`](crate::ChangeKind::Resync). Never
    /// blocks; needs no runtime.
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        // Receiver first, so it gets the watcher's first `Resync`.
        let receiver = self.inner.events.subscribe();
        self.inner
            .watch
            .start(&self.inner.paths, &self.inner.events);
        receiver
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        Some(self)
    }
}

#[async_trait]
impl RefreshLock for FileStore {
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>> {
        validate_key(key)?;
        validate_lease(lease)?;
        let key = key.to_owned();
        self.blocking(move |inner| {
            let now = inner.clock.now();
            inner.paths.update_leases(|leases| {
                let pruned = leases.prune(now);
                let acquired = leases.try_acquire(&key, lease, now);
                let changed = pruned || acquired.is_some();
                (acquired, changed)
            })
        })
        .await
    }

    async fn release(&self, lease: &Lease) -> StoreResult<bool> {
        let lease = lease.clone();
        self.blocking(move |inner| {
            let now = inner.clock.now();
            inner.paths.update_leases(|leases| {
                let pruned = leases.prune(now);
                let released = leases.release(&lease, now);
                (released, pruned || released)
            })
        })
        .await
    }

    async fn extend(&self, lease: &Lease) -> StoreResult<bool> {
        let lease = lease.clone();
        self.blocking(move |inner| {
            let now = inner.clock.now();
            inner.paths.update_leases(|leases| {
                let pruned = leases.prune(now);
                let extended = leases.extend(&lease, now);
                (extended, pruned || extended)
            })
        })
        .await
    }
}

impl Inner {
    /// Reads, changes and (when `change` says so) atomically rewrites the
    /// session file under an exclusive lock, publishing the change event
    /// (and telling the watcher it was ours) before the lock is released, so
    /// events arrive in write order and the watcher never reports it again.
    pub(super) fn update<T>(
        &self,
        change: impl FnOnce(&mut Document<Sessions>) -> StoreResult<(T, Option<ChangeEvent>)>,
    ) -> StoreResult<T> {
        let paths = &self.paths;
        let lock = paths.lock_exclusive()?;
        let mut doc: Document<Sessions> = paths.read_document(&paths.file, SESSIONS_FORMAT)?;
        doc.body.repair_counter()?;
        let (out, event) = change(&mut doc)?;
        if let Some(event) = event {
            paths.write_document(&paths.file, &doc)?;
            let version = doc.body.sessions.get(&event.key).map(|e| e.version);
            self.watch.own_write(&event.key, version);
            self.events.publish(event);
        }
        drop(lock);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use arcgis_auth_core::Portal;

    use super::*;
    use crate::{SessionKind, StoreErrorKind};

    fn record() -> SessionRecord {
        let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
        r.access_token = Some("very-secret-access".into());
        r
    }

    fn store(dir: &tempfile::TempDir) -> FileStore {
        FileStore::new(dir.path().join("nested").join("sessions.json")).unwrap()
    }

    #[tokio::test]
    async fn missing_file_is_an_empty_store_and_reads_create_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        assert!(s.load("k").await.unwrap().is_none());
        assert!(s.list("").await.unwrap().is_empty());
        assert!(!dir.path().join("nested").exists());
    }

    #[tokio::test]
    async fn foreign_and_corrupt_files_are_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        fs::create_dir_all(s.path().parent().unwrap()).unwrap();
        let cases: &[&[u8]] = &[
            b"{\"some\":\"other program\"}",
            b"[1,2,3]",
            b"{\"format\":\"arcgis-auth-sessions\",\"version\":1,\"data\":{\"sessions\":{\"k\":\"very-secret-access\"",
            b"{\"format\":\"arcgis-auth-sessions\",\"version\":1,\"data\":{\"next_version\":1e400,\"sessions\":{}}}",
            b"{\"format\":\"arcgis-auth-sessions\",\"version\":1,\"data\":{\"next_version\":-5,\"sessions\":{}}}",
            b"{\"format\":\"arcgis-auth-sessions\",\"version\":1}",
            b"{\"format\":\"arcgis-auth-sessions\",\"version\":99,\"next_version\":1,\"sessions\":{}}",
            b"{\"format\":\"arcgis-auth-sessions\",\"version\":-1,\"next_version\":1,\"sessions\":{}}",
            b"{\"format\":\"arcgis-auth-sessions\",\"version\":1,\"data\":{\"next_version\":1,\"sessions\":{\"k\":{\"version\":\"very-secret-access\",\"record\":{}}}}}",
            b"\xff\xfe garbage",
            b"not json very-secret-access",
        ];
        for bytes in cases {
            fs::write(s.path(), bytes).unwrap();
            for err in [
                s.load("k").await.unwrap_err(),
                s.list("").await.unwrap_err(),
                s.save("k", &record(), SaveMode::Overwrite)
                    .await
                    .unwrap_err(),
                s.delete("k", None).await.unwrap_err(),
            ] {
                assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
                assert!(!format!("{err} {err:?}").contains("very-secret-access"));
            }
            assert_eq!(
                &fs::read(s.path()).unwrap(),
                bytes,
                "file must be left untouched"
            );
        }
    }

    #[tokio::test]
    async fn a_bad_record_does_not_block_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.save("good", &record(), SaveMode::Create).await.unwrap();
        let mut doc: serde_json::Value =
            serde_json::from_slice(&fs::read(s.path()).unwrap()).unwrap();
        doc["data"]["sessions"]["bad"] = serde_json::json!({
            "version": 1000,
            "record": {"format": 1, "kind": "user", "portal": 5, "access_token": "very-secret-access"}
        });
        doc["from_the_future"] = serde_json::json!({"kept": true});
        fs::write(s.path(), serde_json::to_vec(&doc).unwrap()).unwrap();

        let err = s.load("bad").await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt);
        assert!(!format!("{err} {err:?}").contains("very-secret-access"));
        let good = s.load("good").await.unwrap().unwrap();
        s.save("good", &record(), SaveMode::Update(good.version))
            .await
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&fs::read(s.path()).unwrap()).unwrap();
        assert_eq!(doc["data"]["sessions"]["bad"]["record"]["portal"], 5);
        assert_eq!(doc["from_the_future"]["kept"], true);
        let text = fs::read_to_string(s.path()).unwrap();
        assert_eq!(text.matches("\"next_version\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"from_the_future\"").count(), 1, "{text}");
        // The hand-edited version 1000 pushed the counter past it.
        assert!(
            s.load("good")
                .await
                .unwrap()
                .unwrap()
                .version
                .as_str()
                .parse::<u64>()
                .unwrap()
                > 1000
        );
        assert_eq!(s.list("").await.unwrap(), ["bad", "good"]);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn files_and_directory_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.save("k", &record(), SaveMode::Create).await.unwrap();
        s.try_acquire("k", Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(s.path()), 0o600);
        assert_eq!(mode(&s.inner.paths.lock), 0o600);
        assert_eq!(mode(&s.inner.paths.leases), 0o600);
        assert_eq!(mode(s.path().parent().unwrap()), 0o700);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlinked_store_file_stays_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real_dir = dir.path().join("dotfiles");
        fs::create_dir(&real_dir).unwrap();
        let real = real_dir.join("sessions.json");
        let s = store(&dir);
        fs::create_dir_all(s.path().parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, s.path()).unwrap();
        s.save("k", &record(), SaveMode::Create).await.unwrap();
        s.save("k", &record(), SaveMode::Overwrite).await.unwrap();
        assert!(
            fs::symlink_metadata(s.path())
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(
            fs::read_to_string(&real)
                .unwrap()
                .contains("very-secret-access")
        );
        assert!(s.load("k").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn stale_temp_files_are_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir);
        s.save("k", &record(), SaveMode::Create).await.unwrap();
        let parent = s.path().parent().unwrap();
        let stale = parent.join(".sessions.json.tmp-deadbeef");
        fs::write(&stale, b"half a write").unwrap();
        let unrelated = parent.join(".other.json.tmp-deadbeef");
        fs::write(&unrelated, b"not ours").unwrap();
        s.save("k", &record(), SaveMode::Overwrite).await.unwrap();
        assert!(!stale.exists());
        assert!(unrelated.exists());
    }

    #[tokio::test]
    async fn leases_survive_handles_and_expire_by_clock() {
        use arcgis_auth_core::{ManualClock, Timestamp};
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Timestamp::now());
        let path = dir.path().join("nested").join("sessions.json");
        let on_clock = || {
            FileStore::builder(&path)
                .clock(Arc::new(clock.clone()))
                .build()
                .unwrap()
        };
        let (a, b) = (on_clock(), on_clock());
        let lease = Duration::from_secs(60);
        let held = a.try_acquire("k", lease).await.unwrap().unwrap();
        assert!(b.try_acquire("k", lease).await.unwrap().is_none());
        clock.advance(lease);
        let taken = b.try_acquire("k", lease).await.unwrap().unwrap();
        assert!(!a.release(&held).await.unwrap());
        assert!(a.try_acquire("k", lease).await.unwrap().is_none());
        assert!(b.release(&taken).await.unwrap());
        // A damaged lease file is refused, not overwritten.
        fs::write(&a.inner.paths.leases, b"{\"leases\": 3}").unwrap();
        let err = a.try_acquire("k", lease).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt);
        assert_eq!(fs::read(&a.inner.paths.leases).unwrap(), b"{\"leases\": 3}");
    }

    #[test]
    fn paths_without_a_file_name_are_refused() {
        assert_eq!(
            FileStore::new("/").unwrap_err().kind(),
            StoreErrorKind::InvalidInput
        );
        let s = FileStore::new("sessions.json").unwrap();
        assert_eq!(s.inner.paths.dir, PathBuf::from("."));
    }
}
