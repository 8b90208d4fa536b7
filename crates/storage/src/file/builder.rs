//! [`FileStoreBuilder`]: a [`FileStore`]'s file, clock and poll interval.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{Clock, SystemClock};

use super::paths::Paths;
use super::store::{FileStore, Inner};
use super::watch::{DEFAULT_POLL_INTERVAL, Watch};
use crate::error::StoreResult;
use crate::feed::ChangeFeed;

/// Settings for a [`FileStore`]; made by [`FileStore::builder`].
///
/// Every setting is fixed when the store is built, so no setting can change
/// under a running watcher.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_storage::FileStore;
///
/// # let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::builder(dir.path().join("sessions.json"))
///     .poll_interval(Duration::from_millis(200))
///     .build()?;
/// assert_eq!(store.poll_interval(), Duration::from_millis(200));
/// # Ok::<_, arcgis_auth_storage::StoreError>(())
/// ```
pub struct FileStoreBuilder {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    poll_interval: Duration,
}

impl fmt::Debug for FileStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStoreBuilder")
            .field("path", &self.path)
            .field("clock", &self.clock)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl FileStoreBuilder {
    /// Uses `clock` for lease expiry instead of the system clock. Every process
    /// sharing the file must agree on the time, so this is for tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How often the watcher of other processes' changes looks at the file
    /// (see [Other processes' changes](FileStore#other-processes-changes));
    /// 1 s by default, at least 10 ms (shorter intervals are raised to it).
    /// Each look reads the file's metadata; the file itself is read only when
    /// that changed.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The store. Nothing is read or written until its first operation.
    ///
    /// Fails with [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput)
    /// when the path does not name a file.
    pub fn build(self) -> StoreResult<FileStore> {
        let paths = Paths::for_file(self.path)?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                paths,
                events: ChangeFeed::new(),
                clock: self.clock,
                watch: Watch::new(self.poll_interval),
            }),
        })
    }
}

impl FileStore {
    /// Settings for a store in the file at `path` (created on the first
    /// save, with its directory): the clock of its leases and the poll
    /// interval of its watcher. [`FileStore::new`] takes the defaults.
    pub fn builder(path: impl Into<PathBuf>) -> FileStoreBuilder {
        FileStoreBuilder {
            path: path.into(),
            clock: Arc::new(SystemClock),
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// A store in the file at `path` (created on the first save, with its
    /// directory), with the system clock and a 1 s poll interval. Nothing is
    /// read or written until the first operation.
    ///
    /// Fails with [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput)
    /// when `path` does not name a file.
    pub fn new(path: impl Into<PathBuf>) -> StoreResult<Self> {
        Self::builder(path).build()
    }
}
