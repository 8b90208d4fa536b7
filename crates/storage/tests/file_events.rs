//! Another process's writes to a `FileStore`'s file reach this process's
//! subscribers as change events, with the versions the other process got.
//!
//! The test binary plays both parts: run with `ARCGIS_AUTH_EVENTS_TEST_CHILD`
//! set, the test below becomes the other process, which makes one change and
//! prints the version it got.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use arcgis_auth_core::Portal;
use arcgis_auth_storage::{
    ChangeEvent, ChangeKind, FileStore, SaveMode, SessionKind, SessionRecord, SessionStore,
};
use tokio::sync::broadcast;

#[path = "support/child.rs"]
mod child;

const CHILD: &str = "ARCGIS_AUTH_EVENTS_TEST_CHILD";
const TEST: &str = "another_processes_writes_arrive_as_events";
const KEY: &str = "jdoe@online";

/// The child's part: `<path>\n<create|update|delete>`; prints the new version
/// (empty after a delete).
async fn change_and_exit(arg: &str) -> ! {
    let (path, what) = arg.split_once('\n').unwrap_or((arg, ""));
    let store = FileStore::new(path).unwrap();
    let record = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
    let version = match what {
        "create" => Some(store.save(KEY, &record, SaveMode::Create).await.unwrap()),
        "update" => {
            let current = store.load(KEY).await.unwrap().unwrap();
            Some(
                store
                    .save(KEY, &record, SaveMode::Update(current.version))
                    .await
                    .unwrap(),
            )
        }
        "delete" => {
            assert!(store.delete(KEY, None).await.unwrap());
            None
        }
        other => panic!("unknown change `{other}`"),
    };
    println!(
        "version={}",
        version.map(|v| v.to_string()).unwrap_or_default()
    );
    std::process::exit(0)
}

/// Runs the other process for one change and returns the version it printed.
fn other_process(path: &std::path::Path, what: &str) -> String {
    let mut child = child::spawn_self(TEST, CHILD, format!("{}\n{what}", path.display()));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "the other process failed: {out}"
    );
    out.lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap_or_else(|| panic!("the other process said no version: {out}"))
        .to_owned()
}

async fn next(events: &mut broadcast::Receiver<ChangeEvent>) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event in time")
        .expect("the channel is open")
}

#[tokio::test]
async fn another_processes_writes_arrive_as_events() {
    if let Ok(arg) = std::env::var(CHILD) {
        change_and_exit(&arg).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("sessions.json");
    let store = FileStore::builder(&path)
        .poll_interval(Duration::from_millis(10))
        .build()
        .unwrap();
    let mut events = store.subscribe();
    assert_eq!(next(&mut events).await.kind, ChangeKind::Resync);

    for (what, kind) in [
        ("create", ChangeKind::Created),
        ("update", ChangeKind::Updated),
        ("delete", ChangeKind::Deleted),
    ] {
        let version = other_process(&path, what);
        let event = next(&mut events).await;
        assert_eq!(
            (
                event.key.as_str(),
                &event.kind,
                event.version.as_ref().map(|v| v.as_str())
            ),
            (KEY, &kind, Some(version.as_str()).filter(|v| !v.is_empty())),
            "after the other process's {what}"
        );
    }
}
