//! [`FileStore`]: sessions in one JSON file, shared safely by several processes.
//!
//! Next to the store file `sessions.json` live:
//!
//! - `sessions.json.lock`, an empty file every operation locks with the OS file
//!   lock (shared for reads, exclusive for writes), so processes take turns;
//! - `sessions.json.leases`, the held refresh locks with their wall-clock expiry;
//! - briefly, `.sessions.json.tmp-<random>`, the next version being written.
//!
//! Every write goes to a fresh temporary file in the same directory, which is
//! flushed to disk and then renamed over the store file, and the directory is
//! flushed too: a crash at any point leaves either the old or the new file,
//! never a torn one. Temporary files left by a crashed writer are removed by
//! the next write.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{Clock, SystemClock};
use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::id::random_id;
use crate::lease::{LeaseTable, validate_lease};
use crate::memory::EVENT_CAPACITY;
use crate::record::SessionRecord;
use crate::store::{
    ChangeEvent, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned, validate_key,
};
use crate::table::Table;

mod watch;

/// The `format` marker of a session store file.
const SESSIONS_FORMAT: &str = "arcgis-auth-sessions";
/// The `format` marker of a lease file.
const LEASES_FORMAT: &str = "arcgis-auth-leases";
/// The document layout version this release reads and writes.
const DOCUMENT_VERSION: u32 = 1;
/// Larger files are not session stores; they are refused rather than read into memory.
const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

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
/// [`with_poll_interval`](FileStore::with_poll_interval)) it reads the file's
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
/// let mine = FileStore::new(&path)?.with_poll_interval(Duration::from_millis(50));
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
    inner: Arc<Inner>,
}

struct Inner {
    paths: Paths,
    events: broadcast::Sender<ChangeEvent>,
    clock: Arc<dyn Clock>,
    /// Other writers' changes, followed from the first `subscribe()`.
    watch: watch::Watch,
}

/// The store file and its companions.
#[derive(Debug, Clone)]
struct Paths {
    file: PathBuf,
    lock: PathBuf,
    leases: PathBuf,
    dir: PathBuf,
    /// The file name, for temporary file names.
    name: String,
}

impl FileStore {
    /// A store in the file at `path` (created on the first save, with its
    /// directory). Nothing is read or written until the first operation.
    ///
    /// Fails with [`StoreErrorKind::InvalidInput`] when `path` does not name a file.
    pub fn new(path: impl Into<PathBuf>) -> StoreResult<Self> {
        let file = path.into();
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::InvalidInput,
                    format!(
                        "`{}` does not name a file: give the session store a file name such as `sessions.json`",
                        file.display()
                    ),
                )
            })?
            .to_owned();
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let paths = Paths {
            lock: dir.join(format!("{name}.lock")),
            leases: dir.join(format!("{name}.leases")),
            dir,
            name,
            file,
        };
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(FileStore {
            inner: Arc::new(Inner {
                paths,
                events,
                clock: Arc::new(SystemClock),
                watch: watch::Watch::new(watch::DEFAULT_POLL_INTERVAL),
            }),
        })
    }

    /// Uses `clock` for lease expiry instead of the system clock. Every process
    /// sharing the file must agree on the time, so this is for tests.
    ///
    /// Call it before [`subscribe`](SessionStore::subscribe): the store it
    /// returns shares this one's event channel but has a watcher of its own,
    /// and two watchers on one channel report each other's writes.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let interval = self.inner.watch.interval();
        self.rebuilt(clock, interval)
    }

    /// How often the watcher of other processes' changes looks at the file
    /// (see [Other processes' changes](FileStore#other-processes-changes));
    /// 1 s by default, at least 10 ms (shorter intervals are raised to it).
    /// Each look reads the file's metadata; the file itself is read only when
    /// that changed.
    ///
    /// Call it before [`subscribe`](SessionStore::subscribe): the store it
    /// returns shares this one's event channel but has a watcher of its own,
    /// and two watchers on one channel report each other's writes.
    pub fn with_poll_interval(self, interval: Duration) -> Self {
        let clock = Arc::clone(&self.inner.clock);
        self.rebuilt(clock, interval)
    }

    /// The watcher's poll interval (see
    /// [`with_poll_interval`](Self::with_poll_interval)).
    pub fn poll_interval(&self) -> Duration {
        self.inner.watch.interval()
    }

    /// A store on the same file and event channel with other settings.
    fn rebuilt(self, clock: Arc<dyn Clock>, interval: Duration) -> Self {
        let inner = Arc::new(Inner {
            paths: self.inner.paths.clone(),
            events: self.inner.events.clone(),
            clock,
            watch: watch::Watch::new(interval),
        });
        FileStore { inner }
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
}

/// What every file this store writes looks like: a marker, a layout version,
/// the body, and any fields a newer release added (kept on rewrite).
#[derive(Serialize, Deserialize)]
struct Document<B> {
    format: String,
    version: u32,
    #[serde(rename = "data")]
    body: B,
    #[serde(flatten)]
    extra: BTreeMap<String, serde_json::Value>,
}

