//! The strategy contract: how a session is renewed.
//!
//! A [`TokenSource`] is what a sign-in strategy leaves behind once the user
//! (or app) has signed in: it knows how to get a new token for that session.
//! The [`TokenManager`](crate::TokenManager) decides *when* to renew and
//! *which grant* to use, makes sure only one renewal runs at a time, retries
//! transient failures, and persists the result; the source only performs the
//! one request it is asked for.
//!
//! Division of labour:
//!
//! | decided by the manager | done by the source |
//! |---|---|
//! | when (lead time, jitter, expiry, a reported 498) | which credentials to send |
//! | `refresh_token` or `exchange_refresh_token` ([`Grant`]) | the HTTP request and parsing the answer |
//! | single flight, locking, retries with backoff | keeping secrets (client secret, password) in memory |
//! | saving the new token (compare-and-swap) | nothing persistent: never write a secret to the record |
//!
//! Sources keep the secrets that must never be stored (a client secret, a
//! `generateToken` password) in memory as [`SecretString`](arcgis_auth_core::SecretString)s;
//! everything else (the refresh token, the client id, the redirect URI) comes
//! from the [`SessionRecord`] in the [`RenewRequest`], because the record is
//! what survives a restart and what other processes see.

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{Timestamp, Token};
use arcgis_auth_storage::SessionRecord;
use async_trait::async_trait;

use crate::error::Result;

/// How a session can be renewed, as its [`TokenSource`] judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Renewal {
    /// With the session's refresh token. The manager asks for [`Grant::Refresh`]
    /// or [`Grant::Exchange`] depending on how close the refresh token is to
    /// its end. (User sign-ins: authorization code, PKCE.)
    RefreshToken,
    /// By signing in again with credentials the source holds in memory: asks
    /// for [`Grant::SignIn`]. (App credentials, `generateToken` with the
    /// password in memory.)
    SignInAgain,
    /// By minting a new token without a password over the web-tier
    /// credential the source holds (a TLS client certificate, HTTP Basic):
    /// `generateToken` with `request=getToken`. Asks for [`Grant::SignIn`],
    /// like [`SignInAgain`](Self::SignInAgain), and says where the identity
    /// comes from. ([`WebTierSignIn`](crate::signin::WebTierSignIn).)
    WebTier,
    /// Never: the token is what it is until it expires or is rejected.
    /// (API keys, implicit-grant tokens.)
    Never,
    /// Only the user can renew it: the manager reports
    /// [`FlowErrorKind::SignInRequired`](crate::FlowErrorKind::SignInRequired)
    /// without calling [`TokenSource::renew`]. (A `generateToken` session
    /// restored from a store, whose password was never written down.)
    UserMustSignIn,
}

/// The request a [`TokenSource`] is asked to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// `grant_type=refresh_token`: a new access token for the session's refresh
    /// token. The answer carries no new refresh token (if it does, it is stored).
    Refresh,
    /// `grant_type=exchange_refresh_token`: a new access token **and** a new
    /// refresh token; the old refresh token stops working. The returned
    /// [`Token`] must carry the new refresh token.
    Exchange,
    /// Sign in again with the credentials the source holds (client
    /// credentials, `generateToken`).
    SignIn,
}

impl Grant {
    /// A short lower-case name for logs (`refresh`, `exchange`, `sign_in`).
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Refresh => "refresh",
            Grant::Exchange => "exchange",
            Grant::SignIn => "sign_in",
        }
    }
}

/// Why the manager is renewing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RenewReason {
    /// The current token is within its refresh lead time but still valid.
    Early,
    /// The current token has expired (or there was none in memory).
    Expired,
    /// A caller reported the current token as rejected (HTTP or ArcGIS 498).
    Invalidated,
}

impl RenewReason {
    /// A short lower-case name for logs (`early`, `expired`, `invalidated`).
    pub fn as_str(self) -> &'static str {
        match self {
            RenewReason::Early => "early",
            RenewReason::Expired => "expired",
            RenewReason::Invalidated => "invalidated",
        }
    }
}

/// Everything a [`TokenSource`] gets to renew a session.
#[derive(Debug, Clone, Copy)]
pub struct RenewRequest<'a> {
    session: &'a SessionRecord,
    grant: Grant,
    reason: RenewReason,
    now: Timestamp,
}

