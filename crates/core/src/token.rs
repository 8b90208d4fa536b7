//! The normalised token: one shape for every grant, with an absolute expiry.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::time::Timestamp;

/// The longest lifetime (in seconds) accepted from any token endpoint: ten
/// years. ArcGIS's own maximum is 90 days; anything above this is a bug or an
/// attack, and is refused rather than trusted.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 60 * 60;

/// A refresh token with what is known about its lifetime.
#[derive(Clone)]
pub struct RefreshToken {
    secret: SecretString,
    issued_at: Timestamp,
    expires_at: Option<Timestamp>,
}

impl RefreshToken {
    /// A refresh token issued at `issued_at`, expiring at `expires_at` when the portal said so
    /// (older ArcGIS Enterprise releases do not send `refresh_token_expires_in`).
    pub fn new(secret: SecretString, issued_at: Timestamp, expires_at: Option<Timestamp>) -> Self {
        RefreshToken {
            secret,
            issued_at,
            expires_at,
        }
    }

    /// The refresh token itself. Send it only in a POST body to the token endpoint.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// When the portal issued it (as observed by our clock).
    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }

    /// When it stops working, if the portal said.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }

    /// Whether it has expired at `now` (never, when the expiry is unknown).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("secret", &"[REDACTED]")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// How usable a token is at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Valid and not yet due for refresh.
    Fresh,
    /// Still valid, but within the refresh lead time: refresh now, keep serving it meanwhile.
    RefreshDue,
    /// Expired: do not send it.
    Expired,
}

/// An access token from any grant, normalised: an absolute expiry, `ssl`,
/// the user it belongs to, and the refresh token when there is one.
///
/// `Debug` never shows the secrets:
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::{Freshness, Timestamp, Token};
///
/// let now = Timestamp::from_unix_millis(0);
/// let token = Token::new("s3cr3t-access".into(), now + Duration::from_secs(1800));
/// assert!(!format!("{token:?}").contains("s3cr3t"));
/// assert_eq!(token.freshness(now, Duration::from_secs(300)), Freshness::Fresh);
/// assert_eq!(
///     token.freshness(now + Duration::from_secs(1600), Duration::from_secs(300)),
///     Freshness::RefreshDue
/// );
/// ```
#[derive(Clone)]
pub struct Token {
    access_token: SecretString,
    expires_at: Timestamp,
    ssl: bool,
    username: Option<String>,
    refresh_token: Option<RefreshToken>,
}

impl Token {
    /// A token that expires at `expires_at`, with no user, `ssl = false` and no refresh token.
    pub fn new(access_token: SecretString, expires_at: Timestamp) -> Self {
        Token {
            access_token,
            expires_at,
            ssl: false,
            username: None,
            refresh_token: None,
        }
    }

    /// Sets whether the portal requires HTTPS for this token (`ssl`).
    pub fn with_ssl(mut self, ssl: bool) -> Self {
        self.ssl = ssl;
        self
    }

    /// Sets the user the token belongs to.
    pub fn with_username(mut self, username: Option<String>) -> Self {
        self.username = username;
        self
    }

    /// Sets the refresh token.
    pub fn with_refresh_token(mut self, refresh_token: Option<RefreshToken>) -> Self {
        self.refresh_token = refresh_token;
        self
    }

    /// The access token. Send it in a header or POST body, never in a URL query.
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    /// When the access token stops working.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether the portal said this token must only travel over HTTPS.
    pub fn ssl(&self) -> bool {
        self.ssl
    }

    /// The user the token belongs to, when known (app tokens have none).
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The refresh token, for user sign-ins.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// Takes the refresh token out, e.g. to carry it over to a refreshed token.
    pub fn take_refresh_token(&mut self) -> Option<RefreshToken> {
        self.refresh_token.take()
    }

    /// How usable the token is at `now`, refreshing `lead` before expiry.
    ///
    /// `lead` is used as given: for short-lived tokens pick a lead below
    /// their lifetime (the token manager uses at most a quarter of it), or
    /// they are due for refresh as soon as they are issued.
    pub fn freshness(&self, now: Timestamp, lead: Duration) -> Freshness {
        if now >= self.expires_at {
            Freshness::Expired
        } else if now >= self.expires_at.saturating_sub(lead) {
            Freshness::RefreshDue
        } else {
            Freshness::Fresh
        }
    }

    /// Whether the token is still valid at `now` (ignoring any lead time).
    pub fn is_valid(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// Whether two tokens carry the same access token (constant-time comparison).
    pub fn same_access_token(&self, other: &Token) -> bool {
        constant_time_eq(
            self.access_token.expose_secret().as_bytes(),
            other.access_token.expose_secret().as_bytes(),
        )
    }
}

/// The refresh lead time to use for a token that lives `lifetime`: the
/// configured `lead`, but never more than a quarter of the lifetime, so a
/// 30-minute token with a 5-minute lead refreshes at 25 minutes and a
/// 4-minute token at 3 minutes rather than immediately and forever.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::__private::effective_lead;
///
/// let five = Duration::from_secs(300);
/// assert_eq!(effective_lead(five, Duration::from_secs(1800)), five);
/// assert_eq!(effective_lead(five, Duration::from_secs(240)), Duration::from_secs(60));
/// ```
pub fn effective_lead(lead: Duration, lifetime: Duration) -> Duration {
    lead.min(lifetime / 4)
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("ssl", &self.ssl)
            .field("username", &self.username)
            .field("refresh_token", &self.refresh_token)
            .finish()
    }
}
