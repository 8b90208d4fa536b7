//! Sessions that renew by signing in again (app credentials, generateToken),
//! single flight within a process and across two over one store file.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, HttpClient};
use arcgis_auth_flows::profile::{RenewalSecrets, StoredSession};
use arcgis_auth_flows::{FlowErrorKind, TokenManager};
use arcgis_auth_storage::{FileStore, SessionStore};
use arcgis_auth_testkit::{Endpoint, Failure, Grant, PASSWORD, USERNAME};
use tokio::task::JoinSet;

use crate::support::*;

/// `callers` concurrent `token()` calls, each on its own task; the secrets they got.
async fn concurrent_tokens(managers: &[TokenManager], callers: usize) -> Vec<String> {
    let mut tasks = JoinSet::new();
    for i in 0..callers {
        let manager = managers[i % managers.len()].clone();
        tasks.spawn(async move { manager.token().await });
    }
    let mut secrets = Vec::with_capacity(callers);
    while let Some(joined) = tasks.join_next().await {
        secrets.push(joined.unwrap().unwrap().secret().expose_secret().to_owned());
    }
    secrets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_credentials_sign_in_again_on_expiry_once_for_ten_thousand_callers() {
    let kit = Kit::start().await;
    let signed_in = kit.app_sign_in().sign_in().await.unwrap();
    let first = signed_in.token().access_token().expose_secret().to_owned();
    let manager = signed_in
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        first
    );
    assert_eq!(kit.portal.calls().token(Grant::ClientCredentials), 1);

    // The 2-hour app token expires: the app signs in again.
    kit.clock.advance(2 * HOUR + MINUTE);
    let second = manager.token().await.unwrap();
    assert_ne!(second.secret().expose_secret(), first);
    assert_eq!(kit.portal.calls().token(Grant::ClientCredentials), 2);

    // Expired again, and 10,000 callers at once: one token request.
    kit.clock.advance(2 * HOUR + MINUTE);
    let secrets = concurrent_tokens(std::slice::from_ref(&manager), 10_000).await;
    assert_eq!(secrets.len(), 10_000);
    assert!(secrets.iter().all(|s| s == &secrets[0]));
    assert_ne!(secrets[0], second.secret().expose_secret());
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::ClientCredentials), 3);
    assert_eq!(calls.endpoint(Endpoint::Token), 3);
    assert_eq!(calls.secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{manager:?} {second:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn generate_token_signs_in_again_with_the_password_in_memory_only() {
    let kit = Kit::start().await;
    let sign_in = kit.password_sign_in();
    let signed_in = sign_in
        .sign_in(USERNAME, PASSWORD.to_owned().into())
        .await
        .unwrap();
    assert_eq!(signed_in.token().username(), Some(USERNAME));
    let manager = signed_in
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    let first = manager.token().await.unwrap();
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 1);

    // The 60-minute token expires: signed in again with the remembered password.
    kit.clock.advance(61 * MINUTE);
    let second = manager.token().await.unwrap();
    assert!(!second.same_token(&first));
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 2);

    // The store never saw the password...
    let stored = kit.stored().await.unwrap();
    let stored_text = serde_json::to_string(&stored).unwrap();
    assert!(!stored_text.contains(PASSWORD));
    // ...so a manager rebuilt from the store alone (a restart) serves the
    // stored token while it lasts, then asks for a sign-in.
    let rebuilt = kit.manager_from_store(kit.store.clone());
    assert!(rebuilt.token().await.unwrap().same_token(&second));
    kit.clock.advance(61 * MINUTE);
    let err = rebuilt.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired, "{err}");
    assert!(err.to_string().contains("sign in again"), "{err}");
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 2);

    // The same with the strategy itself, built without credentials.
    let bare = TokenManager::builder(kit.password_sign_in(), kit.store.clone(), KEY)
        .clock(kit.arc_clock())
        .config(config())
        .build()
        .unwrap();
    assert_eq!(
        bare.token().await.unwrap_err().kind(),
        FlowErrorKind::SignInRequired
    );
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 2);
    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{manager:?} {rebuilt:?} {sign_in:?} {err:?}"));
    finish(kit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_over_one_store_file_refresh_once() {
    let kit = Kit::start().await;
    // Two handles on one file, as two processes would open it: they share
    // nothing in memory, only the file and its lock.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.json");
    let open = || -> Arc<dyn SessionStore> { Arc::new(FileStore::new(&file).unwrap()) };
    let (store_a, store_b) = (open(), open());

    let a = kit
        .signed_in_user()
        .await
        .into_manager_with(store_a, KEY, config())
        .await
        .unwrap();
    // The second process knows nothing but the store.
    let b = kit.manager_from_store(store_b);
    assert!(
        a.token()
            .await
            .unwrap()
            .same_token(&b.token().await.unwrap())
    );

    kit.clock.advance(31 * MINUTE);
    let secrets = concurrent_tokens(&[a.clone(), b.clone()], 200).await;
    assert!(secrets.iter().all(|s| s == &secrets[0]));
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 1);
    assert_eq!(calls.endpoint(Endpoint::Token), 2); // the sign-in and the refresh
    let stored = open().load(KEY).await.unwrap().unwrap().record;
    assert_eq!(
        stored.access_token.unwrap().expose_secret(),
        secrets[0].as_str()
    );
    finish(kit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_over_one_store_file_rotate_the_refresh_token_once_and_both_keep_working() {
    let kit = Kit::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.json");
    let open = || -> Arc<dyn SessionStore> { Arc::new(FileStore::new(&file).unwrap()) };
    // A two-day refresh token, signed in through the listener.
    let (signed_in, _, _) = kit.sign_in_with_listener().await;
    let a = signed_in
        .into_manager_with(open(), KEY, config())
        .await
        .unwrap();
    let b = kit.manager_from_store(open());

    // Both in the refresh token's last day at once: ONE exchange (the portal
    // would reject a second exchange of the rotated token), both adopt it.
    kit.clock.advance(36 * HOUR + 31 * MINUTE);
    let secrets = concurrent_tokens(&[a.clone(), b.clone()], 100).await;
    assert!(secrets.iter().all(|s| s == &secrets[0]));
    assert_eq!(kit.portal.calls().token(Grant::ExchangeRefreshToken), 1);

    // Neither is stranded with the dead refresh token: each renews again.
    kit.clock.advance(31 * MINUTE);
    let from_b = b.token().await.unwrap();
    kit.clock.advance(31 * MINUTE);
    let from_a = a.token().await.unwrap();
    assert!(!from_a.same_token(&from_b));
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 2);
    assert_eq!(calls.token(Grant::ExchangeRefreshToken), 1);
    finish(kit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_slower_than_the_lock_lease_still_sees_one_exchange_and_strands_nobody() {
    let kit = Kit::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.json");
    let open = || -> Arc<dyn SessionStore> { Arc::new(FileStore::new(&file).unwrap()) };
    // A lease of one second, and a portal that answers the exchange after
    // two and a half (it rotates the refresh token at once, like a real one).
    let mut config = config();
    config.lock_lease = Duration::from_secs(1);
    config.attempt_timeout = Duration::from_secs(5);
    config.retry.max_retries = 0;
    config.lock_wait = Duration::from_secs(10);
    // Two processes: each its own store handle and its own HTTP client.
    let (signed_in, _, _) = kit.sign_in_with_listener().await;
    let a = signed_in
        .into_manager_with(open(), KEY, config.clone())
        .await
        .unwrap();
    let b = TokenManager::builder(
        StoredSession::new(HttpClient::new().unwrap(), RenewalSecrets::new())
            .with_clock(kit.arc_clock()),
        open(),
        KEY,
    )
    .clock(kit.arc_clock())
    .config(config)
    .build()
    .unwrap();

    // Expired, and in the refresh token's last day: an exchange is due.
    kit.clock.advance(36 * HOUR + 31 * MINUTE);
    kit.portal
        .fail_next_token_calls(1, Failure::Slow(Duration::from_millis(2500)));
    let results = {
        let mut tasks = JoinSet::new();
        for i in 0..40 {
            let manager = [&a, &b][i % 2].clone();
            tasks.spawn(async move { manager.token().await });
        }
        tasks.join_all().await
    };
    // Nobody is stranded: the holder kept its lease while the portal took
    // its time, the other process waited and adopted the new token.
    let secrets: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().secret().expose_secret().to_owned())
        .collect();
    assert!(secrets.iter().all(|s| s == &secrets[0]));
    assert_eq!(kit.portal.calls().token(Grant::ExchangeRefreshToken), 1);
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 0);
    assert_eq!(
        secrets[0],
        b.token().await.unwrap().secret().expose_secret()
    );
    assert_eq!(
        secrets[0],
        a.token().await.unwrap().secret().expose_secret()
    );
    // Both go on with the rotated refresh token.
    kit.clock.advance(31 * MINUTE);
    b.token().await.unwrap();
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 1);
    finish(kit).await;
}

