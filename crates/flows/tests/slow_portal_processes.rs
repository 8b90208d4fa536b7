//! Two **processes**, one session file, and a portal slower than the refresh
//! lock's lease: the renewal must not outlive its lease.
//!
//! Each process has its own `TokenManager`, its own `FileStore` handle on the
//! same file and its own HTTP client. The stored access token has expired and
//! every renewal exchanges (`exchange_refresh_token`, which rotates the
//! refresh token at once). The portal answers that exchange only after
//! 2.5 s, while the lease lasts 1 s. If the lock ran out while the first
//! process waited, the second would take it and spend the same refresh token
//! again, and one of them would strand its callers with `SignInRequired`.
//! What must happen instead: exactly one exchange reaches the portal, both
//! processes serve the same new token, and the stored session still renews.
//!
//! The test binary plays both parts: with `ARCGIS_AUTH_SLOW_CHILD` set, the
//! same test is a worker and prints one `slow-worker ok=… failed=… token=…`
//! line, where `token` is a fingerprint of the token, never the token.
#![allow(clippy::unwrap_used)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{AuthorizeOptions, ExposeSecret, HttpClient, Portal, Timestamp};
use arcgis_auth_flows::signin::UserSignIn;
use arcgis_auth_flows::{ManagerConfig, TokenManager};
use arcgis_auth_storage::{FileStore, SaveMode, SessionStore};
use arcgis_auth_testkit::{
    Failure, FakePortal, Grant, LOOPBACK_REDIRECT_URI, PUBLIC_CLIENT_ID, TestWorker,
};

const CHILD: &str = "ARCGIS_AUTH_SLOW_CHILD";
const TEST: &str = "a_portal_slower_than_the_lease_sees_one_exchange_from_two_processes";
const WORKERS: usize = 2;
const CALLERS: usize = 20;
const KEY: &str = "slow:jdoe";

/// A lease shorter than the portal's answer; every renewal exchanges.
fn config() -> ManagerConfig {
    let mut config = ManagerConfig::default();
    config.lock_lease = Duration::from_secs(1);
    config.lock_wait = Duration::from_secs(20);
    config.lock_poll = Duration::from_millis(20);
    config.attempt_timeout = Duration::from_secs(5);
    config.retry.max_retries = 0;
    config.exchange_window = Duration::from_secs(365 * 24 * 3600);
    config
}

fn http() -> HttpClient {
    HttpClient::from_builder(reqwest::Client::builder().no_proxy()).unwrap()
}

fn store(file: &Path) -> Arc<dyn SessionStore> {
    Arc::new(FileStore::new(file).unwrap())
}

fn manager(portal: &str, file: &Path) -> TokenManager {
    let source = UserSignIn::new(Portal::parse(portal).unwrap(), PUBLIC_CLIENT_ID, http());
    TokenManager::builder(source, store(file), KEY)
        .config(config())
        .build()
        .unwrap()
}

fn fingerprint(secret: &str) -> u64 {
    let mut h = DefaultHasher::new();
    secret.hash(&mut h);
    h.finish()
}

/// A worker: CALLERS concurrent `token()` calls; prints its tally.
async fn work(portal: String, file: PathBuf) {
    let manager = manager(&portal, &file);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CALLERS {
        let manager = manager.clone();
        tasks.spawn(async move { manager.token().await });
    }
    let (mut ok, mut failed, mut tokens) = (0, 0, Vec::new());
    for result in tasks.join_all().await {
        match result {
            Ok(token) => {
                ok += 1;
                tokens.push(fingerprint(token.secret().expose_secret()));
            }
            Err(e) => {
                eprintln!("slow-worker: {e:#}");
                failed += 1;
            }
        }
    }
    tokens.dedup();
    let token = match tokens.as_slice() {
        [one] => one.to_string(),
        _ => format!("{} different", tokens.len()),
    };
    println!("slow-worker ok={ok} failed={failed} token={token}");
}

fn spawn(worker: usize, portal: &str, file: &Path) -> TestWorker {
    TestWorker::spawn(
        TEST,
        [
            (CHILD.to_owned(), worker.to_string().into()),
            (format!("{CHILD}_PORTAL"), portal.into()),
            (format!("{CHILD}_FILE"), file.as_os_str().to_owned()),
        ],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_slower_than_the_lease_sees_one_exchange_from_two_processes() {
    if std::env::var(CHILD).is_ok() {
        let var = |name: &str| std::env::var(format!("{CHILD}_{name}")).unwrap();
        work(var("PORTAL"), PathBuf::from(var("FILE"))).await;
        return;
    }
    let portal = FakePortal::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.json");

    // Sign the testkit's user in and store the session, its access token
    // already expired: the first call in each process must renew.
    let user = UserSignIn::new(portal.portal(), PUBLIC_CLIENT_ID, http());
    let pending = user
        .begin(LOOPBACK_REDIRECT_URI, &AuthorizeOptions::new())
        .unwrap();
    let callback = portal
        .authorize_redirect(pending.url().as_str())
        .await
        .unwrap();
    let signed_in = user.complete(&pending, callback.as_str()).await.unwrap();
    let mut record = signed_in.record().clone();
    let before = record.access_token.clone().unwrap();
    record.expires_at = Some(Timestamp::now().saturating_sub(Duration::from_secs(60)));
    store(&file)
        .save(KEY, &record, SaveMode::Overwrite)
        .await
        .unwrap();
    portal.reset_calls();
    portal.fail_next_token_calls(1, Failure::Slow(Duration::from_millis(2500)));

    let workers: Vec<TestWorker> = (0..WORKERS)
        .map(|i| spawn(i, &portal.portal_url(), &file))
        .collect();
    let mut seen = Vec::new();
    for (i, worker) in workers.into_iter().enumerate() {
        let (status, tally) =
            tokio::task::block_in_place(|| worker.finish("slow-worker ").unwrap());
        assert!(status.success(), "worker {i} exited with {status}");
        let tally = tally.unwrap_or_default();
        let prefix = format!("slow-worker ok={CALLERS} failed=0 token=");
        let token = tally
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("worker {i}: {tally:?}"));
        assert!(!token.contains("different"), "worker {i}: {tally}");
        seen.push(token.to_owned());
    }

    // One exchange reached the portal; both processes serve its token.
    let calls = portal.calls();
    assert_eq!(calls.token(Grant::ExchangeRefreshToken), 1);
    assert_eq!(calls.token(Grant::RefreshToken), 0);
    assert_eq!(seen[0], seen[1], "the two processes serve different tokens");
    let stored = store(&file).load(KEY).await.unwrap().unwrap().record;
    let now_stored = stored.access_token.unwrap();
    assert_ne!(now_stored.expose_secret(), before.expose_secret());
    assert_eq!(
        fingerprint(now_stored.expose_secret()).to_string(),
        seen[0],
        "the store holds the token the processes serve"
    );

    // No one stranded: the rotated refresh token in the store still renews.
    let after = manager(&portal.portal_url(), &file);
    let served = after.token().await.unwrap();
    assert!(after.report_invalid(&served));
    let renewed = after.token().await.unwrap();
    assert!(!renewed.same_token(&served));
    assert_eq!(portal.calls().token(Grant::ExchangeRefreshToken), 2);
}