/// Just the marker and version, read first so a foreign or newer file is named
/// as such even when its body would not parse.
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    format: Option<serde_json::Value>,
    #[serde(default)]
    version: Option<serde_json::Value>,
}

/// The body of the session file: records as JSON values, so one record this
/// release cannot read does not stop the others from loading, and survives
/// writes to them untouched.
type Sessions = Table<serde_json::Value>;

impl Inner {
    /// Reads, changes and (when `change` says so) atomically rewrites the
    /// session file under an exclusive lock, publishing the change event
    /// (and telling the watcher it was ours) before the lock is released, so
    /// events arrive in write order and the watcher never reports it again.
    fn update<T>(
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
            let _ = self.events.send(event);
        }
        drop(lock);
        Ok(out)
    }
}

impl Paths {
    /// Reads the document at `path` under a shared lock.
    ///
    /// Reads would be consistent without the lock (writes are atomic renames),
    /// so when the lock file cannot be created (a read-only directory) the read
    /// goes ahead without it; a missing directory is an empty store.
    fn read_shared(&self) -> StoreResult<Document<Sessions>> {
        self.read_shared_with(|doc| doc)
    }

    /// Reads the document under a shared lock (as [`Paths::read_shared`])
    /// and runs `then` on it before the lock is released.
    fn read_shared_with<T>(&self, then: impl FnOnce(Document<Sessions>) -> T) -> StoreResult<T> {
        let _guard = match open_private(&self.lock, false) {
            Ok(lock) => {
                lock.lock_shared()
                    .map_err(|e| self.io_error("lock", &self.lock, e))?;
                Some(lock)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
            {
                None
            }
            Err(e) => return Err(self.io_error("open", &self.lock, e)),
        };
        let doc = self.read_document(&self.file, SESSIONS_FORMAT)?;
        Ok(then(doc))
        // The lock is released when `_guard` is dropped (the file is closed).
    }

    /// As [`Paths::update`] for the lease file, which sends no events.
    fn update_leases<T>(
        &self,
        change: impl FnOnce(&mut LeaseTable) -> (T, bool),
    ) -> StoreResult<T> {
        let lock = self.lock_exclusive()?;
        let mut doc: Document<LeaseTable> = self.read_document(&self.leases, LEASES_FORMAT)?;
        let (out, changed) = change(&mut doc.body);
        if changed {
            self.write_document(&self.leases, &doc)?;
        }
        drop(lock);
        Ok(out)
    }

    /// Creates the directory if needed and takes the exclusive lock.
    fn lock_exclusive(&self) -> StoreResult<File> {
        create_private_dir(&self.dir)
            .map_err(|e| self.io_error("create the directory", &self.dir, e))?;
        let lock =
            open_private(&self.lock, true).map_err(|e| self.io_error("open", &self.lock, e))?;
        lock.lock()
            .map_err(|e| self.io_error("lock", &self.lock, e))?;
        Ok(lock)
    }

    /// Reads and checks a document; a missing or empty file is an empty document.
    fn read_document<B>(&self, path: &Path, format: &str) -> StoreResult<Document<B>>
    where
        B: DeserializeOwned + Default,
    {
        let bytes = match read_limited(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(StoreError::corrupt(format!(
                    "`{}` is larger than any session store: it is not one and was left untouched; \
                     move it away or choose another path",
                    path.display()
                )));
            }
            Err(e) => return Err(self.io_error("read", path, e)),
        };
        parse_document(&bytes, path, format)
    }

    /// Writes `doc` to `path` atomically.
    fn write_document<B: Serialize>(&self, path: &Path, doc: &Document<B>) -> StoreResult<()> {
        let bytes = serde_json::to_vec_pretty(doc).map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidInput,
                "session store document cannot be serialised",
            )
            .with_source(e)
        })?;
        // A symlinked store file (a dotfiles manager's) stays a symlink: the
        // rename replaces the file it points to, in that file's directory.
        let resolved =
            resolve_links(path).map_err(|e| self.io_error("resolve the link", path, e))?;
        let dir = match resolved.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => self.dir.as_path(),
        };
        let target = resolved
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(self.name.as_str());
        write_atomic(dir, &resolved, target, &bytes).map_err(|e| self.io_error("write", path, e))
    }

    fn io_error(&self, what: &str, path: &Path, e: io::Error) -> StoreError {
        let hint = match e.kind() {
            io::ErrorKind::PermissionDenied => ": check the file's owner and permissions",
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ": free some disk space",
            _ => "",
        };
        StoreError::unavailable(format!(
            "cannot {what} `{}` ({}){hint}",
            path.display(),
            e.kind()
        ))
        .with_source(e)
    }
}

