//! `middleware_overhead`: 2,000 authenticated GETs to a loopback server (8
//! tasks × 250 in a row) through the `ArcGisAuth` middleware, against the same
//! `reqwest::Client` sending a fixed `X-Esri-Authorization` header. Both read
//! every body.
//!
//! Target (docs/performance.md): throughput at least 0.95× the baseline's,
//! i.e. the middleware's time at most 1/0.95 ≈ 1.053× the baseline's.

// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arcgis_auth_bench::{AppCredentials, TokenEndpoint, oauth_client};
use arcgis_auth_core::{HttpClient, Timestamp, Token};
use arcgis_auth_flows::TokenManager;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use reqwest_middleware::ClientWithMiddleware;

const TASKS: usize = 8;
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
    b.iter_custom(|iters| {
        (0..iters)
            .map(|_| rt.block_on(run(send.clone())))
            .sum::<Duration>()
    })
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
