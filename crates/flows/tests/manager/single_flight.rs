//! 10,000 callers → one request; two managers over one store → one request.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_flows::{FlowErrorKind, Renewal};
use tokio::sync::Semaphore;

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn ten_thousand_callers_of_an_expired_session_cause_one_request() {
    let source = FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_secs(1));
    let fx = Fixture::new(source, Some(expired_user())).await;
    all_callers_get(&[fx.manager()], 10_000, "AT-SECRET-1").await;
    assert_eq!(fx.source.calls(), 1);
    assert_eq!(secret(&stored(&*fx.store).await).0, "AT-SECRET-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_on_many_threads_cause_one_request() {
    // The request is held until every caller has been spawned.
    let gate = Arc::new(Semaphore::new(0));
    let source = FakeSource::new(Renewal::RefreshToken).with_gate(gate.clone());
    let fx = Fixture::new(source, Some(expired_user())).await;
    let callers = spawn_callers(&[fx.manager()], 10_000);
    gate.add_permits(1_000);
    expect_tokens(callers, "AT-SECRET-1").await;
    assert_eq!(fx.source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_managers_over_one_store_cause_one_request() {
    // One source shared by both "processes", so its counter sees every request.
    let source = FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_secs(2));
    let fx = Fixture::new(source, Some(expired_user())).await;
    let (a, b) = (fx.manager(), fx.manager());
    all_callers_get(&[a.clone(), b.clone()], 200, "AT-SECRET-1").await;
    assert_eq!(fx.source.calls(), 1);

    // The lock was released: a later renewal by either manager takes it again,
    // and the other adopts the result from the store.
    fx.clock.advance(HOUR);
    assert_eq!(token_of(&b).await, "AT-SECRET-2");
    assert_eq!(token_of(&a).await, "AT-SECRET-2");
    assert_eq!(fx.source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_lock_held_elsewhere_is_waited_for_then_gives_up_with_a_typed_error() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(expired_user())).await;
    // "Another process" holds the lock and never stores anything.
    let held = fx.hold_lock().await;
    let m = fx.manager();

    let started = tokio::time::Instant::now();
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::LockTimeout);
    assert!(err.is_transient());
    let lock_wait = exact_config().lock_wait;
    assert!(started.elapsed() >= lock_wait);
    assert!(started.elapsed() < lock_wait + Duration::from_secs(2));
    assert_eq!(fx.source.calls(), 0);

    // Its lease runs out (by the store's clock): the next call takes over.
    fx.clock.advance(Duration::from_secs(31));
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    assert_eq!(fx.source.calls(), 1);
    assert!(!fx.release(&held).await);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_manager_adopts_what_the_lock_holder_stores() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(expired_user())).await;
    let m = fx.manager();
    waits_for_the_lock_holder_and_adopts_its_token(&fx, m).await;
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_lock_wait_waits_for_the_holder_instead_of_panicking() {
    // `Duration::MAX` reads as "wait as long as it takes" (and a huge first
    // poll pause as "look rarely"); neither may overflow tokio's clock.
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(expired_user())).await;
    let mut config = exact_config();
    config.lock_wait = Duration::MAX;
    config.lock_poll = Duration::MAX;
    let m = fx.manager_with(config);
    waits_for_the_lock_holder_and_adopts_its_token(&fx, m).await;
}

/// "Another process" holds the lock while `m` needs a renewal: `m` waits,
/// and takes the token the other process stores, without a request of its own.
async fn waits_for_the_lock_holder_and_adopts_its_token(
    fx: &Fixture,
    m: arcgis_auth_flows::TokenManager,
) {
    let held = fx.hold_lock().await;
    let waiting = tokio::spawn(async move { m.token().await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!waiting.is_finished());

    // The other process finishes its refresh.
    let theirs = user_record(
        "AT-SECRET-OTHER",
        START + 30 * MINUTE,
        Some(START + 10 * DAY),
    );
    seed(&*fx.store, &theirs).await;
    assert!(fx.release(&held).await);
    let token = waiting.await.unwrap().unwrap();
    assert_eq!(
        arcgis_auth_core::ExposeSecret::expose_secret(token.secret()),
        "AT-SECRET-OTHER"
    );
    assert_eq!(fx.source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_does_not_cancel_the_renewal_for_the_others() {
    let source = FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_secs(2));
    let fx = Fixture::new(source, Some(expired_user())).await;
    let m = fx.manager();
    let impatient = tokio::time::timeout(Duration::from_millis(100), m.token()).await;
    assert!(impatient.is_err(), "the first caller gave up");
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    assert_eq!(fx.source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_dies_releases_its_waiters_and_the_next_call_starts_afresh() {
    let source = FakeSource::new(Renewal::RefreshToken)
        .with_delay(Duration::from_millis(100))
        .script(&[Step::Panic]);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let m = fx.manager();
    // A panic is a bug in the source, and every waiter is told so, with the
    // panic's message (it used to reach them as an interruption).
    for task in spawn_callers(std::slice::from_ref(&m), 10) {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::SourcePanicked, "{err}");
        assert!(err.to_string().contains("bug in the token source"), "{err}");
        assert!(
            err.to_string().contains("scripted panic in the source"),
            "{err}"
        );
    }
    assert_eq!(token_of(&m).await, "AT-SECRET-2");
    assert_eq!(fx.source.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sharing_a_store_file_make_one_request() {
    // Two FileStore handles on one file, as two processes would open it: they
    // share nothing in memory, only the file and its lease file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sessions.json");
    let open = || -> std::sync::Arc<dyn arcgis_auth_storage::SessionStore> {
        std::sync::Arc::new(arcgis_auth_storage::FileStore::new(&file).unwrap())
    };
    seed(&*open(), &expired_user()).await;
    let source =
        Arc::new(FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_millis(300)));
    let clock = arcgis_auth_core::ManualClock::new(START);
    let a = manager(source.clone(), open(), &clock, exact_config());
    let b = manager(source.clone(), open(), &clock, exact_config());
    all_callers_get(&[a, b], 200, "AT-SECRET-1").await;
    assert_eq!(source.calls(), 1);
    assert_eq!(secret(&stored(&*open()).await).0, "AT-SECRET-1");
}
