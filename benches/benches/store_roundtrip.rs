//! `store_roundtrip`: one load plus one compare-and-swap save of a realistic
//! session record, for each store, against the raw operation it is built on:
//!
//! | store | baseline |
//! |---|---|
//! | `MemoryStore` | a `HashMap<String, String>` of the record JSON behind a `std::sync::Mutex` (get + insert) |
//! | `FileStore` | `std::fs::read` + `std::fs::write` of a temporary file + `std::fs::rename` |
//! | `RedisStore` | raw `GET` + `SET` of the record JSON on the same server, same kind of connection |
//!
//! Target (docs/performance.md): Redis at most 1.3× its baseline. The
//! `redis` store has no subscriber (its change subscription starts with the
//! first `subscribe()`); `redis_with_subscriber` shows the cost of one.
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcgis_auth_core::{Portal, RefreshToken, Timestamp, Token};
use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_storage::{
    FileStore, MemoryStore, RedisStore, SaveMode, SessionKind, SessionRecord, SessionStore,
};
use criterion::{Criterion, criterion_group, criterion_main};
use redis::AsyncCommands;
use tokio::runtime::Runtime;

const KEY: &str = "bench/user:jdoe";

/// A user session as the manager stores it (about 600 bytes of JSON).
fn record() -> SessionRecord {
    let now = Timestamp::now();
    let mut r = SessionRecord::new(
        Portal::parse("https://myorg.maps.arcgis.com/sharing/rest").expect("portal"),
        SessionKind::User,
    );
    r.client_id = Some("AbCdEfGhIjKlMnOp".into());
    r.redirect_uri = Some("https://app.example.com/callback".into());
    r.set_token(
        &Token::new("A".repeat(200).into(), now + Duration::from_secs(1800))
            .with_username(Some("jdoe".into()))
            .with_refresh_token(Some(RefreshToken::new(
                "R".repeat(120).into(),
                now,
                Some(now + Duration::from_secs(14 * 86_400)),
            ))),
    );
    r.updated_at = Some(now);
    r
}

/// Load, then save back with the version just read.
async fn load_and_cas(store: &dyn SessionStore, record: &SessionRecord) {
    let current = store.load(KEY).await.expect("load").expect("stored");
    black_box(&current.record);
    store
        .save(KEY, record, SaveMode::Update(current.version))
        .await
        .expect("compare-and-swap save");
}

