//! `cached_token`: `TokenManager::token()` (default clock) on a fresh cached token, one caller
//! and two threads contending, against reading an `Arc` out of a
//! `std::sync::RwLock` (the least a shared cache can do).
//!
//! Targets (docs/performance.md): median under 100 ns, at most 2× the baseline.
//! That the path does not allocate is pinned by a test
//! (`crates/flows/tests/cached_path.rs`), not here.
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arcgis_auth_bench::{TokenEndpoint, oauth_client};
use arcgis_auth_core::{
    Clock, CoarseSystemClock, ManualClock, Portal, SystemClock, Timestamp, Token,
};
use arcgis_auth_flows::TokenManager;
use arcgis_auth_flows::test_util::AppCredentials;
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
use criterion::{Criterion, criterion_group, criterion_main};

/// Polls a future once with a no-op waker: the cached path is ready at once.
fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

fn cached(manager: &TokenManager) {
    match poll_once(manager.token()) {
        Poll::Ready(Ok(token)) => {
            black_box(token);
        }
        _ => panic!("the cached token must be served at once"),
    }
}

fn baseline(lock: &RwLock<Arc<String>>) {
    let token = lock.read().unwrap_or_else(|e| e.into_inner()).clone();
    black_box(token);
}

/// A manager holding a token valid for an hour (its source is never called),
/// deciding freshness with `clock` (the builder's default clock when `None`).
fn manager(rt: &tokio::runtime::Runtime, clock: Option<Arc<dyn Clock>>) -> TokenManager {
    let (manager, _endpoint) = rt.block_on(async {
        let endpoint = TokenEndpoint::start().await.expect("loopback endpoint");
        let source = AppCredentials::new(oauth_client(&endpoint).expect("client"));
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let mut builder = TokenManager::builder(source, store, "bench:cached");
        if let Some(clock) = clock {
            builder = builder.clock(clock);
        }
        let manager = builder.build().expect("manager");
        let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
        record.set_token(&Token::new(
            "cached-token".into(),
            Timestamp::now() + Duration::from_secs(3600),
        ));
        manager.set_session(record).await.expect("session");
        (manager, endpoint)
    });
    manager
}

/// Runs `f` `iters` times on each of two threads at once; returns the wall
/// time, i.e. the time per call as each of the two callers sees it.
fn two_threads(iters: u64, f: impl Fn() + Sync) -> Duration {
    let start = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                start.wait();
                for _ in 0..iters {
                    f();
                }
            });
        }
        start.wait();
        let began = Instant::now();
        // The scope joins both threads before returning.
        began
    })
    .elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let manager_with_manual_clock =
        manager(&rt, Some(Arc::new(ManualClock::new(Timestamp::now()))));
    let manager_with_system_clock = manager(&rt, Some(Arc::new(SystemClock)));
    // The default clock (`CoarseSystemClock`), as users get it.
    let manager = manager(&rt, None);
    let system_clock = SystemClock;
    let coarse_clock = CoarseSystemClock::new();
    let lock = RwLock::new(Arc::new(String::from("cached-token")));

    let mut single = c.benchmark_group("cached_token");
    single.bench_function("manager", |b| b.iter(|| cached(&manager)));
    single.bench_function("rwlock_arc_baseline", |b| b.iter(|| baseline(&lock)));
    single.bench_function("manager_2_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || cached(&manager)))
    });
    single.bench_function("rwlock_arc_baseline_2_threads", |b| {
        b.iter_custom(|iters| two_threads(iters, || baseline(&lock)))
    });
    // Where the time goes: the clock read every call makes (to check
    // expiry): an exact wall-clock read, the default coarse clock, and the
    // manager on an exact wall clock and on a clock that is one atomic load.
    single.bench_function("system_clock_now", |b| {
        b.iter(|| black_box(system_clock.now()))
    });
    single.bench_function("coarse_system_clock_now", |b| {
        b.iter(|| black_box(coarse_clock.now()))
    });
    single.bench_function("manager_system_clock", |b| {
        b.iter(|| cached(&manager_with_system_clock))
    });
    single.bench_function("manager_manual_clock", |b| {
        b.iter(|| cached(&manager_with_manual_clock))
    });
    single.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
