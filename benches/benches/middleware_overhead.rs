//! `middleware_overhead`: 2,000 authenticated GETs to a loopback server (8
//! tasks × 250 in a row) through the `ArcGisAuth` middleware, against the same
//! `reqwest::Client` sending a fixed `X-Esri-Authorization` header. Both read
//! every body.
//!
//! Target (docs/performance.md): throughput at least 0.95× the baseline's,
//! i.e. the middleware's time at most 1/0.95 ≈ 1.053× the baseline's.
//!
//! Criterion measures the two one after the other, minutes apart, so on a
//! shared machine a disturbance lands on one side only (single runs gave
//! anything from 0.96× to 1.25×). After criterion's two figures, the bench
//! therefore also times [`PAIRS`] back-to-back pairs of the same 2,000 GETs,
//! alternating which side goes first, and writes the median of the pairs'
//! time ratios (and its quartiles) to `$CARGO_TARGET_TMPDIR/
//! middleware_overhead_paired.json`, which `cargo xtask bench` checks the
//! target against.

// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arcgis_auth_bench::{TokenEndpoint, oauth_client};
use arcgis_auth_core::{HttpClient, Timestamp, Token};
use arcgis_auth_flows::TokenManager;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::test_util::AppCredentials;
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use reqwest_middleware::ClientWithMiddleware;

const TASKS: usize = 8;
/// Back-to-back pairs timed after criterion's figures.
const PAIRS: usize = 30;

/// Whether criterion measured this group in this run (a filter may skip it;
/// `cargo test` runs each benchmark once, without `--bench`).
static MEASURED: AtomicBool = AtomicBool::new(false);
const PER_TASK: usize = 250;
const BODY: &str = r#"{"id":"abc123","title":"Roads","type":"Feature Service","access":"private"}"#;

/// 2,000 GETs through `send`, `TASKS` at a time; the wall time.
async fn run<F, Fut>(send: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = usize> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let send = send.clone();
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    assert!(send().await > 0, "empty body");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    started.elapsed()
}

/// Criterion's measurement: `iters` runs of 2,000 GETs made by `send`.
fn gets<F, Fut>(b: &mut Bencher<'_>, rt: &tokio::runtime::Runtime, send: &F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = usize> + Send,
{
    MEASURED.store(true, Ordering::Relaxed);
    b.iter_custom(|iters| {
        (0..iters)
            .map(|_| rt.block_on(run(send.clone())))
            .sum::<Duration>()
    })
}

/// The time ratio (middleware ÷ fixed header) of `PAIRS` back-to-back pairs
/// of 2,000 GETs each, after a few unmeasured pairs; sorted.
fn paired_ratios<M, MF, F, FF>(rt: &tokio::runtime::Runtime, middleware: &M, fixed: &F) -> Vec<f64>
where
    M: Fn() -> MF + Clone + Send + 'static,
    MF: std::future::Future<Output = usize> + Send,
    F: Fn() -> FF + Clone + Send + 'static,
    FF: std::future::Future<Output = usize> + Send,
{
    for _ in 0..3 {
        rt.block_on(run(middleware.clone()));
        rt.block_on(run(fixed.clone()));
    }
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|i| {
            let (m, f) = if i % 2 == 0 {
                let m = rt.block_on(run(middleware.clone()));
                (m, rt.block_on(run(fixed.clone())))
            } else {
                let f = rt.block_on(run(fixed.clone()));
                (rt.block_on(run(middleware.clone())), f)
            };
            m.as_secs_f64() / f.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// Writes the paired ratios' median and quartiles where `cargo xtask bench`
/// reads them.
fn write_paired(ratios: &[f64]) {
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    let json = format!(
        "{{\"pairs\":{},\"median\":{:.4},\"q1\":{:.4},\"q3\":{:.4}}}\n",
        ratios.len(),
        at(0.5),
        at(0.25),
        at(0.75)
    );
    println!("middleware_overhead/paired: {}", json.trim());
    let path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("middleware_overhead_paired.json");
    std::fs::write(&path, json).expect("write the paired ratios");
}

async fn body_len(response: reqwest::Response) -> usize {
    response.bytes().await.expect("body").len()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (server, inner, with_auth) = rt.block_on(async {
        let server = TokenEndpoint::serving(BODY).await.expect("server");
        let source = AppCredentials::new(oauth_client(&server).expect("client"));
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let manager = TokenManager::builder(source, store, "bench:middleware")
            .build()
            .expect("manager");
        let mut record = SessionRecord::new(server.portal(), SessionKind::App);
        record.set_token(&Token::new(
            "bench-token".into(),
            Timestamp::now() + Duration::from_secs(3600),
        ));
        manager.set_session(record).await.expect("session");
        let routing = TokenRouting::new(server.portal()).discover_federation(false);
        let http = HttpClient::from_builder(reqwest::Client::builder().no_proxy()).expect("http");
        let auth = ArcGisAuth::new(manager, routing, http);
        let inner = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let with_auth: ClientWithMiddleware = reqwest_middleware::ClientBuilder::new(inner.clone())
            .with(auth)
            .build();
        (server, inner, with_auth)
    });
    let url = Arc::new(server.url("/sharing/rest/content/items/abc123?f=json"));

    let mut group = c.benchmark_group("middleware_overhead");
    group.sample_size(10);
    let (client, u) = (with_auth.clone(), Arc::clone(&url));
    let through_middleware = move || {
        let (client, url) = (client.clone(), Arc::clone(&u));
        async move { body_len(client.get(url.as_str()).send().await.expect("GET")).await }
    };
    group.bench_function("middleware_2000_gets", |b| {
        gets(b, &rt, &through_middleware)
    });
    let (client, u) = (inner.clone(), Arc::clone(&url));
    let fixed_header = move || {
        let (client, url) = (client.clone(), Arc::clone(&u));
        async move {
            let request = client
                .get(url.as_str())
                .header("X-Esri-Authorization", "Bearer bench-token");
            body_len(request.send().await.expect("GET")).await
        }
    };
    group.bench_function("fixed_header_2000_gets_baseline", |b| {
        gets(b, &rt, &fixed_header)
    });
    group.finish();
    // Criterion runs this function to list benchmarks too (`--list`, filters
    // that exclude this group): pair only when it measured something here.
    if MEASURED.load(Ordering::Relaxed) && std::env::args().any(|a| a == "--bench") {
        write_paired(&paired_ratios(&rt, &through_middleware, &fixed_header));
    }
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    targets = bench
}
criterion_main!(benches);
