//! Nothing waits for a renewal in flight: `session()`, `clear()` and a
//! sign-out elsewhere take effect at once, and what the renewal finds, when
//! it lands, never brings back a session that was forgotten or deleted.

use std::time::Duration;

use arcgis_auth_flows::{FlowErrorKind, Renewal};

use crate::support::*;

/// How long each renewal takes.
const SLOW: Duration = Duration::from_secs(10);

/// A manager whose token is due for renewal but valid for four more
/// minutes, with a renewal of `SLOW` started in the background.
async fn renewing_in_the_background() -> (Fixture, arcgis_auth_flows::TokenManager) {
    let source = FakeSource::new(Renewal::RefreshToken).with_delay(SLOW);
    let fx = Fixture::new(source, Some(fresh_user())).await;
    let m = fx.manager();
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    fx.clock.advance(26 * MINUTE);
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    // Let the renewal reach the source (no time passes).
    while fx.source.calls() == 0 {
        tokio::task::yield_now().await;
    }
    (fx, m)
}

/// Lets the renewal in flight land (on the paused clock).
async fn let_it_land() {
    tokio::time::sleep(SLOW + Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn session_answers_at_once_while_a_renewal_is_in_flight() {
    let (fx, m) = renewing_in_the_background().await;
    let started = tokio::time::Instant::now();
    let record = m.session().await.expect("a session");
    assert_eq!(secret(&record).0, "AT-SECRET-0");
    assert!(!m.has_unsaved_changes().await);
    assert_eq!(started.elapsed(), Duration::ZERO, "session() waited");

    m.wait_for_renewal().await;
    assert_eq!(started.elapsed(), SLOW);
    assert_eq!(secret(&m.session().await.unwrap()).0, "AT-SECRET-1");
    assert_eq!(secret(&stored(&*fx.store).await).0, "AT-SECRET-1");
}

#[tokio::test(start_paused = true)]
async fn clear_takes_effect_at_once_and_the_renewal_does_not_bring_the_session_back() {
    let (fx, m) = renewing_in_the_background().await;
    let started = tokio::time::Instant::now();
    m.clear().await;
    assert_eq!(started.elapsed(), Duration::ZERO, "clear() waited");
    assert!(m.session().await.is_none());
    assert!(m.cached().is_none());

    // The renewal lands (and saved its token: the store is not the
    // manager's to clear), but the memory stays forgotten.
    let_it_land().await;
    assert_eq!(fx.source.calls(), 1);
    assert_eq!(secret(&stored(&*fx.store).await).0, "AT-SECRET-1");
    assert!(
        m.session().await.is_none(),
        "the renewal resurrected the session"
    );
    assert!(m.cached().is_none(), "the renewal resurrected the token");
    // The next call loads the session from the store, as after any clear().
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    assert_eq!(fx.source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_sign_out_elsewhere_takes_effect_while_a_renewal_is_in_flight() {
    let (fx, m) = renewing_in_the_background().await;
    // Another process signs out: it deletes the session from the store.
    assert!(fx.store.delete("user:jdoe", None).await.unwrap());
    let started = tokio::time::Instant::now();
    // The watcher forgets it at once, without waiting for the renewal.
    while m.session().await.is_some() {
        tokio::task::yield_now().await;
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(m.cached().is_none());
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NoSession, "{err}");

    // The renewal lands: neither the memory nor the store gets the session back.
    let_it_land().await;
    assert_eq!(fx.source.calls(), 1);
    assert!(fx.store.load("user:jdoe").await.unwrap().is_none());
    assert!(
        m.session().await.is_none(),
        "the renewal resurrected the session"
    );
    assert!(m.cached().is_none());
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NoSession, "{err}");
}

#[tokio::test(start_paused = true)]
async fn callers_waiting_for_a_renewal_learn_of_a_sign_out_elsewhere() {
    let source = FakeSource::new(Renewal::RefreshToken).with_delay(SLOW);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let m = fx.manager();
    let waiters = spawn_callers(std::slice::from_ref(&m), 10);
    while fx.source.calls() == 0 {
        tokio::task::yield_now().await;
    }
    assert!(fx.store.delete("user:jdoe", None).await.unwrap());
    for waiter in waiters {
        let err = waiter.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::NoSession, "{err}");
    }
    assert!(fx.store.load("user:jdoe").await.unwrap().is_none());
    assert!(m.session().await.is_none());
}
