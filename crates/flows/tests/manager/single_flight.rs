//! 10,000 callers → one request; two managers over one store → one request.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, ManualClock};
use arcgis_auth_flows::{FlowErrorKind, Renewal};
use arcgis_auth_storage::{MemoryStore, SessionStore};
use tokio::sync::Semaphore;

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn ten_thousand_callers_of_an_expired_session_cause_one_request() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let source =
        Arc::new(FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_secs(1)));
    let manager = manager(source.clone(), store.clone(), &clock, exact_config());

    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let m = manager.clone();
            tokio::spawn(async move { m.token().await })
        })
        .collect();
    for task in tasks {
        let token = task.await.unwrap().unwrap();
        assert_eq!(token.secret().expose_secret(), "AT-SECRET-1");
    }
    assert_eq!(source.calls(), 1);
    assert_eq!(secret(&stored(&*store).await).0, "AT-SECRET-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_on_many_threads_cause_one_request() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    // The request is held until every caller has been spawned.
    let gate = Arc::new(Semaphore::new(0));
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken).with_gate(gate.clone()));
    let manager = manager(source.clone(), store, &clock, exact_config());

    let tasks: Vec<_> = (0..10_000)
        .map(|_| {
            let m = manager.clone();
            tokio::spawn(async move { m.token().await })
        })
        .collect();
    gate.add_permits(1_000);
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().secret().expose_secret(),
            "AT-SECRET-1"
        );
    }
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_managers_over_one_store_cause_one_request() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    // One source shared by both "processes", so its counter sees every request.
    let source =
        Arc::new(FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_secs(2)));
    let a = manager(source.clone(), store.clone(), &clock, exact_config());
    let b = manager(source.clone(), store.clone(), &clock, exact_config());

    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let m = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { m.token().await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().secret().expose_secret(),
            "AT-SECRET-1"
        );
    }
    assert_eq!(source.calls(), 1);
    // The lock was released: a later renewal by either manager takes it again.
    clock.advance(HOUR);
    assert_eq!(
        b.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-2"
    );
    assert_eq!(
        a.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-2"
    );
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_lock_held_elsewhere_is_waited_for_then_gives_up_with_a_typed_error() {
    let clock = ManualClock::new(START);
    let memory = MemoryStore::with_clock(Arc::new(clock.clone()));
    let store: Arc<dyn SessionStore> = Arc::new(memory.clone());
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    // "Another process" holds the lock and never stores anything.
    let lock = memory.refresh_lock().unwrap();
    let held = lock
        .try_acquire("user:jdoe", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store.clone(), &clock, exact_config());

    let started = tokio::time::Instant::now();
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::LockTimeout);
    assert!(err.is_transient());
    assert!(started.elapsed() >= exact_config().lock_wait);
    assert!(started.elapsed() < exact_config().lock_wait + Duration::from_secs(2));
    assert_eq!(source.calls(), 0);

    // Its lease runs out (by the store's clock): the next call takes over.
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    assert_eq!(source.calls(), 1);
    assert!(!lock.release(&held).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn a_waiting_manager_adopts_what_the_lock_holder_stores() {
    let clock = ManualClock::new(START);
    let memory = MemoryStore::with_clock(Arc::new(clock.clone()));
    let store: Arc<dyn SessionStore> = Arc::new(memory.clone());
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let lock = memory.refresh_lock().unwrap();
    let held = lock
        .try_acquire("user:jdoe", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store.clone(), &clock, exact_config());

    let waiting = tokio::spawn({
        let m = m.clone();
        async move { m.token().await }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!waiting.is_finished());
    // The other process finishes its refresh.
    seed(
        &*store,
        &user_record(
            "AT-SECRET-OTHER",
            START + 30 * MINUTE,
            Some(START + 10 * DAY),
        ),
    )
    .await;
    lock.release(&held).await.unwrap();
    let token = waiting.await.unwrap().unwrap();
    assert_eq!(token.secret().expose_secret(), "AT-SECRET-OTHER");
    assert_eq!(source.calls(), 0);
}