fn bench_store(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    store: &dyn SessionStore,
    baseline: &mut dyn FnMut(),
) {
    let record = record();
    rt.block_on(store.save(KEY, &record, SaveMode::Overwrite))
        .expect("seed");
    let mut group = c.benchmark_group("store_roundtrip");
    group.bench_function(name, |b| {
        b.iter(|| rt.block_on(load_and_cas(store, &record)))
    });
    group.bench_function(format!("{name}_baseline"), |b| b.iter(&mut *baseline));
    group.finish();
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let json = record().to_json().expect("json");

    // Memory.
    let memory = MemoryStore::new();
    let map = Mutex::new(HashMap::from([(KEY.to_owned(), json.clone())]));
    bench_store(c, &rt, "memory", &memory, &mut || {
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        black_box(map.get(KEY));
        map.insert(KEY.to_owned(), json.clone());
    });

    // File.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = FileStore::new(dir.path().join("sessions.json")).expect("file store");
    let raw = dir.path().join("raw.json");
    let tmp = dir.path().join("raw.json.tmp");
    std::fs::write(&raw, &json).expect("seed raw file");
    bench_store(c, &rt, "file", &file, &mut || {
        black_box(std::fs::read(&raw).expect("read"));
        std::fs::write(&tmp, &json).expect("write");
        std::fs::rename(&tmp, &raw).expect("rename");
    });
    // Context: the raw operation made as durable as the store makes it
    // (fsync of the file before the rename, of the directory after).
    let mut group = c.benchmark_group("store_roundtrip");
    group.bench_function("file_baseline_fsync", |b| {
        b.iter(|| {
            black_box(std::fs::read(&raw).expect("read"));
            let mut f = std::fs::File::create(&tmp).expect("create");
            std::io::Write::write_all(&mut f, json.as_bytes()).expect("write");
            f.sync_all().expect("fsync");
            std::fs::rename(&tmp, &raw).expect("rename");
            std::fs::File::open(dir.path())
                .and_then(|d| d.sync_all())
                .expect("fsync dir");
        })
    });
    group.finish();

    // Redis.
    let server = match RedisServer::shared_or_start() {
        Ok(server) => server,
        Err(why) => {
            eprintln!("store_roundtrip/redis skipped: {why}");
            return;
        }
    };
    let prefix = format!("arcgis-auth-bench-{}", std::process::id());
    let (redis_store, mut conn) = rt.block_on(async {
        let store = RedisStore::builder(server.url())
            .prefix(prefix.clone())
            .connect()
            .await
            .expect("redis store");
        let conn = redis::Client::open(server.url())
            .expect("url")
            .get_connection_manager()
            .await
            .expect("raw connection");
        (store, conn)
    });
    let raw_key = format!("{prefix}:raw");
    // The target figure first, before any context below leaves anything
    // behind (a subscriber's connection and task, server-side state).
    let redis_store: Arc<dyn SessionStore> = Arc::new(redis_store);
    bench_store(c, &rt, "redis", &*redis_store, &mut || {
        rt.block_on(async {
            let got: Option<String> = conn.get(&raw_key).await.expect("GET");
            black_box(got);
            let () = conn.set(&raw_key, &json).await.expect("SET");
        })
    });
    // Context: the same store with remote events turned off. Since the
    // subscription starts with the first `subscribe()`, this is the same path
    // as `redis` above (which nobody subscribes to); kept as a check of the
    // run's noise and for comparison with earlier runs.
    let quiet: Arc<dyn SessionStore> = Arc::new(rt.block_on(async {
        RedisStore::builder(server.url())
            .prefix(format!("{prefix}-quiet"))
            .remote_events(false)
            .connect()
            .await
            .expect("redis store")
    }));
    // Context: the same store with a subscriber, as under a `TokenManager`
    // (which watches its session): the store then holds a pub/sub connection
    // and receives the echo of each of its saves (skipped unparsed).
    let subscribed = rt.block_on(async {
        RedisStore::builder(server.url())
            .prefix(format!("{prefix}-subscribed"))
            .connect()
            .await
            .expect("redis store")
    });
    let mut events = subscribed.subscribe();
    rt.block_on(async {
        // Measure with the subscription live: wait for its resync.
        tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("the change subscription starts")
            .expect("resync")
    });
    let subscribed: Arc<dyn SessionStore> = Arc::new(subscribed);
    let record = record();
    for store in [&quiet, &subscribed] {
        rt.block_on(store.save(KEY, &record, SaveMode::Overwrite))
            .expect("seed");
    }
    let mut group = c.benchmark_group("store_roundtrip");
    group.bench_function("redis_without_remote_events", |b| {
        b.iter(|| rt.block_on(load_and_cas(&*quiet, &record)))
    });
    group.bench_function("redis_with_subscriber", |b| {
        b.iter(|| {
            rt.block_on(load_and_cas(&*subscribed, &record));
            // Keep the receiver current, as a subscriber would.
            while events.try_recv().is_ok() {}
        })
    });
    group.finish();
    rt.block_on(async {
        let _: () = conn
            .del(&[
                raw_key.clone(),
                redis_store_key(&prefix),
                redis_store_key(&format!("{prefix}-quiet")),
                redis_store_key(&format!("{prefix}-subscribed")),
            ])
            .await
            .expect("clean up");
    });
}

fn redis_store_key(prefix: &str) -> String {
    format!("{prefix}:session:{KEY}")
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
