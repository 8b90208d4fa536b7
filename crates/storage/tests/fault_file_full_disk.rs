//! The file store on a full disk: a save fails with a typed, transient
//! `Unavailable` error that says to free disk space, the store file keeps the
//! old record byte for byte, no temporary file is left behind, and once space
//! is freed the same store saves again.
//!
//! The disk is a 128 KiB tmpfs mounted for the test (needs root or
//! `CAP_SYS_ADMIN`, as on CI). Where mounting is not allowed, the write error
//! is injected at the store's boundary instead: the directory is made
//! read-only (which only stops a non-root user). If neither is possible the
//! test is skipped loudly, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use arcgis_auth_core::{ExposeSecret, Portal};
use arcgis_auth_storage::{
    FileStore, SaveMode, SessionKind, SessionRecord, SessionStore, StoreErrorKind,
};

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct SmallDisk {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().join("disk");
        fs::create_dir(&mount_point).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=128k,mode=0700", "tmpfs"])
            .arg(&mount_point)
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success()).then(|| SmallDisk {
            mount_point,
            _dir: dir,
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

fn record(token: &str) -> SessionRecord {
    let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
    r.username = Some("jdoe".into());
    r.access_token = Some(token.to_owned().into());
    r
}

fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.contains(".tmp-"))
        .collect()
}

/// Writes a filler file until the disk is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
    path
}

/// The scenario, on a store in `dir`; `break_disk` makes writes fail and
/// `heal` undoes it.
async fn full_disk_scenario(
    dir: &Path,
    break_disk: impl FnOnce(&Path),
    heal: impl FnOnce(&Path),
    expect_hint: Option<&str>,
) {
    let path = dir.join("sessions.json");
    let store = FileStore::new(&path).unwrap();
    let v1 = store
        .save("jdoe", &record("OLD-TOKEN"), SaveMode::Create)
        .await
        .unwrap();
    let before = fs::read(&path).unwrap();

    break_disk(dir);
    // A bigger record than the old one, so it cannot fit where the old one was.
    let new = record(&"NEW-TOKEN-".repeat(2000));
    let err = store
        .save("jdoe", &new, SaveMode::Update(v1.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.is_transient());
    if let Some(hint) = expect_hint {
        assert!(err.to_string().contains(hint), "{err}");
    }
    assert!(!err.to_string().contains("NEW-TOKEN"), "{err}");

    // The old record is intact, byte for byte, at its version; nothing left over.
    assert_eq!(fs::read(&path).unwrap(), before);
    let loaded = store.load("jdoe").await.unwrap().unwrap();
    assert_eq!(loaded.version, v1);
    assert_eq!(
        loaded.record.access_token.unwrap().expose_secret(),
        "OLD-TOKEN"
    );
    assert!(temp_files(dir).is_empty(), "{:?}", temp_files(dir));

    // Space again: the same store saves, compare-and-swap on the old version.
    heal(dir);
    store
        .save("jdoe", &new, SaveMode::Update(v1))
        .await
        .unwrap();
    let loaded = store.load("jdoe").await.unwrap().unwrap();
    assert!(
        loaded
            .record
            .access_token
            .unwrap()
            .expose_secret()
            .starts_with("NEW-TOKEN-")
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[tokio::test]
async fn a_full_disk_is_a_typed_error_and_keeps_the_old_file() {
    if let Some(disk) = SmallDisk::mount() {
        full_disk_scenario(
            &disk.mount_point,
            |dir| {
                fill(dir);
            },
            |dir| fs::remove_file(dir.join("filler")).unwrap(),
            Some("free some disk space"),
        )
        .await;
        return;
    }
    if !is_root() {
        // Injected at the boundary: the directory refuses new files.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let set = |dir: &Path, mode: u32| {
            fs::set_permissions(dir, fs::Permissions::from_mode(mode)).unwrap();
        };
        full_disk_scenario(
            dir.path(),
            |d| set(d, 0o500),
            |d| set(d, 0o700),
            Some("permissions"),
        )
        .await;
        return;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "CI=true but a tmpfs cannot be mounted (root without CAP_SYS_ADMIN?)"
    );
    eprintln!("\n!! SKIPPED full-disk test: cannot mount a tmpfs, and root ignores permissions\n");
}
