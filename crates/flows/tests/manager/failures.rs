//! Failures never poison; transient ones are retried, boundedly; permanent ones are not.

use std::time::Duration;

use arcgis_auth_core::ErrorKind;
use arcgis_auth_flows::{FlowErrorKind, Renewal};

use crate::support::*;

fn refreshing(steps: &[Step]) -> FakeSource {
    FakeSource::new(Renewal::RefreshToken).script(steps)
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_reaches_every_waiter_and_the_next_call_tries_again() {
    let source =
        refreshing(&[Step::Fail(ErrorKind::InvalidClient)]).with_delay(Duration::from_millis(500));
    let fx = Fixture::new(source, Some(expired_user())).await;
    let m = fx.manager();
    all_callers_fail(&m, 100, FlowErrorKind::ArcGis(ErrorKind::InvalidClient)).await;
    // Permanent: not retried.
    assert_eq!(fx.source.calls(), 1);

    // Not poisoned: the next call makes a new request, which succeeds.
    assert_eq!(token_of(&m).await, "AT-SECRET-2");
    assert_eq!(fx.source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_bounded_backoff() {
    let source = refreshing(&[
        Step::Fail(ErrorKind::Transport),
        Step::Fail(ErrorKind::Server),
    ]);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let started = tokio::time::Instant::now();
    assert_eq!(token_of(&fx.manager()).await, "AT-SECRET-3");
    assert_eq!(fx.source.calls(), 3);
    // Two pauses: at least half of each ceiling (200 ms, 400 ms), at most the ceilings.
    let retry = exact_config().retry;
    let (waited, ceilings) = (started.elapsed(), retry.ceiling(1) + retry.ceiling(2));
    assert!(waited >= ceilings / 2 && waited <= ceilings, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn transient_retries_stop_after_the_configured_number() {
    let server = Step::Fail(ErrorKind::Server);
    let source = refreshing(&[
        Step::Fail(ErrorKind::RateLimited),
        server,
        server,
        server,
        server,
    ]);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let mut config = exact_config();
    config.retry.max_retries = 3;
    let m = fx.manager_with(config.clone());

    let started = tokio::time::Instant::now();
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::Server));
    assert!(err.is_transient());
    assert_eq!(fx.source.calls(), 4, "one attempt and three retries");
    let ceilings: Duration = (1..=3).map(|n| config.retry.ceiling(n)).sum();
    assert!(started.elapsed() <= ceilings);

    // The script's last failure is used up by the next call's first attempt; then success.
    assert_eq!(token_of(&m).await, "AT-SECRET-6");
    assert_eq!(fx.source.calls(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_failed_early_refresh_keeps_serving_the_valid_token() {
    let source = refreshing(&[Step::Fail(ErrorKind::InvalidRequest)]);
    // Valid for 30 minutes from START; due after 25.
    let fx = Fixture::new(source, Some(fresh_user())).await;
    let m = fx.manager();
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    assert_eq!(fx.source.calls(), 0);

    fx.clock.advance(26 * MINUTE);
    // The early refresh fails: every caller keeps getting the valid token.
    for _ in 0..50 {
        assert_eq!(token_of(&m).await, "AT-SECRET-0");
        m.wait_for_renewal().await;
    }
    assert_eq!(
        fx.source.calls(),
        1,
        "no storm after a failed early refresh"
    );

    // After `early_retry_after` it tries again (in the background), and succeeds.
    fx.clock.advance(exact_config().early_retry_after);
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    m.wait_for_renewal().await;
    assert_eq!(token_of(&m).await, "AT-SECRET-2");
    assert_eq!(fx.source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_of_an_expired_token_is_an_error() {
    let invalid = Step::Fail(ErrorKind::InvalidRequest);
    let fx = Fixture::new(refreshing(&[invalid, invalid]), Some(fresh_user())).await;
    let m = fx.manager();
    fx.clock.advance(26 * MINUTE);
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    fx.clock.advance(5 * MINUTE);
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidRequest));
    assert_eq!(fx.source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_498_from_the_token_endpoint_ends_the_session_without_looping() {
    let source = refreshing(&[Step::Fail(ErrorKind::RefreshTokenExpired)]);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let m = fx.manager();

    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::RefreshTokenExpired));
    assert!(err.to_string().contains("sign in again"), "{err}");
    all_callers_fail(&m, 5, FlowErrorKind::SignInRequired).await;
    assert_eq!(fx.source.calls(), 1, "refreshing again would loop");

    // The user signs in again in another process: the manager picks it up.
    let new = user_record("AT-SECRET-NEW", START + 30 * MINUTE, Some(START + 14 * DAY));
    seed(&*fx.store, &new).await;
    assert_eq!(token_of(&m).await, "AT-SECRET-NEW");
    assert_eq!(fx.source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_refresh_token_says_sign_in_again() {
    let source = refreshing(&[Step::Fail(ErrorKind::InvalidGrant)]);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let err = fx.manager().token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::InvalidGrant));
    assert!(err.kind().needs_sign_in());
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_is_not_sent() {
    let record = user_record("AT-SECRET-0", START - MINUTE, Some(START - HOUR));
    let fx = Fixture::new(refreshing(&[]), Some(record)).await;
    let err = fx.manager().token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert!(err.to_string().contains("refresh token expired"), "{err}");
    assert_eq!(fx.source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn sessions_that_cannot_be_renewed_say_so_without_a_request() {
    for (renewal, kind) in [
        (Renewal::Never, FlowErrorKind::NotRenewable),
        (Renewal::UserMustSignIn, FlowErrorKind::SignInRequired),
    ] {
        let fx = Fixture::new(FakeSource::new(renewal), Some(expired_user())).await;
        assert_eq!(fx.manager().token().await.unwrap_err().kind(), kind);
        assert_eq!(fx.source.calls(), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_stored_is_a_typed_error() {
    let fx = Fixture::new(refreshing(&[]), None).await;
    let err = fx.manager().token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NoSession);
    assert!(err.to_string().contains("sign in"), "{err}");
    assert_eq!(fx.source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_when_it_is_reasonable() {
    let source = refreshing(&[Step::RetryAfter(Duration::from_secs(3))]);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let started = tokio::time::Instant::now();
    assert_eq!(token_of(&fx.manager()).await, "AT-SECRET-2");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(fx.source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_any_backoff_is_returned_to_the_caller() {
    let source = refreshing(&[Step::RetryAfter(HOUR)]);
    let fx = Fixture::new(source, Some(expired_user())).await;
    let started = tokio::time::Instant::now();
    let err = fx.manager().token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::RateLimited));
    assert_eq!(err.retry_after(), Some(HOUR));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(fx.source.calls(), 1);
}
