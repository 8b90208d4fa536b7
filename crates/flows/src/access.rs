//! The handle callers get from the manager: a valid access token, cheap to clone.

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{SecretString, Timestamp, Token};

/// A valid access token handed out by the [`TokenManager`](crate::TokenManager).
///
/// Cloning is one reference-count increment. It carries the access token,
/// its expiry, `ssl` and the user name, but never the refresh token. `Debug`
/// never shows the secret. Hand it back to
/// [`TokenManager::report_invalid`](crate::TokenManager::report_invalid) when
/// ArcGIS rejects it with a 498.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::{ExposeSecret, Timestamp, Token};
/// use arcgis_auth_flows::AccessToken;
///
/// let token = Token::new("s3cr3t".into(), Timestamp::from_unix_millis(60_000));
/// let access = AccessToken::new(token);
/// assert_eq!(access.secret().expose_secret(), "s3cr3t");
/// assert!(!format!("{access:?}").contains("s3cr3t"));
/// ```
#[derive(Clone)]
pub struct AccessToken(Arc<Token>);

impl AccessToken {
    /// Wraps `token`, dropping its refresh token.
    pub fn new(mut token: Token) -> Self {
        token.take_refresh_token();
        AccessToken(Arc::new(token))
    }

    /// The access token. Send it in a header or a POST body, never in a URL query.
    pub fn secret(&self) -> &SecretString {
        self.0.access_token()
    }

    /// When it stops working.
    pub fn expires_at(&self) -> Timestamp {
        self.0.expires_at()
    }

    /// Whether the portal said it must only travel over HTTPS.
    pub fn ssl(&self) -> bool {
        self.0.ssl()
    }

    /// The user it belongs to, when known.
    pub fn username(&self) -> Option<&str> {
        self.0.username()
    }

    /// The token (without its refresh token).
    pub fn token(&self) -> &Token {
        &self.0
    }

    /// Whether both carry the same access token (compared in constant time).
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.same_access_token(&other.0)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.0.expires_at())
            .field("ssl", &self.0.ssl())
            .field("username", &self.0.username())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::RefreshToken;

    #[test]
    fn drops_the_refresh_token() {
        let t = Token::new("a".into(), Timestamp::from_unix_millis(1)).with_refresh_token(Some(
            RefreshToken::new("r".into(), Timestamp::UNIX_EPOCH, None),
        ));
        let access = AccessToken::new(t);
        assert!(access.token().refresh_token().is_none());
    }

    #[test]
    fn compares_by_value() {
        let a = AccessToken::new(Token::new("same".into(), Timestamp::from_unix_millis(1)));
        let b = AccessToken::new(Token::new("same".into(), Timestamp::from_unix_millis(2)));
        let c = AccessToken::new(Token::new("other".into(), Timestamp::from_unix_millis(1)));
        assert!(a.same_token(&b));
        assert!(!a.same_token(&c));
    }
}