impl<'a> RenewRequest<'a> {
    /// A request to renew `session` with `grant` at `now` (as the manager's clock sees it).
    ///
    /// The manager builds these; strategies' own tests build them too.
    pub fn new(
        session: &'a SessionRecord,
        grant: Grant,
        reason: RenewReason,
        now: Timestamp,
    ) -> Self {
        RenewRequest {
            session,
            grant,
            reason,
            now,
        }
    }

    /// The session as last stored (re-read from the store under the refresh lock,
    /// so its refresh token is the current one).
    pub fn session(&self) -> &'a SessionRecord {
        self.session
    }

    /// Which request to make.
    pub fn grant(&self) -> Grant {
        self.grant
    }

    /// Why the manager renews (for logs; the request is the same either way).
    pub fn reason(&self) -> RenewReason {
        self.reason
    }

    /// "Now" on the manager's clock: use it to turn `expires_in` into an absolute expiry.
    pub fn now(&self) -> Timestamp {
        self.now
    }
}

/// A strategy's renewal half: turns a stored session into a new [`Token`].
///
/// Implementations make exactly one request per call to [`renew`](Self::renew)
/// and return its result; they do not retry, sleep, cache or store anything —
/// the [`TokenManager`](crate::TokenManager) does all of that. Return core
/// errors through `?` (`From<arcgis_auth_core::Error>` keeps their kind, so the
/// manager can tell a transient 502 from a permanent `invalid_client`, and a
/// 498 from the token endpoint becomes "sign in again").
///
/// # Contract
///
/// - [`renewal`](Self::renewal) is cheap and does no I/O; the manager calls it
///   on every renewal and when it adopts a session.
/// - [`renew`](Self::renew) is called only with the grant that `renewal`
///   allows: [`Grant::Refresh`]/[`Grant::Exchange`] for
///   [`Renewal::RefreshToken`] (and only when the record has a refresh token),
///   [`Grant::SignIn`] for [`Renewal::SignInAgain`].
/// - For [`Grant::Exchange`] the returned token must carry the new refresh
///   token. The manager saves it (compare-and-swap) before anyone uses it.
/// - Expiries are absolute, computed from [`RenewRequest::now`].
/// - Secrets stay in memory (`SecretString`); nothing the source returns may
///   carry a client secret or password.
///
/// # Example
///
/// A source for a session that is renewed with a refresh token, talking to a
/// pretend token endpoint:
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::{RefreshToken, Token};
/// use arcgis_auth_flows::{FlowError, FlowErrorKind, Grant, Renewal, RenewRequest, TokenSource};
/// use arcgis_auth_storage::SessionRecord;
///
/// #[derive(Debug)]
/// struct PretendPortal;
///
/// #[async_trait::async_trait]
/// impl TokenSource for PretendPortal {
///     fn renewal(&self, _session: &SessionRecord) -> Renewal {
///         Renewal::RefreshToken
///     }
///
///     async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
///         let expires = request.now() + Duration::from_secs(1800);
///         let token = Token::new("new-access-token".into(), expires);
///         Ok(match request.grant() {
///             Grant::Refresh => token,
///             Grant::Exchange => token.with_refresh_token(Some(RefreshToken::new(
///                 "new-refresh-token".into(),
///                 request.now(),
///                 Some(request.now() + Duration::from_secs(14 * 24 * 3600)),
///             ))),
///             _ => {
///                 return Err(FlowError::new(
///                     FlowErrorKind::InvalidInput,
///                     "this source only renews with a refresh token",
///                 ));
///             }
///         })
///     }
/// }
/// ```
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A short name for logs (`oauth`, `app_credentials`, `generate_token`,
    /// `api_key`, ...). Never a secret.
    fn name(&self) -> &'static str {
        "custom"
    }

    /// How `session` can be renewed. No I/O.
    fn renewal(&self, session: &SessionRecord) -> Renewal;

    /// Makes the one request `request.grant()` names and returns the new token.
    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token>;
}

#[async_trait]
impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn renewal(&self, session: &SessionRecord) -> Renewal {
        (**self).renewal(session)
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token> {
        (**self).renew(request).await
    }
}
