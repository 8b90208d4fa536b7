//! The store file and its companions (lock file, lease file), and reading
//! and writing their documents under the OS file lock.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::document::{Document, LEASES_FORMAT, SESSIONS_FORMAT, Sessions, parse_document};
use super::fs::{create_private_dir, open_private, read_limited, resolve_links, write_atomic};
use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::lease::LeaseTable;

/// The store file and its companions.
#[derive(Debug, Clone)]
pub(super) struct Paths {
    pub(super) file: PathBuf,
    pub(super) lock: PathBuf,
    pub(super) leases: PathBuf,
    pub(super) dir: PathBuf,
    /// The file name, for temporary file names.
    pub(super) name: String,
}

impl Paths {
    /// The companions of the store file `file`, which must name a file.
    ///
    /// Fails with [`StoreErrorKind::InvalidInput`] when `file` does not name a file.
    pub(super) fn for_file(file: PathBuf) -> StoreResult<Self> {
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
        Ok(Paths {
            lock: dir.join(format!("{name}.lock")),
            leases: dir.join(format!("{name}.leases")),
            dir,
            name,
            file,
        })
    }
    /// Reads the document at `path` under a shared lock.
    ///
    /// Reads would be consistent without the lock (writes are atomic renames),
    /// so when the lock file cannot be created (a read-only directory) the read
    /// goes ahead without it; a missing directory is an empty store.
    pub(super) fn read_shared(&self) -> StoreResult<Document<Sessions>> {
        self.read_shared_with(|doc| doc)
    }

    /// Reads the document under a shared lock (as [`Paths::read_shared`])
    /// and runs `then` on it before the lock is released.
    pub(super) fn read_shared_with<T>(
        &self,
        then: impl FnOnce(Document<Sessions>) -> T,
    ) -> StoreResult<T> {
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

    /// Reads, changes and (when `change` says so) atomically rewrites the
    /// lease file under the exclusive lock; leases send no events.
    pub(super) fn update_leases<T>(
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
    pub(super) fn lock_exclusive(&self) -> StoreResult<File> {
        create_private_dir(&self.dir)
            .map_err(|e| self.io_error("create the directory", &self.dir, e))?;
        let lock =
            open_private(&self.lock, true).map_err(|e| self.io_error("open", &self.lock, e))?;
        lock.lock()
            .map_err(|e| self.io_error("lock", &self.lock, e))?;
        Ok(lock)
    }

    /// Reads and checks a document; a missing or empty file is an empty document.
    pub(super) fn read_document<B>(&self, path: &Path, format: &str) -> StoreResult<Document<B>>
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
    pub(super) fn write_document<B: Serialize>(
        &self,
        path: &Path,
        doc: &Document<B>,
    ) -> StoreResult<()> {
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

    pub(super) fn io_error(&self, what: &str, path: &Path, e: io::Error) -> StoreError {
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
