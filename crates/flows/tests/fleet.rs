//! The fleet test: 8 worker **processes**, each with its own `TokenManager`
//! over one shared Redis store, each sending 500 requests through the
//! `ArcGisAuth` middleware to a secured item on the testkit portal, while the
//! portal expires every access token every 250 ms and every renewal rotates
//! the refresh token (`exchange_refresh_token`).
//!
//! It must end with zero failed requests, no process stranded with a dead
//! refresh token (the stored session still renews afterwards), and about one
//! token request per expiry (within 10%): the processes renew once between
//! them, through the store's refresh lock, not once each.
//!
//! The test binary plays both parts: with `ARCGIS_AUTH_FLEET_CHILD` set, the
//! same test is a worker and prints one `fleet-worker ok=… failed=…` line.
//! Redis: `ARCGIS_AUTH_TEST_REDIS_URL` (keys under a random prefix), else a
//! private `redis-server`; without either the test is skipped loudly, except
//! under `CI=true`, where it fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arcgis_auth_core::{AuthorizeOptions, HttpClient, Portal};
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::UserSignIn;
use arcgis_auth_flows::{ManagerConfig, TokenManager};
use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_storage::{RedisStore, SaveMode, SessionStore};
use arcgis_auth_testkit::{
    Endpoint, FakePortal, Grant, LOOPBACK_REDIRECT_URI, PUBLIC_CLIENT_ID, TestWorker,
};

const CHILD: &str = "ARCGIS_AUTH_FLEET_CHILD";
const WORKERS: usize = 8;
const REQUESTS: usize = 500;
const EXPIRE_EVERY: Duration = Duration::from_millis(250);
const KEY: &str = "fleet:jdoe";

/// What a worker needs to know, passed through its environment.
struct Job {
    portal: String,
    item: String,
    redis: String,
    prefix: String,
}

impl Job {
    fn from_env() -> Option<Job> {
        let var = |name: &str| std::env::var(format!("{CHILD}_{name}")).ok();
        std::env::var(CHILD).ok()?;
        Some(Job {
            portal: var("PORTAL")?,
            item: var("ITEM")?,
            redis: var("REDIS")?,
            prefix: var("PREFIX")?,
        })
    }

    fn spawn(&self, worker: usize) -> TestWorker {
        TestWorker::spawn(
            "a_fleet_of_processes_shares_one_session",
            [
                (CHILD.to_owned(), worker.to_string()),
                (format!("{CHILD}_PORTAL"), self.portal.clone()),
                (format!("{CHILD}_ITEM"), self.item.clone()),
                (format!("{CHILD}_REDIS"), self.redis.clone()),
                (format!("{CHILD}_PREFIX"), self.prefix.clone()),
            ],
        )
        .unwrap()
    }
}

/// Renewals always exchange (so every renewal rotates the refresh token).
fn config() -> ManagerConfig {
    let mut config = ManagerConfig::default();
    config.exchange_window = Duration::from_secs(365 * 24 * 3600);
    config.lock_poll = Duration::from_millis(10);
    config
}

async fn store(job: &Job) -> Arc<dyn SessionStore> {
    Arc::new(
        RedisStore::builder(&job.redis)
            .prefix(&job.prefix)
            .connect()
            .await
            .unwrap(),
    )
}

fn http() -> HttpClient {
    HttpClient::from_builder(reqwest::Client::builder().no_proxy()).unwrap()
}

async fn manager(job: &Job) -> TokenManager {
    let portal = Portal::parse(&job.portal).unwrap();
    let source = UserSignIn::new(portal, PUBLIC_CLIENT_ID, http());
    TokenManager::builder(source, store(job).await, KEY)
        .config(config())
        .build()
        .unwrap()
}

/// A worker: 500 requests through the middleware; prints its tally.
async fn work(job: Job) {
    let manager = manager(&job).await;
    let routing = TokenRouting::new(Portal::parse(&job.portal).unwrap());
    let client = reqwest_middleware::ClientBuilder::new(
        reqwest::Client::builder().no_proxy().build().unwrap(),
    )
    // The default rejection cool-down: a freshly renewed token that the
    // portal expired again before the retry landed is one strike, not a
    // server refusing the token.
    .with(ArcGisAuth::new(manager, routing, http()))
    .build();
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..REQUESTS {
        match client.get(&job.item).send().await {
            Ok(r) if r.status().is_success() => match r.text().await {
                Ok(body) if !body.contains("\"error\"") => ok += 1,
                Ok(body) => {
                    eprintln!("fleet-worker: error body {body}");
                    failed += 1;
                }
                Err(e) => {
                    eprintln!("fleet-worker: body {e}");
                    failed += 1;
                }
            },
            Ok(r) => {
                eprintln!("fleet-worker: HTTP {}", r.status());
                failed += 1;
            }
            Err(e) => {
                eprintln!("fleet-worker: {e}");
                failed += 1;
            }
        }
    }
    println!("fleet-worker ok={ok} failed={failed}");
}

