//! Many `arcgis-auth token` processes on one expired session make one
//! token request between them.

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_storage::{RedisStore, SessionStore};
use arcgis_auth_testkit::{CONFIDENTIAL_CLIENT_SECRET, Endpoint, Failure, Grant};

use crate::support::{Setup, expire, stdout_of};

/// Processes started at once.
const PROCESSES: usize = 12;

/// Starts `PROCESSES` `token` processes for `profile` at once and waits for all.
///
/// The portal answers the token request slowly, so every process has started
/// and found the session expired while the first renewal is still running:
/// without the store's refresh lock they would all renew.
fn token_race(s: &Setup, profile: &str) -> Vec<Output> {
    s.portal
        .fail_next_token_calls(1, Failure::Slow(Duration::from_millis(1500)));
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            s.command(&["--profile", profile, "token"])
                .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// All succeeded and printed the same token, which is new.
fn assert_one_new_token(s: &Setup, outputs: &[Output], old: &str) {
    let tokens: Vec<String> = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            stdout_of(o)
        })
        .collect();
    let first = tokens[0].trim_end().to_owned();
    assert!(tokens.iter().all(|t| t.trim_end() == first), "{tokens:?}");
    assert_ne!(first, old);
    assert!(s.is_app_token(&first));
    assert_eq!(
        s.portal.calls().token(Grant::ClientCredentials),
        1,
        "one token request between {PROCESSES} processes"
    );
    assert_eq!(s.portal.calls().endpoint(Endpoint::Token), 1);
    assert_eq!(s.portal.calls().secrets_in_url(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_processes_on_a_file_store_refresh_once() {
    let s = Setup::start().await;
    s.login_app("default");
    let old = s.token("default");
    expire(&s.file_store(), "default").await;
    s.portal.reset_calls();
    let outputs = token_race(&s, "default");
    assert_one_new_token(&s, &outputs, &old);
}

#[tokio::test(flavor = "multi_thread")]
async fn many_processes_on_redis_refresh_once() {
    let Some(redis) = RedisServer::for_test("many_processes_on_redis_refresh_once") else {
        return;
    };
    let mut s = Setup::start().await;
    s.store = redis.url().to_owned();
    // A profile of its own, so a shared server's other keys are never touched.
    let profile = RedisServer::unique_prefix();
    s.login_app(&profile);
    let old = s.token(&profile);
    let store: Arc<dyn SessionStore> = Arc::new(RedisStore::connect(redis.url()).await.unwrap());
    expire(&store, &profile).await;
    s.portal.reset_calls();
    let outputs = token_race(&s, &profile);
    assert_one_new_token(&s, &outputs, &old);
    // Clean up: the session is deleted (app tokens cannot be revoked).
    s.cmd(&["--profile", &profile, "logout"]).assert().success();
    assert!(
        store
            .load(&format!("profile/{profile}"))
            .await
            .unwrap()
            .is_none()
    );
}
