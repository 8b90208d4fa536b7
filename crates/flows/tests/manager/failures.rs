//! Failures never poison; transient ones are retried, boundedly; permanent ones are not.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ErrorKind, ExposeSecret, ManualClock};
use arcgis_auth_flows::{FlowErrorKind, Renewal};
use arcgis_auth_storage::{MemoryStore, SessionStore};

use crate::support::*;

fn setup(source: FakeSource) -> (ManualClock, Arc<dyn SessionStore>, Arc<FakeSource>) {
    let clock = ManualClock::new(START);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    (clock, store, Arc::new(source))
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_reaches_every_waiter_and_the_next_call_tries_again() {
    let (clock, store, source) = setup(
        FakeSource::new(Renewal::RefreshToken)
            .with_delay(Duration::from_millis(500))
            .script(&[Step::Fail(ErrorKind::InvalidClient)]),
    );
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let m = manager(source.clone(), store, &clock, exact_config());

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.token().await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidClient));
    }
    // Permanent: not retried.
    assert_eq!(source.calls(), 1);

    // Not poisoned: the next call makes a new request, which succeeds.
    let token = m.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "AT-SECRET-2");
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_with_bounded_backoff() {
    let (clock, store, source) = setup(FakeSource::new(Renewal::RefreshToken).script(&[
        Step::Fail(ErrorKind::Transport),
        Step::Fail(ErrorKind::Server),
    ]));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let m = manager(source.clone(), store, &clock, exact_config());

    let started = tokio::time::Instant::now();
    let token = m.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "AT-SECRET-3");
    assert_eq!(source.calls(), 3);
    // Two pauses: at least half of each ceiling (200 ms, 400 ms), at most the ceilings.
    let retry = exact_config().retry;
    let waited = started.elapsed();
    assert!(
        waited >= (retry.ceiling(1) + retry.ceiling(2)) / 2,
        "{waited:?}"
    );
    assert!(waited <= retry.ceiling(1) + retry.ceiling(2), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn transient_retries_stop_after_the_configured_number() {
    let (clock, store, source) = setup(FakeSource::new(Renewal::RefreshToken).script(&[
        Step::Fail(ErrorKind::RateLimited),
        Step::Fail(ErrorKind::Server),
        Step::Fail(ErrorKind::Server),
        Step::Fail(ErrorKind::Server),
        Step::Fail(ErrorKind::Server),
    ]));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let mut config = exact_config();
    config.retry.max_retries = 3;
    let m = manager(source.clone(), store, &clock, config.clone());

    let started = tokio::time::Instant::now();
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::Server));
    assert!(err.is_transient());
    assert_eq!(source.calls(), 4, "one attempt and three retries");
    let ceilings: Duration = (1..=3).map(|n| config.retry.ceiling(n)).sum();
    assert!(started.elapsed() <= ceilings);

    // The script's last failure is used up by the next call's first attempt; then success.
    let token = m.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "AT-SECRET-6");
    assert_eq!(source.calls(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_failed_early_refresh_keeps_serving_the_valid_token() {
    let (clock, store, source) = setup(
        FakeSource::new(Renewal::RefreshToken).script(&[Step::Fail(ErrorKind::InvalidRequest)]),
    );
    // Valid for 30 minutes from START; due after 25.
    seed(
        &*store,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let m = manager(source.clone(), store, &clock, exact_config());
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-0"
    );
    assert_eq!(source.calls(), 0);

    clock.advance(26 * MINUTE);
    // The early refresh fails: every caller keeps getting the valid token.
    for _ in 0..50 {
        assert_eq!(
            m.token().await.unwrap().secret().expose_secret(),
            "AT-SECRET-0"
        );
    }
    assert_eq!(source.calls(), 1, "no storm after a failed early refresh");

    // After `early_retry_after` it tries again, and succeeds.
    clock.advance(exact_config().early_retry_after);
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-2"
    );
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_of_an_expired_token_is_an_error() {
    let (clock, store, source) = setup(FakeSource::new(Renewal::RefreshToken).script(&[
        Step::Fail(ErrorKind::InvalidRequest),
        Step::Fail(ErrorKind::InvalidRequest),
    ]));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START + 30 * MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let m = manager(source.clone(), store, &clock, exact_config());
    clock.advance(26 * MINUTE);
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-0"
    );
    clock.advance(5 * MINUTE);
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidRequest));
    assert_eq!(source.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_498_from_the_token_endpoint_ends_the_session_without_looping() {
    let (clock, store, source) = setup(
        FakeSource::new(Renewal::RefreshToken)
            .script(&[Step::Fail(ErrorKind::RefreshTokenExpired)]),
    );
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let m = manager(source.clone(), store.clone(), &clock, exact_config());

    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::RefreshTokenExpired));
    assert!(err.to_string().contains("sign in again"), "{err}");
    for _ in 0..5 {
        assert_eq!(
            m.token().await.unwrap_err().kind(),
            FlowErrorKind::SignInRequired
        );
    }
    assert_eq!(source.calls(), 1, "refreshing again would loop");

    // The user signs in again in another process: the manager picks it up.
    seed(
        &*store,
        &user_record("AT-SECRET-NEW", START + 30 * MINUTE, Some(START + 14 * DAY)),
    )
    .await;
    assert_eq!(
        m.token().await.unwrap().secret().expose_secret(),
        "AT-SECRET-NEW"
    );
    assert_eq!(source.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_revoked_refresh_token_says_sign_in_again() {
    let (clock, store, source) = setup(
        FakeSource::new(Renewal::RefreshToken).script(&[Step::Fail(ErrorKind::InvalidGrant)]),
    );
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START + 10 * DAY)),
    )
    .await;
    let m = manager(source.clone(), store, &clock, exact_config());
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::InvalidGrant));
    assert!(err.kind().needs_sign_in());
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_is_not_sent() {
    let (clock, store, source) = setup(FakeSource::new(Renewal::RefreshToken));
    seed(
        &*store,
        &user_record("AT-SECRET-0", START - MINUTE, Some(START - HOUR)),
    )
    .await;
    let m = manager(source.clone(), store, &clock, exact_config());
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert!(err.to_string().contains("refresh token expired"), "{err}");
    assert_eq!(source.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn sessions_that_cannot_be_renewed_say_so_without_a_request() {
    let (clock, store, source) = setup(FakeSource::new(Renewal::Never));
    seed(&*store, &user_record("AT-SECRET-0", START - MINUTE, None)).await;
    let m = manager(source.clone(), store.clone(), &clock, exact_config());
    assert_eq!(
        m.token().await.unwrap_err().kind(),
        FlowErrorKind::NotRenewable
    );

    let (clock, store, source2) = setup(FakeSource::new(Renewal::UserMustSignIn));
    seed(&*store, &user_record("AT-SECRET-0", START - MINUTE, None)).await;
    let m = manager(source2.clone(), store, &clock, exact_config());
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(source.calls() + source2.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn nothing_stored_is_a_typed_error() {
    let (clock, store, source) = setup(FakeSource::new(Renewal::RefreshToken));
    let m = manager(source.clone(), store, &clock, exact_config());
    let err = m.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NoSession);
    assert!(err.to_string().contains("sign in"), "{err}");
    assert_eq!(source.calls(), 0);
}
