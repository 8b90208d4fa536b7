//! `ImplicitCallback`: reading the token from an implicit-grant redirect (guide: `guide::implicit`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{Clock, Portal, SecretString, Timestamp, Token};
use arcgis_auth_storage::{SessionKind, SessionRecord};

use super::callback;
use super::{NeverRenewed, SignedIn};
use crate::error::Result;
#[cfg(doc)]
use crate::error::{FlowError, FlowErrorKind};

/// The token an implicit-grant sign-in delivered in the redirect URI's
/// fragment (`#access_token=...&expires_in=...&username=...&ssl=...&state=...`).
///
/// **Deprecated flow**: ArcGIS recommends the authorization code flow with
/// PKCE ([`UserSignIn`](super::UserSignIn)) for every app. This type exists to
/// read the callbacks of apps still being migrated. Implicit tokens cannot be
/// refreshed: when one expires the user signs in again.
///
/// `Debug` never shows the token.
pub struct ImplicitCallback {
    access_token: SecretString,
    expires_in: Duration,
    username: Option<String>,
    ssl: bool,
}

impl ImplicitCallback {
    /// Reads an implicit-grant callback: the full redirect URL, or its
    /// fragment (with or without the `#`), checking that it carries
    /// `expected_state` (constant-time).
    ///
    /// Errors:
    /// - [`FlowErrorKind::StateMismatch`]: the `state` is missing or differs.
    /// - [`FlowErrorKind::SignInRequired`] with
    ///   [`arcgis_kind`](FlowError::arcgis_kind) `Some(AccessDenied)` for
    ///   `error=access_denied`; other `error=` values keep their ArcGIS kind.
    /// - [`FlowErrorKind::InvalidInput`]: no `access_token`, an `expires_in`
    ///   that is missing, not a number of seconds, zero, or absurd, or an
    ///   `ssl` that is neither `true` nor `false`.
    ///
    /// The rules are core's ([`RedirectParams`](arcgis_auth_core::RedirectParams)),
    /// the same as [`Authorization::token_from_implicit_redirect`](arcgis_auth_core::Authorization::token_from_implicit_redirect).
    #[deprecated(
        note = "the implicit grant is deprecated by ArcGIS: sign users in with `UserSignIn` \
                (authorization code + PKCE); use this only while migrating"
    )]
    pub fn parse(callback: &str, expected_state: &str) -> Result<Self> {
        // The expiry is read relative to the epoch, then kept as a duration.
        let token = callback::implicit_token(callback, expected_state, Timestamp::UNIX_EPOCH)?;
        Ok(ImplicitCallback {
            expires_in: token
                .expires_at()
                .saturating_duration_since(Timestamp::UNIX_EPOCH),
            username: token.username().map(str::to_owned),
            ssl: token.ssl(),
            access_token: token.access_token().clone(),
        })
    }

    /// The signed-in user, when the portal said.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// How long the token lives from the moment the callback arrived.
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// Whether the portal requires HTTPS for this token.
    pub fn ssl(&self) -> bool {
        self.ssl
    }

    /// The normalised token, expiring `expires_in` after `received_at`.
    pub fn into_token(self, received_at: Timestamp) -> Token {
        Token::new(self.access_token, received_at + self.expires_in)
            .with_ssl(self.ssl)
            .with_username(self.username)
    }

    /// The token as a user session of `portal` for app `client_id`, for a
    /// [`TokenManager`](crate::TokenManager) (with [`NeverRenewed`] as its
    /// source: it answers [`FlowErrorKind::NotRenewable`] once the token
    /// expires). The expiry counts from `clock`'s now.
    pub fn into_session(
        self,
        portal: Portal,
        client_id: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> SignedIn<NeverRenewed> {
        let token = self.into_token(clock.now());
        let mut record = SessionRecord::new(portal, SessionKind::User);
        record.client_id = Some(client_id.into());
        record.set_token(&token);
        SignedIn::new(record, token, NeverRenewed, clock)
    }
}

impl fmt::Debug for ImplicitCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImplicitCallback")
            .field("access_token", &"[REDACTED]")
            .field("expires_in", &self.expires_in)
            .field("username", &self.username)
            .field("ssl", &self.ssl)
            .finish()
    }
}
