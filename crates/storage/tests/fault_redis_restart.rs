//! Redis killed (SIGKILL) in the middle of a run of compare-and-swap saves and
//! restarted on the same port: while it is down every operation fails with a
//! typed, transient `Unavailable` error; no acknowledged save is lost and no
//! record is corrupted; the same `RedisStore` resumes by itself, without being
//! rebuilt.
//!
//! The server is always this test's own `redis-server` (it gets killed), with
//! an append-only file synced on every write, as a deployment that must not
//! lose sessions runs it. Without `redis-server` the test is skipped loudly,
//! except under `CI=true`, where it fails.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use arcgis_auth_core::{ExposeSecret, Portal};
use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_storage::{
    RedisStore, SaveMode, SessionKind, SessionRecord, SessionStore, StoreErrorKind,
};

const KEY: &str = "user:jdoe";

/// Persistence on: an append-only file synced on every write.
const DURABLE: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

/// The record for generation `n`: the access token names its generation.
fn record(n: u64) -> SessionRecord {
    let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
    r.username = Some("jdoe".into());
    r.access_token = Some(format!("ACCESS-{n}").into());
    r.extra.insert("n".into(), serde_json::json!(n));
    r
}

/// The generation of a loaded record, checking it is whole.
fn generation(r: &SessionRecord) -> u64 {
    let n = r.extra["n"].as_u64().unwrap();
    assert_eq!(
        r.access_token.as_ref().unwrap().expose_secret(),
        format!("ACCESS-{n}"),
        "record of generation {n} is inconsistent"
    );
    n
}

/// One step of the writer: load, then save the next generation with
/// compare-and-swap. Returns the generation saved.
async fn step(store: &RedisStore) -> Result<u64, arcgis_auth_storage::StoreError> {
    let current = store.load(KEY).await?.expect("the session is never lost");
    let n = generation(&current.record);
    store
        .save(KEY, &record(n + 1), SaveMode::Update(current.version))
        .await?;
    Ok(n + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_loses_nothing_and_resumes_by_itself() {
    let Some(mut server) = RedisServer::private_for_test("fault_redis_restart", DURABLE) else {
        return;
    };
    let store = RedisStore::builder(server.url())
        .prefix("fault-restart")
        .connection_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    store.save(KEY, &record(0), SaveMode::Create).await.unwrap();

    // Before: a run of saves.
    let mut acked = 0;
    for _ in 0..50 {
        acked = step(&store).await.unwrap();
    }
    assert_eq!(acked, 50);

    // Killed mid-run: every operation fails, typed and transient.
    server.kill();
    for _ in 0..5 {
        let err = step(&store).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
        assert!(err.is_transient());
        let err = store.load(KEY).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    }

    // Restarted on the same port, from its append-only file.
    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut errors_after_restart = 0;
    let resumed_at = loop {
        match step(&store).await {
            Ok(n) => break n,
            Err(e) => {
                // Reconnecting: still only "unavailable", never corrupt or a conflict.
                assert_eq!(e.kind(), StoreErrorKind::Unavailable, "{e}");
                errors_after_restart += 1;
                assert!(
                    Instant::now() < deadline,
                    "the store did not resume within 20 s ({errors_after_restart} errors): {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // Nothing acknowledged before the kill was lost: the run continues from
    // the last acknowledged generation.
    assert_eq!(
        resumed_at,
        acked + 1,
        "a save acknowledged before the kill was lost"
    );
    acked = resumed_at;

    // After: the run goes on as if nothing happened.
    for _ in 0..50 {
        acked = step(&store).await.unwrap();
    }
    let stored = store.load(KEY).await.unwrap().unwrap();
    assert_eq!(generation(&stored.record), acked);
    assert_eq!(acked, 101);
}
