//! "This token got a 498": one renewal, however many callers report it.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, ManualClock};
use arcgis_auth_flows::{FlowErrorKind, Renewal};
use arcgis_auth_storage::{MemoryStore, SessionStore};

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn a_storm_of_reports_of_one_token_causes_one_renewal() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let source =
        Arc::new(FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_millis(300)));
    let m = manager(source.clone(), store, &clock, exact_config());
    let fresh = m.token().await.unwrap();
    assert_eq!(fresh.secret().expose_secret(), "AT-SECRET-0");

    // 1,000 callers all got a 498 with the fresh-looking token.
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let m = m.clone();
            let rejected = fresh.clone();
            tokio::spawn(async move {
                m.report_invalid(&rejected);
                m.token().await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap().secret().expose_secret(),
            "AT-SECRET-1"
        );
    }
    assert_eq!(source.calls(), 1);

    // Late reports of the replaced token change nothing.
    assert!(!m.report_invalid(&fresh));
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_the_first_report_counts() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store, &clock, exact_config());
    let token = m.token().await.unwrap();
    assert!(m.report_invalid(&token));
    assert!(!m.report_invalid(&token));
    assert!(m.cached().is_none(), "a reported token is not served");
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_not_re_adopted_from_the_store() {
    // The store still holds the rejected token: the manager must renew, not adopt it.
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken));
    let a = manager(source.clone(), store.clone(), &clock, exact_config());
    let b = manager(source.clone(), store.clone(), &clock, exact_config());
    let token = a.token().await.unwrap();
    b.token().await.unwrap();
    a.report_invalid(&token);
    assert_eq!(
        a.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    // B reports the same rejected token later: it adopts A's renewal from the store.
    b.report_invalid(&token);
    assert_eq!(
        b.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-1"
    );
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_api_key_is_a_typed_error_without_a_request() {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    seed(
        &*store,
        &user_record("AT-SECRET-KEY", arcgis_auth_core::Timestamp::MAX, None),
    )
    .await;
    let source = Arc::new(FakeSource::new(Renewal::Never));
    let m = manager(source.clone(), store, &clock, exact_config());
    let key = m.token().await.unwrap();
    // Never due for renewal, however far time moves.
    clock.advance(365 * DAY);
    assert!(m.cached().is_some());
    m.report_invalid(&key);
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NotRenewable);
    assert!(err.to_string().contains("498"), "{err}");
    assert_eq!(source.calls(), 0);
}