/// Parses and checks a document read from `path`; blank input is an empty
/// document. Never panics and never quotes the input in an error.
fn parse_document<B>(bytes: &[u8], path: &Path, format: &str) -> StoreResult<Document<B>>
where
    B: DeserializeOwned + Default,
{
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Document {
            format: format.to_owned(),
            version: DOCUMENT_VERSION,
            body: B::default(),
            extra: BTreeMap::new(),
        });
    }
    let foreign = || {
        StoreError::corrupt(format!(
            "`{}` is not an arcgis-auth {} file: it was left untouched; move it away or \
             choose another path",
            path.display(),
            if format == LEASES_FORMAT {
                "lease"
            } else {
                "session store"
            }
        ))
    };
    // serde_json's messages can quote values (tokens): report positions only.
    let header: Header = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            return foreign();
        }
        StoreError::corrupt(format!(
            "`{}` is not valid JSON (line {}, column {}): it was left untouched; move it away \
             or choose another path",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if header.format.as_ref().and_then(|f| f.as_str()) != Some(format) {
        return Err(foreign());
    }
    match header.version.as_ref().and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(DOCUMENT_VERSION) => {}
        Some(v) if v > u64::from(DOCUMENT_VERSION) => {
            return Err(StoreError::corrupt(format!(
                "`{}` was written by a newer arcgis-auth (layout {v}, this release reads \
                 {DOCUMENT_VERSION}): upgrade; the file was left untouched",
                path.display()
            )));
        }
        _ => return Err(foreign()),
    }
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::corrupt(format!(
            "`{}` is damaged (line {}, column {}): it was left untouched; move it away or \
             choose another path",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// Follows `path` through symbolic links (also dangling ones, whose target
/// does not exist yet) to the file a write should replace.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..32 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Reads `path`, refusing files over [`MAX_FILE_SIZE`] with `InvalidData`.
fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "file too large"));
    }
    Ok(bytes)
}

/// Opens (and with `create`, creates) a file readable and writable by its owner only.
fn open_private(path: &Path, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(create);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        // Without `create`, a missing lock file is made now if the directory exists.
        Err(e) if !create && e.kind() == io::ErrorKind::NotFound => {
            if path.parent().is_some_and(Path::is_dir) {
                open_private(path, true)
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

/// Creates `dir` (and its parents) if missing, with mode `0700` on Unix.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The temporary-file name prefix for a target file name.
fn temp_prefix(target: &str) -> String {
    format!(".{target}.tmp-")
}

/// Replaces `path` (named `target` in `dir`) with `bytes`: write a new private
/// file, flush it, rename it over `path`, flush the directory. The caller holds
/// the exclusive lock, so any older temporary file is a crashed writer's and is
/// removed first.
fn write_atomic(dir: &Path, path: &Path, target: &str, bytes: &[u8]) -> io::Result<()> {
    let prefix = temp_prefix(target);
    remove_stale_temps(dir, &prefix);
    let temp = dir.join(format!("{prefix}{}", random_id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir);
    Ok(())
}

/// Removes temporary files a killed writer left behind.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(prefix))
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Flushes the directory entry of a rename to disk. The rename itself has
/// happened either way; some file systems cannot flush directories, which is
/// logged rather than reported as a failed save (the caller would retry a save
/// that succeeded).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not flush the session store's directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::Portal;

    use crate::SessionKind;

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
        let a = store(&dir).with_clock(Arc::new(clock.clone()));
        let b = store(&dir).with_clock(Arc::new(clock.clone()));
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
    fn every_truncation_and_byte_flip_is_ok_or_corrupt() {
        let mut table = Sessions::default();
        let mut r = record();
        r.extra.insert("n".into(), serde_json::json!(u64::MAX));
        table
            .save("k", serde_json::to_value(&r).unwrap(), &SaveMode::Create)
            .unwrap();
        let doc = Document {
            format: SESSIONS_FORMAT.to_owned(),
            version: DOCUMENT_VERSION,
            body: table,
            extra: BTreeMap::new(),
        };
        let bytes = serde_json::to_vec_pretty(&doc).unwrap();
        let path = Path::new("sessions.json");
        let check = |input: &[u8]| match parse_document::<Sessions>(input, path, SESSIONS_FORMAT) {
            Ok(doc) => {
                // Whatever parses must also hand out records or Corrupt, never panic.
                if let Some((value, _)) = doc.body.get("k")
                    && let Err(e) = SessionRecord::from_value(value.clone())
                {
                    assert_eq!(e.kind(), StoreErrorKind::Corrupt);
                }
            }
            Err(e) => {
                assert_eq!(e.kind(), StoreErrorKind::Corrupt);
                assert!(!format!("{e} {e:?}").contains("very-secret-access"));
            }
        };
        for len in 0..bytes.len() {
            check(&bytes[..len]);
        }
        let mut flipped = bytes.clone();
        for i in 0..flipped.len() {
            for mask in [0x01, 0x20, 0x80] {
                flipped[i] ^= mask;
                check(&flipped);
                flipped[i] ^= mask;
            }
        }
        assert!(parse_document::<Sessions>(&bytes, path, SESSIONS_FORMAT).is_ok());
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
