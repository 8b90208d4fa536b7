//! The log of what the fake portal issued.

use std::fmt;

use arcgis_auth_core::{SecretString, Timestamp};

use crate::calls::Grant;

/// What kind of token an [`IssuedToken`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenKind {
    /// A user's access token from `oauth2/token` with this grant
    /// (`authorization_code`, `refresh_token` or `exchange_refresh_token`).
    UserAccess {
        /// The grant that produced it.
        grant: Grant,
    },
    /// A refresh token (from `authorization_code` or `exchange_refresh_token`).
    Refresh,
    /// An app token from `client_credentials`.
    App,
    /// An implicit-grant access token from `oauth2/authorize?response_type=token`.
    Implicit,
    /// A portal token from `generateToken` with a username and password.
    Generated,
    /// An API key from [`FakePortal::create_api_key`](crate::FakePortal::create_api_key):
    /// long-lived, never refreshed.
    ApiKey,
    /// A server token for the named server (from the portal's `generateToken`
    /// with `serverUrl`, or a standalone server's own `tokens/generateToken`).
    Server {
        /// The server's name.
        server: String,
    },
    /// A token for the Administrator API (`{root}/admin/...`) of the named
    /// standalone server, from its `admin/generateToken`. Its services
    /// refuse it, and its Administrator API refuses every other token.
    ServerAdmin {
        /// The server's name.
        server: String,
    },
}

/// One token the fake portal issued, as recorded in
/// [`FakePortal::issued_tokens`](crate::FakePortal::issued_tokens).
///
/// The token itself is a [`SecretString`]: `Debug` shows `[REDACTED]`; use
/// [`ExposeSecret`](arcgis_auth_core::ExposeSecret) to compare it with what
/// your client holds.
#[derive(Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The token.
    pub token: SecretString,
    /// What kind of token it is.
    pub kind: TokenKind,
    /// The user it belongs to (`None` for app tokens and API keys).
    pub username: Option<String>,
    /// The app it was issued to (`None` for `generateToken` tokens).
    pub client_id: Option<String>,
    /// When the portal issued it (portal clock).
    pub issued_at: Timestamp,
    /// When it stops working (portal clock).
    pub expires_at: Timestamp,
    /// Whether it was revoked (by `revokeToken`, by rotation in
    /// `exchange_refresh_token`, by [`FakePortal::revoke_api_key`](crate::FakePortal::revoke_api_key),
    /// or by [`FakePortal::revoke_all_tokens`](crate::FakePortal::revoke_all_tokens)).
    pub revoked: bool,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[REDACTED]")
            .field("kind", &self.kind)
            .field("username", &self.username)
            .field("client_id", &self.client_id)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("revoked", &self.revoked)
            .finish()
    }
}
