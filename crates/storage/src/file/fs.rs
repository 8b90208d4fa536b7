//! File primitives of the file store: private files and directories,
//! size-limited reads, symbolic links, and atomic replacement (temporary
//! file, fsync, rename, fsync of the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::id::random_id;

/// Larger files are not session stores; they are refused rather than read into memory.
pub(super) const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Follows `path` through symbolic links (also dangling ones, whose target
/// does not exist yet) to the file a write should replace.
pub(super) fn resolve_links(path: &Path) -> io::Result<PathBuf> {
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
pub(super) fn read_limited(path: &Path) -> io::Result<Vec<u8>> {
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
pub(super) fn open_private(path: &Path, create: bool) -> io::Result<File> {
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
pub(super) fn create_private_dir(dir: &Path) -> io::Result<()> {
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
pub(super) fn write_atomic(dir: &Path, path: &Path, target: &str, bytes: &[u8]) -> io::Result<()> {
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
