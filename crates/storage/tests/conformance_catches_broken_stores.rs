//! The conformance suite is only worth running if it fails broken stores: each
//! store here breaks one rule, and the matching check must panic.

use arcgis_auth_storage::test_util::{Fault, FaultyStore};
use arcgis_auth_storage::{SaveMode, SessionStore, StoreErrorKind, conformance};

/// A memory store that breaks one rule:
///
/// - `SavesOverwrite`: `Update` and `Create` behave like `Overwrite`;
/// - `ErrorsQuoteTokens`: conflict errors quote the record's access token;
/// - `NoEvents`: `subscribe` returns a receiver nobody sends to;
/// - `LockAlwaysGranted`: every `try_acquire` succeeds;
/// - `ListIgnoresPrefix`: `list` ignores the prefix.
fn broken(flaw: Fault) -> FaultyStore {
    let store = FaultyStore::new(arcgis_auth_storage::MemoryStore::new());
    store.set(flaw, true);
    store
}

/// Runs `check` in its own task and returns whether it panicked.
async fn panics<F>(check: F) -> bool
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(check).await.is_err_and(|e| e.is_panic())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_flaw_is_caught() {
    let s = broken(Fault::SavesOverwrite);
    assert!(panics(async move { conformance::create_conflicts(&s).await }).await);
    let s = broken(Fault::SavesOverwrite);
    assert!(panics(async move { conformance::concurrent_updates(|| s.clone()).await }).await);

    let s = broken(Fault::ErrorsQuoteTokens);
    assert!(panics(async move { conformance::no_secrets_in_errors(&s).await }).await);

    let (a, b) = (
        broken(Fault::LockAlwaysGranted),
        broken(Fault::LockAlwaysGranted),
    );
    assert!(panics(async move { conformance::refresh_lock_exclusion(&a, &b).await }).await);

    let s = broken(Fault::ListIgnoresPrefix);
    assert!(panics(async move { conformance::list_by_prefix(&s).await }).await);
}

#[tokio::test(start_paused = true)]
async fn missing_events_are_caught() {
    // Paused time: the check's wait for the event runs out without sleeping.
    let s = broken(Fault::NoEvents);
    assert!(panics(async move { conformance::change_events(&s).await }).await);
}

#[tokio::test]
async fn the_conflict_check_sees_the_real_error_kind() {
    // Sanity check of the harness itself: a correct store passes the same checks.
    let s = broken(Fault::ListIgnoresPrefix);
    let t = s.clone();
    assert!(!panics(async move { conformance::create_conflicts(&t).await }).await);
    assert_eq!(
        s.save("k", &conformance::sample_record(), SaveMode::Create)
            .await
            .and(
                s.save("k", &conformance::sample_record(), SaveMode::Create)
                    .await
            )
            .unwrap_err()
            .kind(),
        StoreErrorKind::Conflict
    );
}
