//! The handle callers get from the manager: a valid access token, cheap to clone.

use std::fmt;
use std::sync::{Arc, OnceLock};

use arcgis_auth_core::{ExposeSecret, SecretString, Timestamp, Token};
use http::HeaderValue;

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
pub struct AccessToken(Arc<Held>);

/// The token, and its `Bearer` header value once a request needed it.
struct Held {
    token: Token,
    /// `Bearer <token>`, built on first use and shared by every request that
    /// carries this token (`None`: the token cannot go in a header). Marked
    /// sensitive, so `http`'s own `Debug` hides it too.
    bearer: OnceLock<Option<HeaderValue>>,
}

impl std::ops::Deref for Held {
    type Target = Token;

    fn deref(&self) -> &Token {
        &self.token
    }
}

impl AccessToken {
    /// Wraps `token`, dropping its refresh token.
    pub fn new(mut token: Token) -> Self {
        token.take_refresh_token();
        AccessToken(Arc::new(Held {
            token,
            bearer: OnceLock::new(),
        }))
    }

    /// `Bearer <token>` as a sensitive header value (its `Debug` hides it),
    /// built once per token: cloning it is a reference-count increment, so a
    /// proxy can send it with every request for free. `None` when the token
    /// holds bytes a header cannot carry.
    pub fn bearer_header(&self) -> Option<HeaderValue> {
        self.0
            .bearer
            .get_or_init(|| {
                let secret = self.0.token.access_token().expose_secret().as_bytes();
                let mut bytes = Vec::with_capacity(7 + secret.len());
                bytes.extend_from_slice(b"Bearer ");
                bytes.extend_from_slice(secret);
                let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from(bytes)).ok()?;
                value.set_sensitive(true);
                Some(value)
            })
            .clone()
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
        &self.0.token
    }

    /// Whether both carry the same access token (compared in constant time).
    pub fn same_token(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.same_access_token(&other.0.token)
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

    #[test]
    fn bearer_header_is_built_once_and_hidden() {
        let access = AccessToken::new(Token::new("s3cr3t".into(), Timestamp::MAX));
        let first = access.bearer_header().unwrap();
        assert_eq!(first.as_bytes(), b"Bearer s3cr3t");
        assert!(first.is_sensitive());
        assert!(!format!("{first:?}").contains("s3cr3t"));
        // Every clone of the handle shares the one value.
        let again = access.clone().bearer_header().unwrap();
        assert_eq!(first.as_bytes().as_ptr(), again.as_bytes().as_ptr());
        assert!(!format!("{access:?}").contains("s3cr3t"));
    }

    #[test]
    fn no_bearer_header_for_a_token_a_header_cannot_carry() {
        let access = AccessToken::new(Token::new("bad\nline".into(), Timestamp::MAX));
        assert!(access.bearer_header().is_none());
    }
}
