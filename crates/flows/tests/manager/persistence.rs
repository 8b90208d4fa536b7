//! Every new token reaches the store; store failures never lose a valid session.

use std::sync::Arc;

use arcgis_auth_flows::{FlowErrorKind, Renewal, TokenManager};
use arcgis_auth_storage::test_util::{Fault, FaultyStore};
use arcgis_auth_storage::{MemoryStore, ServerTokenRecord, StoreErrorKind};

use crate::support::*;

/// A manager over a `FaultyStore` (with `record` stored, if any).
async fn flaky(
    record: Option<arcgis_auth_storage::SessionRecord>,
) -> (FaultyStore, Fixture, TokenManager) {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), None).await;
    let flaky = FaultyStore::new(MemoryStore::with_clock(Arc::new(fx.clock.clone())));
    if let Some(record) = record {
        seed(&flaky, &record).await;
    }
    let m = manager(
        fx.source.clone(),
        Arc::new(flaky.clone()),
        &fx.clock,
        exact_config(),
    );
    (flaky, fx, m)
}

fn store_down(flaky: &FaultyStore, down: bool) {
    flaky.set(Fault::LoadsFail, down);
    flaky.set(Fault::SavesFail, down);
}

#[tokio::test(start_paused = true)]
async fn a_manager_is_rebuilt_from_the_store_alone() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), None).await;
    let first = fx.manager();
    first.set_session(fresh_user()).await.unwrap();
    fx.clock.advance(31 * MINUTE);
    assert_eq!(token_of(&first).await, "AT-SECRET-1");
    drop(first);

    // "Restart": a new manager, nothing in memory.
    assert_eq!(token_of(&fx.manager()).await, "AT-SECRET-1");
    assert_eq!(fx.source.calls(), 1);
    let saved = stored(&*fx.store).await;
    assert_eq!(saved.updated_at, Some(START + 31 * MINUTE));
    assert_eq!(saved.client_id.as_deref(), Some("client-id"));
}

#[tokio::test(start_paused = true)]
async fn a_store_outage_does_not_lose_the_session_in_memory() {
    let (flaky, fx, m) = flaky(Some(fresh_user())).await;
    let (clock, source) = (&fx.clock, &fx.source);
    assert_eq!(token_of(&m).await, "AT-SECRET-0");

    // The store goes down entirely; the token expires.
    store_down(&flaky, true);
    clock.advance(31 * MINUTE);
    // Renewed from the session in memory, and served although it cannot be saved.
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    assert!(m.has_unsaved_changes().await);
    let err = m.persist().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::Store(StoreErrorKind::Unavailable)
    );
    assert!(err.is_transient());
    // Still served, without another request.
    for _ in 0..10 {
        assert_eq!(token_of(&m).await, "AT-SECRET-1");
    }
    assert_eq!(source.calls(), 1);
    assert_eq!(secret(&stored(flaky.inner()).await).0, "AT-SECRET-0");

    // The store comes back: the next look after `save_retry_after` saves it.
    store_down(&flaky, false);
    clock.advance(exact_config().save_retry_after);
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    // The save runs in the background while the token is served.
    m.wait_for_renewal().await;
    assert!(!m.has_unsaved_changes().await);
    assert_eq!(secret(&stored(flaky.inner()).await).0, "AT-SECRET-1");
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn persist_saves_on_demand() {
    let (flaky, fx, m) = flaky(None).await;
    let source = &fx.source;
    flaky.set(Fault::SavesFail, true);
    let err = m.set_session(fresh_user()).await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::Store(StoreErrorKind::Unavailable)
    );
    // The sign-in is served anyway.
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    assert!(flaky.inner().is_empty());

    flaky.set(Fault::SavesFail, false);
    m.persist().await.unwrap();
    assert_eq!(secret(&stored(flaky.inner()).await).0, "AT-SECRET-0");
    assert!(!m.has_unsaved_changes().await);
    assert_eq!(source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_store_without_a_session_in_memory_is_a_typed_error() {
    let (flaky, _fx, m) = flaky(Some(fresh_user())).await;
    flaky.set(Fault::LoadsFail, true);
    let err = m.token().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::Store(StoreErrorKind::Unavailable)
    );
    flaky.set(Fault::LoadsFail, false);
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
}

#[tokio::test(start_paused = true)]
async fn concurrent_writers_are_merged_not_overwritten() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(fresh_user())).await;
    let m = fx.manager();
    m.token().await.unwrap();
    // Someone else adds a field the manager does not own.
    let mut other = stored(&*fx.store).await;
    other.referer = Some("https://app.example.com".into());
    seed(&*fx.store, &other).await;

    fx.clock.advance(31 * MINUTE);
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    let saved = stored(&*fx.store).await;
    assert_eq!(saved.referer.as_deref(), Some("https://app.example.com"));
    assert_eq!(
        secret(&saved),
        ("AT-SECRET-1".into(), Some("RT-SECRET-0".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_deleted_elsewhere_ends_here_too() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(fresh_user())).await;
    let m = fx.manager();
    m.token().await.unwrap();
    fx.store.delete("user:jdoe", None).await.unwrap();
    fx.clock.advance(31 * MINUTE);
    assert_eq!(
        m.token().await.unwrap_err().kind(),
        FlowErrorKind::NoSession
    );
    assert_eq!(fx.source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn federated_server_tokens_are_dropped_when_the_portal_token_is_renewed() {
    let mut record = fresh_user();
    let server_token = ServerTokenRecord {
        token: "SERVER-SECRET".into(),
        expires_at: START + HOUR,
        ssl: true,
    };
    record
        .server_tokens
        .insert("https://gis.example.com/server".into(), server_token);
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(record)).await;
    let m = fx.manager();
    m.token().await.unwrap();
    assert_eq!(stored(&*fx.store).await.server_tokens.len(), 1);
    fx.clock.advance(31 * MINUTE);
    m.token().await.unwrap();
    assert!(stored(&*fx.store).await.server_tokens.is_empty());
}

#[tokio::test(start_paused = true)]
async fn clear_forgets_the_session_in_memory_only() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(fresh_user())).await;
    let m = fx.manager();
    assert!(
        m.session().await.is_none(),
        "nothing is loaded before the first call"
    );
    m.token().await.unwrap();
    assert_eq!(secret(&m.session().await.unwrap()).0, "AT-SECRET-0");

    // Signed out: deleted from the store, forgotten here.
    fx.store.delete("user:jdoe", None).await.unwrap();
    m.clear().await;
    assert!(m.cached().is_none());
    assert!(m.session().await.is_none());
    assert_eq!(
        m.token().await.unwrap_err().kind(),
        FlowErrorKind::NoSession
    );
    assert_eq!(fx.source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn saving_later_does_not_revive_a_token_reported_invalid() {
    let (flaky, fx, m) = flaky(Some(fresh_user())).await;
    m.token().await.unwrap();
    fx.clock.advance(31 * MINUTE);
    flaky.set(Fault::SavesFail, true);
    let renewed = m.token().await.unwrap();
    assert!(m.has_unsaved_changes().await);
    m.report_invalid(&renewed);
    flaky.set(Fault::SavesFail, false);
    m.persist().await.unwrap();
    assert!(
        m.cached().is_none(),
        "still reported invalid after the save"
    );
    assert_eq!(token_of(&m).await, "AT-SECRET-2");
}
