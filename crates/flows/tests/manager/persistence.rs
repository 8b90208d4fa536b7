//! Every new token reaches the store; store failures never lose a valid session.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arcgis_auth_core::{ExposeSecret, ManualClock};
use arcgis_auth_flows::{FlowErrorKind, Renewal};
use arcgis_auth_storage::{MemoryStore, SessionStore, StoreErrorKind};

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn a_manager_is_rebuilt_from_the_store_alone() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let first = manager(source.clone(), store.clone(), &clock, exact_config());
    first
        .set_session(user_record(
            "AT-SECRET-0",
            START + 30 * MINUTE,
            Some(START + 10 * DAY),
        ))
        .await
        .unwrap();
    clock.advance(31 * MINUTE);
    assert_eq!(
        first.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    drop(first);

    // "Restart": a new manager, nothing in memory.
    let second = manager(source.clone(), store.clone(), &clock, exact_config());
    assert_eq!(
        second.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    assert_eq!(source.calls(), 1);
    let saved = stored(&*store).await;
    assert_eq!(saved.updated_at, Some(START + 31 * MINUTE));
    assert_eq!(saved.client_id.as_deref(), Some("client-id"));
}

#[tokio::test(start_paused = true)]
async fn a_store_outage_does_not_lose_the_session_in_memory() {
    let clock = ManualClock::new(START);
    let flaky = FlakyStore::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &flaky,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let store: Arc<dyn SessionStore> = Arc::new(flaky.clone());
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store, &clock, exact_config());
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-0"
    );

    // The store goes down entirely; the token expires.
    flaky.fail_loads.store(true, Ordering::SeqCst);
    flaky.fail_saves.store(true, Ordering::SeqCst);
    clock.advance(31 * MINUTE);
    // Renewed from the session in memory, and served although it cannot be saved.
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    assert!(m.has_unsaved_changes().await);
    let err = m.persist().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::Store(StoreErrorKind::Unavailable)
    );
    assert!(err.is_transient());
    // Still served, without another request.
    for _ in 0..10 {
        assert_eq!(
            m.token().await.unwrap().secret().expose_secret(),
            "AT-SECRET-1"
        );
    }
    assert_eq!(source.calls(), 1);
    assert_eq!(secret(&stored(&flaky.inner).await).0, "AT-SECRET-0");

    // The store comes back: the next look after `save_retry_after` saves it.
    flaky.fail_loads.store(false, Ordering::SeqCst);
    flaky.fail_saves.store(false, Ordering::SeqCst);
    clock.advance(exact_config().save_retry_after);
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    assert!(!m.has_unsaved_changes().await);
    assert_eq!(secret(&stored(&flaky.inner).await).0, "AT-SECRET-1");
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn persist_saves_on_demand() {
    let clock = ManualClock::new(START);
    let flaky = FlakyStore::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let store: Arc<dyn SessionStore> = Arc::new(flaky.clone());
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store, &clock, exact_config());

    flaky.fail_saves.store(true, Ordering::SeqCst);
    let err = m
        .set_session(user_record(
            "AT-SECRET-0",
            START + 30 * MINUTE,
            Some(START + 10 * DAY),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::Store(StoreErrorKind::Unavailable)
    );
    // The sign-in is served anyway.
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-0"
    );
    assert!(flaky.inner.is_empty());

    flaky.fail_saves.store(false, Ordering::SeqCst);
    m.persist().await.unwrap();
    assert_eq!(secret(&stored(&flaky.inner).await).0, "AT-SECRET-0");
    assert!(!m.has_unsaved_changes().await);
    assert_eq!(source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_store_without_a_session_in_memory_is_a_typed_error() {
    let clock = ManualClock::new(START);
    let flaky = FlakyStore::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &flaky,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    flaky.fail_loads.store(true, Ordering::SeqCst);
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(
        source.clone(),
        Arc::new(flaky.clone()),
        &clock,
        exact_config(),
    );
    let err = m.token().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::Store(StoreErrorKind::Unavailable)
    );
    flaky.fail_loads.store(false, Ordering::SeqCst);
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-0"
    );
}

#[tokio::test(start_paused = true)]
async fn concurrent_writers_are_merged_not_overwritten() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store.clone(), &clock, exact_config());
    m.token().await.unwrap();
    // Someone else adds a field the manager does not own.
    let mut other = stored(&*store).await;
    other.referer = Some("https://app.example.com".into());
    seed(&*store, &other).await;

    clock.advance(31 * MINUTE);
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    let saved = stored(&*store).await;
    assert_eq!(saved.referer.as_deref(), Some("https://app.example.com"));
    assert_eq!(
        secret(&saved),
        ("AT-SECRET-1".into(), Some("RT-SECRET-0".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_deleted_elsewhere_ends_here_too() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store.clone(), &clock, exact_config());
    m.token().await.unwrap();
    store.delete("user:jdoe", None).await.unwrap();
    clock.advance(31 * MINUTE);
    assert_eq!(
        m.token().await.unwrap_err().kind(),
        FlowErrorKind::NoSession
    );
    assert_eq!(source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn federated_server_tokens_are_dropped_when_the_portal_token_is_renewed() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let mut record = user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY));
    record.server_tokens.insert(
        "https://gis.example.com/server".into(),
        arcgis_auth_storage::ServerTokenRecord {
            token: "SERVER-SECRET".into(),
            expires_at: START + HOUR,
            ssl: true,
        },
    );
    seed(&*store, &record).await;
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store.clone(), &clock, exact_config());
    m.token().await.unwrap();
    assert_eq!(stored(&*store).await.server_tokens.len(), 1);
    clock.advance(31 * MINUTE);
    m.token().await.unwrap();
    assert!(stored(&*store).await.server_tokens.is_empty());
}
