//! The one error type of `arcgis-auth-core`, with a kind to match on.
//!
//! Every failure, whether ArcGIS said no (often inside an HTTP 200 body),
//! the network failed, or the answer could not be read, becomes an [`Error`]
//! whose [`kind`](Error::kind) says what happened and whose message says
//! what to do next. Messages never contain a token, password or secret.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::arcgis_error::ArcGisError;

/// What kind of failure an [`Error`] is. Match on this, not on messages.
///
/// Serialises as its [`as_str`](ErrorKind::as_str) name (`"invalid_token"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A URL that is not what it claims to be (not a portal, not a server, unparseable).
    InvalidUrl,
    /// A credential would have travelled over plain `http://` to a host that is not loopback.
    InsecureTransport,
    /// ArcGIS code 498 on a service or portal call: the access token is invalid or expired.
    /// Refreshing the token and retrying once is the cure.
    InvalidToken,
    /// ArcGIS code 499: the resource needs a token and none was sent.
    TokenRequired,
    /// ArcGIS code 403 (or `GWM_0003` with 403): signed in, but not allowed. Refreshing will not help.
    Forbidden,
    /// The client id or client secret was rejected (`invalid_client_id`, `invalid_client`).
    InvalidClient,
    /// The grant was rejected: bad code, bad verifier, bad username or password, revoked refresh token.
    InvalidGrant,
    /// The request was malformed in ArcGIS's eyes (`invalid_request`, e.g. a redirect URI mismatch).
    InvalidRequest,
    /// The token endpoint answered 498: the refresh token is expired or revoked. Sign in again;
    /// refreshing again would loop.
    RefreshTokenExpired,
    /// The user declined the sign-in (`error=access_denied`).
    AccessDenied,
    /// A sign-in redirect does not carry the state the sign-in sent (missing,
    /// repeated, or another): it is forged or belongs to another sign-in.
    /// Nothing was sent; start the sign-in again.
    StateMismatch,
    /// ArcGIS asked us to slow down (HTTP 429 or an equivalent body).
    RateLimited,
    /// The portal or server failed (5xx, a gateway error, or an HTML maintenance or proxy
    /// page where JSON belongs). Transient: retry with backoff.
    Server,
    /// Any other error ArcGIS reported in a well-formed error body.
    #[serde(rename = "arcgis")]
    ArcGis,
    /// The request never got an answer: connection refused or reset, DNS, TLS, timeout.
    Transport,
    /// An answer arrived but could not be understood: empty, truncated, wrong types,
    /// absurd numbers, or a redirect (e.g. to a login page) instead of an answer.
    UnparseableResponse,
    /// A value given by the caller is out of range or malformed (an expiration above the
    /// maximum, a PKCE verifier of the wrong length, a missing client secret). Nothing was sent.
    InvalidInput,
}

impl ErrorKind {
    /// Whether retrying the same request later may succeed (network trouble, 5xx, rate limits).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Transport | ErrorKind::Server | ErrorKind::RateLimited
        )
    }

    /// A stable `snake_case` name for logs and metrics (`"refresh_token_expired"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::InsecureTransport => "insecure_transport",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::TokenRequired => "token_required",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::InvalidClient => "invalid_client",
            ErrorKind::InvalidGrant => "invalid_grant",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::RefreshTokenExpired => "refresh_token_expired",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::StateMismatch => "state_mismatch",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::ArcGis => "arcgis",
            ErrorKind::Transport => "transport",
            ErrorKind::UnparseableResponse => "unparseable_response",
            ErrorKind::InvalidInput => "invalid_input",
        }
    }

    /// Whether the only cure is for the user to sign in again.
    pub fn needs_sign_in(self) -> bool {
        matches!(
            self,
            ErrorKind::RefreshTokenExpired | ErrorKind::AccessDenied | ErrorKind::StateMismatch
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from `arcgis-auth-core`: a [`kind`](Error::kind) to match on, a
/// message that says what to do next (never a secret), the ArcGIS error body
/// when there was one, and the underlying cause as [`source`](std::error::Error::source).
///
/// `Error` is `Clone` (the cause is shared), so one failed refresh can be
/// handed to every task that waited for it.
///
/// ```
/// use arcgis_auth_core::{Error, ErrorKind};
///
/// let body = br#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#;
/// let err = Error::from_arcgis_body(body).expect("the body carries an error");
/// assert_eq!(err.kind(), ErrorKind::InvalidToken);
/// assert!(err.to_string().contains("Invalid token."));
/// ```
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    arcgis: Option<Box<ArcGisError>>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    retry_after: Option<Duration>,
}

impl Error {
    /// A new error of `kind` with a message saying what happened and what to do.
    ///
    /// The message must never contain a secret.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            arcgis: None,
            source: None,
            retry_after: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Attaches the ArcGIS error body this error was made from.
    pub fn with_arcgis(mut self, arcgis: ArcGisError) -> Self {
        self.arcgis = Some(Box::new(arcgis));
        self
    }

    /// Records how long the server asked us to wait (`Retry-After`).
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// How long the server asked us to wait before retrying (HTTP
    /// `Retry-After` on transient answers such as 429 and 503), capped at one
    /// hour. The header may be delta-seconds or an HTTP-date; a date is a
    /// wait from the [`HttpClient`](crate::HttpClient)'s
    /// [clock](crate::HttpClient::with_clock), rounded up to whole seconds,
    /// and zero when the date is already past.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The ArcGIS error body behind this error, when ArcGIS sent one.
    pub fn arcgis(&self) -> Option<&ArcGisError> {
        self.arcgis.as_deref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("arcgis", &self.arcgis)
            .field("source", &self.source)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_serde() {
        use ErrorKind::*;
        for kind in [
            InvalidUrl,
            InsecureTransport,
            InvalidToken,
            TokenRequired,
            Forbidden,
            InvalidClient,
            InvalidGrant,
            InvalidRequest,
            RefreshTokenExpired,
            AccessDenied,
            RateLimited,
            Server,
            ArcGis,
            Transport,
            UnparseableResponse,
            InvalidInput,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!(RefreshTokenExpired.needs_sign_in());
        assert!(!InvalidToken.needs_sign_in());
        assert!(RateLimited.is_transient() && Server.is_transient() && Transport.is_transient());
        assert!(!Forbidden.is_transient());
    }
}
