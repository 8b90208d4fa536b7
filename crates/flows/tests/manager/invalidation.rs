//! "This token got a 498": one renewal, however many callers report it.

use std::time::Duration;

use arcgis_auth_core::Timestamp;
use arcgis_auth_flows::{FlowErrorKind, Renewal};

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn a_storm_of_reports_of_one_token_causes_one_renewal() {
    let source = FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_millis(300));
    let fx = Fixture::new(source, Some(fresh_user())).await;
    let m = fx.manager();
    let fresh = m.token().await.unwrap();

    // 1,000 callers all got a 498 with the fresh-looking token.
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let (m, rejected) = (m.clone(), fresh.clone());
            tokio::spawn(async move {
                m.report_invalid(&rejected);
                m.token().await
            })
        })
        .collect();
    expect_tokens(tasks, "AT-SECRET-1").await;
    assert_eq!(fx.source.calls(), 1);

    // Late reports of the replaced token change nothing.
    assert!(!m.report_invalid(&fresh));
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    assert_eq!(fx.source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_the_first_report_counts() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(fresh_user())).await;
    let m = fx.manager();
    let token = m.token().await.unwrap();
    assert!(m.report_invalid(&token));
    assert!(!m.report_invalid(&token));
    assert!(m.cached().is_none(), "a reported token is not served");
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_not_re_adopted_from_the_store() {
    // The store still holds the rejected token: the manager must renew, not adopt it.
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(fresh_user())).await;
    let (a, b) = (fx.manager(), fx.manager());
    let token = a.token().await.unwrap();
    b.token().await.unwrap();
    a.report_invalid(&token);
    assert_eq!(token_of(&a).await, "AT-SECRET-1");
    // B reports the same rejected token later: it adopts A's renewal from the store.
    b.report_invalid(&token);
    assert_eq!(token_of(&b).await, "AT-SECRET-1");
    assert_eq!(fx.source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_api_key_is_a_typed_error_without_a_request() {
    let key = user_record("AT-SECRET-KEY", Timestamp::MAX, None);
    let fx = Fixture::new(FakeSource::new(Renewal::Never), Some(key)).await;
    let m = fx.manager();
    let key = m.token().await.unwrap();
    // Never due for renewal, however far time moves.
    fx.clock.advance(365 * DAY);
    assert!(m.cached().is_some());
    m.report_invalid(&key);
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NotRenewable);
    assert!(err.to_string().contains("498"), "{err}");
    assert_eq!(fx.source.calls(), 0);
}
