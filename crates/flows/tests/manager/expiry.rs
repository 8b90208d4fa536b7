//! Clock-driven renewal: lead time, clamping for short-lived tokens, jitter.

use std::time::Duration;

use arcgis_auth_core::ErrorKind;
use arcgis_auth_flows::{ManagerConfig, Renewal};

use crate::support::*;

/// The moment (offset from START) at which a session issued at START with
/// `lifetime` is first renewed, found by stepping the clock one second at a time.
async fn first_renewal(lifetime: Duration, config: ManagerConfig) -> Duration {
    let mut record = user_record("AT-SECRET-0", START + lifetime, Some(START + 10 * DAY));
    record.updated_at = Some(START);
    let source = FakeSource::new(Renewal::RefreshToken).with_lifetime(lifetime);
    let fx = Fixture::new(source, Some(record)).await;
    let m = fx.manager_with(config);
    let mut elapsed = Duration::ZERO;
    while elapsed <= lifetime {
        // In the refresh window the still-valid token is served at once and
        // the renewal goes on in the background.
        assert_eq!(token_of(&m).await, "AT-SECRET-0");
        m.wait_for_renewal().await;
        if fx.source.calls() > 0 {
            assert_eq!(token_of(&m).await, "AT-SECRET-1");
            return elapsed;
        }
        fx.clock.advance(Duration::from_secs(1));
        elapsed += Duration::from_secs(1);
    }
    panic!("never renewed");
}

#[tokio::test(start_paused = true)]
async fn a_thirty_minute_token_is_renewed_five_minutes_early() {
    assert_eq!(
        first_renewal(30 * MINUTE, exact_config()).await,
        25 * MINUTE
    );
}

#[tokio::test(start_paused = true)]
async fn short_lived_tokens_are_renewed_at_three_quarters_of_their_life() {
    assert_eq!(first_renewal(4 * MINUTE, exact_config()).await, 3 * MINUTE);
    assert_eq!(
        first_renewal(2 * HOUR, exact_config()).await,
        2 * HOUR - 5 * MINUTE
    );
}

#[tokio::test(start_paused = true)]
async fn the_lead_is_configurable() {
    let mut config = exact_config();
    config.refresh_lead = Duration::from_secs(2 * 60);
    assert_eq!(first_renewal(30 * MINUTE, config).await, 28 * MINUTE);
}

#[tokio::test(start_paused = true)]
async fn jitter_spreads_renewals_within_the_extra_lead_and_is_seedable() {
    let mut seen = Vec::new();
    for seed in 0..8 {
        let mut config = ManagerConfig::default();
        config.jitter_seed = Some(seed);
        let at = first_renewal(30 * MINUTE, config.clone()).await;
        // Lead 5 min plus up to 20 % of it: between 24 and 25 minutes.
        assert!(at >= 24 * MINUTE && at <= 25 * MINUTE, "{at:?}");
        // Same seed, same moment.
        assert_eq!(first_renewal(30 * MINUTE, config).await, at);
        seen.push(at);
    }
    seen.sort();
    seen.dedup();
    assert!(
        seen.len() > 1,
        "different seeds should spread renewals: {seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_never_served() {
    let record = user_record("AT-SECRET-0", START + MINUTE, Some(START + 10 * DAY));
    let source =
        FakeSource::new(Renewal::RefreshToken).script(&[Step::Fail(ErrorKind::Server); 20]);
    let fx = Fixture::new(source, Some(record)).await;
    let m = fx.manager();
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    fx.clock.advance(MINUTE);
    assert!(m.token().await.is_err());
    assert!(m.cached().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_slow_renewal_delays_no_caller_while_the_token_is_valid() {
    let source = FakeSource::new(Renewal::RefreshToken).with_delay(Duration::from_secs(10));
    let fx = Fixture::new(source, Some(fresh_user())).await;
    let m = fx.manager();
    assert_eq!(token_of(&m).await, "AT-SECRET-0");
    // Due for renewal, still valid for four minutes.
    fx.clock.advance(26 * MINUTE);
    let started = tokio::time::Instant::now();
    // The caller that starts the renewal, later callers one by one, and
    // concurrent ones: none of them waits (on the paused clock, no time passes).
    for _ in 0..20 {
        assert_eq!(token_of(&m).await, "AT-SECRET-0");
    }
    all_callers_get(std::slice::from_ref(&m), 50, "AT-SECRET-0").await;
    assert_eq!(started.elapsed(), Duration::ZERO, "a caller waited");
    assert_eq!(fx.source.calls(), 1, "one renewal in the background");

    // The renewal lands after its 10 s, and is served from then on.
    m.wait_for_renewal().await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    assert_eq!(secret(&stored(&*fx.store).await).0, "AT-SECRET-1");
    assert_eq!(fx.source.calls(), 1);
}