/// Signs the testkit's user in (PKCE, the browser played by the testkit) and
/// stores the session under KEY.
async fn sign_in(portal: &FakePortal, job: &Job) {
    let user = UserSignIn::new(portal.portal(), PUBLIC_CLIENT_ID, http());
    let pending = user
        .begin(LOOPBACK_REDIRECT_URI, &AuthorizeOptions::new())
        .unwrap();
    let callback = portal
        .authorize_redirect(pending.url().as_str())
        .await
        .unwrap();
    let signed_in = user.complete(&pending, callback.as_str()).await.unwrap();
    store(job)
        .await
        .save(KEY, signed_in.record(), SaveMode::Overwrite)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_processes_shares_one_session() {
    if let Some(job) = Job::from_env() {
        work(job).await;
        return;
    }
    let Some(redis) = RedisServer::for_test("a_fleet_of_processes_shares_one_session") else {
        return;
    };
    let portal = FakePortal::start().await;
    let job = Job {
        portal: portal.portal_url(),
        item: portal.secured_item_url("fleet-item") + "?f=json",
        redis: redis.url().to_owned(),
        prefix: RedisServer::unique_prefix(),
    };
    sign_in(&portal, &job).await;
    portal.reset_calls();

    let started = Instant::now();
    let mut workers: Vec<TestWorker> = (0..WORKERS).map(|i| job.spawn(i)).collect();

    // Expiries count once the whole fleet is serving: an expiry while the
    // workers are still starting (8 processes on 2 cores can take a second)
    // reaches no one, and the next request renews for several of them at
    // once. So wait until each worker could have made its first request.
    let serving = Instant::now() + Duration::from_secs(60);
    while portal.calls().endpoint(Endpoint::ContentItem) < WORKERS as u64 {
        assert!(
            Instant::now() < serving,
            "the workers did not start within a minute"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The portal expires every access token every EXPIRE_EVERY while any worker runs.
    let mut expiries = 0u64;
    loop {
        tokio::time::sleep(EXPIRE_EVERY).await;
        if workers.iter_mut().all(TestWorker::has_exited) {
            break;
        }
        portal.expire_access_tokens();
        expiries += 1;
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the fleet did not finish within 2 minutes"
        );
    }
    let elapsed = started.elapsed();

    for (i, worker) in workers.into_iter().enumerate() {
        let (status, tally) = worker.finish("fleet-worker ").unwrap();
        assert!(status.success(), "worker {i} exited with {status}");
        let tally = tally.unwrap_or_default();
        assert_eq!(
            tally,
            format!("fleet-worker ok={REQUESTS} failed=0"),
            "worker {i}"
        );
    }

    // No one stranded: the stored session (whose refresh token was rotated
    // at every renewal) still renews.
    let calls = portal.calls();
    let renewals = calls.token(Grant::ExchangeRefreshToken) + calls.token(Grant::RefreshToken);
    eprintln!(
        "fleet: {WORKERS} processes × {REQUESTS} requests in {elapsed:?}; \
         {expiries} expiries, {renewals} token requests"
    );
    let after = manager(&job).await;
    let before = after.token().await.unwrap();
    assert!(after.report_invalid(&before));
    let renewed = after.token().await.unwrap();
    assert!(!renewed.same_token(&before));

    // One token request per expiry, within 10%. The last expiry may come as
    // the workers finish, with no request left to notice it.
    assert!(
        expiries >= 4,
        "the run was too short to expire tokens: {expiries}"
    );
    let (e, r) = (expiries as f64, renewals as f64);
    assert!(
        r <= 1.1 * e && r >= 0.9 * (e - 1.0),
        "{renewals} token requests for {expiries} expiries (more than 10% apart)"
    );
    drop(redis);
}
