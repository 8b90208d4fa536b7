//! The token manager's knobs, with defaults that suit ArcGIS's token lifetimes.

use std::time::Duration;

/// How the [`TokenManager`](crate::TokenManager) schedules, retries and
/// coordinates renewals.
///
/// `#[non_exhaustive]`: start from [`ManagerConfig::default`] and assign the
/// fields you want to change.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_flows::ManagerConfig;
///
/// let mut config = ManagerConfig::default();
/// config.refresh_lead = Duration::from_secs(120);
/// config.retry.max_retries = 5;
/// assert_eq!(config.exchange_window, Duration::from_secs(24 * 3600));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// How long before expiry a token is renewed (default 5 minutes). Clamped
    /// to a quarter of the token's lifetime, so a 30-minute token is renewed
    /// after 25 minutes and a 4-minute token after 3, never continuously.
    pub refresh_lead: Duration,
    /// Extra, random lead as a fraction of the (clamped) lead, between 0.0 and
    /// 1.0 (default 0.2): with the defaults a 30-minute token is renewed
    /// between 24 and 25 minutes, so a fleet sharing a portal does not renew in
    /// lockstep. The jitter of one token is the same every time it is looked at.
    pub jitter: f64,
    /// Seed for the jitter (default `None`: random per manager). Set it to make
    /// refresh times reproducible in tests.
    pub jitter_seed: Option<u64>,
    /// Use `exchange_refresh_token` (new refresh token) instead of
    /// `refresh_token` once the refresh token expires within this window
    /// (default 24 hours).
    pub exchange_window: Duration,
    /// When the portal did not say when the refresh token expires (older
    /// ArcGIS Enterprise), exchange it once it is this old (default 7 days;
    /// ArcGIS's default refresh token lifetime is 14 days).
    pub exchange_after: Duration,
    /// Retries of transient failures (network, 5xx, outage pages, rate limits).
    pub retry: RetryPolicy,
    /// How long one request to the token source may take before it is cut
    /// off as a transient transport failure (default 10 s; retried like one).
    /// With the retries and their backoff it bounds a renewal: see
    /// [`ManagerConfig::longest_renewal`].
    pub attempt_timeout: Duration,
    /// How long the cross-process refresh lock is taken for (default 30 s).
    /// The holder extends it every third of it while it renews, so a slow
    /// portal never lets a second process spend the same refresh token; if
    /// the holder dies, others take over once it runs out.
    pub lock_lease: Duration,
    /// How long to wait for another process that holds the refresh lock before
    /// giving up with [`FlowErrorKind::LockTimeout`](crate::FlowErrorKind::LockTimeout)
    /// (default 60 s). It must cover the holder's
    /// [`longest_renewal`](ManagerConfig::longest_renewal), or
    /// [`TokenManagerBuilder::build`](crate::TokenManagerBuilder::build) refuses the config.
    pub lock_wait: Duration,
    /// First pause between looks at the store while another process refreshes
    /// (default 50 ms; doubles up to 1 s).
    pub lock_poll: Duration,
    /// After a failed *early* renewal (the token is still valid and keeps being
    /// served), how long to wait before trying again (default 30 s; never past
    /// the token's expiry).
    pub early_retry_after: Duration,
    /// After a failed save to the store (the session stays in memory), how long
    /// to wait before saving again (default 10 s).
    pub save_retry_after: Duration,
    /// Whether the manager follows the store's change events for its session
    /// (default `true`): a sign-out or a renewal made by another process is
    /// then noticed before the cached token is served again. A short-lived
    /// process that asks for one token (a command-line call) can turn it
    /// off and save the store's event subscription (with Redis, a second
    /// connection).
    pub follow_store: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            refresh_lead: Duration::from_secs(5 * 60),
            jitter: 0.2,
            jitter_seed: None,
            exchange_window: Duration::from_secs(24 * 3600),
            exchange_after: Duration::from_secs(7 * 24 * 3600),
            retry: RetryPolicy::default(),
            attempt_timeout: Duration::from_secs(10),
            lock_lease: Duration::from_secs(30),
            lock_wait: Duration::from_secs(60),
            lock_poll: Duration::from_millis(50),
            early_retry_after: Duration::from_secs(30),
            save_retry_after: Duration::from_secs(10),
            follow_store: true,
        }
    }
}

impl ManagerConfig {
    /// The longest one renewal may take: every attempt cut off at
    /// [`attempt_timeout`](Self::attempt_timeout), every pause between them
    /// at [`RetryPolicy::max_backoff`] (the most a `Retry-After` is honoured
    /// for). 55 s with the defaults.
    ///
    /// ```
    /// use std::time::Duration;
    /// use arcgis_auth_flows::ManagerConfig;
    ///
    /// assert_eq!(ManagerConfig::default().longest_renewal(), Duration::from_secs(55));
    /// ```
    pub fn longest_renewal(&self) -> Duration {
        let retries = self.retry.max_retries;
        self.attempt_timeout
            .saturating_mul(retries.saturating_add(1))
            .saturating_add(self.retry.max_backoff.saturating_mul(retries))
    }

    /// Why this config cannot work, if it cannot.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.attempt_timeout.is_zero() {
            return Err("attempt_timeout is zero: no request could ever finish".into());
        }
        if self.lock_lease < MIN_LEASE {
            return Err(format!(
                "lock_lease {:?} is shorter than {MIN_LEASE:?}: the holder could not extend \
                 the refresh lock before it runs out",
                self.lock_lease
            ));
        }
        let longest = self.longest_renewal();
        if self.lock_wait < longest {
            return Err(format!(
                "lock_wait {:?} cannot cover one bounded renewal by the lock's holder ({:?}: \
                 attempt_timeout × {} attempts + max_backoff × {} retries): raise lock_wait, \
                 or lower attempt_timeout or the retries",
                self.lock_wait,
                longest,
                self.retry.max_retries.saturating_add(1),
                self.retry.max_retries,
            ));
        }
        Ok(())
    }
}

/// The shortest refresh-lock lease the holder can keep extending (every
/// third of it) with a store round trip to spare.
const MIN_LEASE: Duration = Duration::from_millis(300);

/// Bounded exponential backoff with jitter for transient failures.
///
/// Attempt `n` (counting retries from 1) waits a random duration between half
/// and all of `min(initial_backoff * 2^(n-1), max_backoff)`. When ArcGIS sent
/// `Retry-After`, the wait is at least that long; if it asks for more than
/// `max_backoff`, the error is returned at once instead (with
/// [`FlowError::retry_after`](crate::FlowError::retry_after) saying how long).
/// Waiting uses tokio's clock, so tests can run it under `tokio::time::pause()`.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_flows::RetryPolicy;
///
/// let retry = RetryPolicy::default();
/// assert_eq!(retry.max_retries, 3);
/// assert_eq!(retry.ceiling(1), Duration::from_millis(200));
/// assert_eq!(retry.ceiling(2), Duration::from_millis(400));
/// assert_eq!(retry.ceiling(30), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 3; 0 disables retrying).
    pub max_retries: u32,
    /// The backoff ceiling before the first retry (default 200 ms).
    pub initial_backoff: Duration,
    /// The largest backoff ceiling (default 5 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the pause before retry number `retry` (1-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }
}
