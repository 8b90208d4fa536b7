//! `refresh_storm`: 10,000 concurrent callers ask one manager for a token
//! whose session has expired, against a loopback token endpoint. Exactly one
//! token request may reach the endpoint (asserted on every iteration).
//!
//! Measured beside it, in the same run and against the same endpoint:
//! - `plain_round_trip`: one `client_credentials` request through the same
//!   `OAuthClient` (the baseline; target: storm ≤ 1.5× this);
//! - `fan_out_baseline`: the least any implementation can do for 10,000
//!   waiting tasks: spawn them, make one plain request, hand its token to
//!   all of them through a `tokio::sync::watch` channel;
//! - `callers_on_a_fresh_token`: the callers alone: the same 10,000 spawned
//!   tasks asking the same kind of manager, whose token is still fresh (no
//!   request at all). What the storm costs beyond this is the library's.
// criterion_group! generates an undocumented `pub fn benches`.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arcgis_auth_bench::{TokenEndpoint, oauth_client};
use arcgis_auth_core::{ManualClock, OAuthClient, Timestamp, Token};
use arcgis_auth_flows::TokenManager;
use arcgis_auth_flows::test_util::AppCredentials;
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const CALLERS: usize = 10_000;
const START: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

/// A manager that holds (in memory and in its store) a session whose token
/// expired a minute ago, as a running service would at the moment of expiry.
async fn expired_manager(endpoint: &TokenEndpoint, client: &OAuthClient) -> TokenManager {
    manager_with_token_until(endpoint, client, START - Duration::from_secs(60)).await
}

/// A manager whose session's token expires at `expires_at`.
async fn manager_with_token_until(
    endpoint: &TokenEndpoint,
    client: &OAuthClient,
    expires_at: Timestamp,
) -> TokenManager {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder(AppCredentials::new(client.clone()), store, "bench:storm")
        .clock(Arc::new(clock))
        .build()
        .expect("manager");
    let mut record = SessionRecord::new(endpoint.portal(), SessionKind::App);
    record.client_id = Some(client.client_id().to_owned());
    record.set_token(&Token::new("bench-token".into(), expires_at));
    manager.set_session(record).await.expect("session");
    manager
}

/// One storm: every caller spawned at once; the wall time until all have a token.
async fn storm(endpoint: &TokenEndpoint, client: &OAuthClient) -> Duration {
    let manager = expired_manager(endpoint, client).await;
    let before = endpoint.requests();
    let elapsed = callers(&manager).await;
    assert_eq!(
        endpoint.requests() - before,
        1,
        "10,000 callers must make exactly one token request"
    );
    elapsed
}

/// The callers alone: the same spawned tasks, on a token that is fresh.
async fn fresh(endpoint: &TokenEndpoint, client: &OAuthClient) -> Duration {
    let manager =
        manager_with_token_until(endpoint, client, START + Duration::from_secs(3600)).await;
    let before = endpoint.requests();
    let elapsed = callers(&manager).await;
    assert_eq!(
        endpoint.requests(),
        before,
        "a fresh token needs no request"
    );
    elapsed
}

/// `CALLERS` tasks spawned at once, each asking `manager` for a token; the
/// wall time until all have one.
async fn callers(manager: &TokenManager) -> Duration {
    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let m = manager.clone();
            tokio::spawn(async move { m.token().await })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller").expect("token");
    }
    started.elapsed()
}

/// The ideal storm: one request, its token fanned out to every waiting task.
async fn fan_out(client: &OAuthClient) -> Duration {
    let started = Instant::now();
    let (tx, rx) = tokio::sync::watch::channel(None::<Arc<Token>>);
    let callers: Vec<_> = (0..CALLERS)
        .map(|_| {
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let token = rx.wait_for(Option::is_some).await.expect("sender").clone();
                std::hint::black_box(token);
            })
        })
        .collect();
    let token = client.client_credentials(None).await.expect("token");
    let _ = tx.send(Some(Arc::new(token)));
    for caller in callers {
        caller.await.expect("caller");
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let (endpoint, client) = rt.block_on(async {
        let endpoint = TokenEndpoint::start().await.expect("endpoint");
        let client = oauth_client(&endpoint).expect("client");
        // Open the keep-alive connection, as a running service would have.
        client.client_credentials(None).await.expect("warm-up");
        (endpoint, client)
    });

    let mut group = c.benchmark_group("refresh_storm");
    group.sample_size(20);
    group.bench_function("plain_round_trip", |b| {
        b.iter(|| rt.block_on(client.client_credentials(None)).expect("token"))
    });
    group.bench_function("storm_10000_callers", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(storm(&endpoint, &client)))
                .sum::<Duration>()
        })
    });
    group.bench_function("callers_on_a_fresh_token", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(fresh(&endpoint, &client)))
                .sum::<Duration>()
        })
    });
    group.bench_function("fan_out_baseline", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(fan_out(&client)))
                .sum::<Duration>()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