#[test]
fn a_lock_wait_shorter_than_the_holders_longest_renewal_is_refused() {
    let mut config = config();
    config.attempt_timeout = Duration::from_secs(20);
    config.retry.max_retries = 3;
    // 4 × 20 s + 3 × 10 ms > 60 s.
    config.lock_wait = Duration::from_secs(60);
    let built = TokenManager::builder(
        arcgis_auth_flows::signin::NeverRenewed,
        Arc::new(arcgis_auth_storage::MemoryStore::new()),
        KEY,
    )
    .config(config.clone())
    .build();
    let err = built.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("lock_wait"), "{err}");
    // Long enough: accepted.
    config.lock_wait = config.longest_renewal();
    TokenManager::builder(
        arcgis_auth_flows::signin::NeverRenewed,
        Arc::new(arcgis_auth_storage::MemoryStore::new()),
        KEY,
    )
    .config(config.clone())
    .build()
    .unwrap();
    // A lease too short to extend, a zero attempt timeout: refused too.
    let mut short_lease = config.clone();
    short_lease.lock_lease = Duration::from_millis(10);
    let mut no_time = config.clone();
    no_time.attempt_timeout = Duration::ZERO;
    for broken in [short_lease, no_time] {
        let err = TokenManager::builder(
            arcgis_auth_flows::signin::NeverRenewed,
            Arc::new(arcgis_auth_storage::MemoryStore::new()),
            KEY,
        )
        .config(broken)
        .build()
        .unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::InvalidConfig, "{err}");
    }
}
