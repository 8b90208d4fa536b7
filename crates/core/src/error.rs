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
pub(crate) use crate::error_kind::ErrorKind;

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

impl ArcGisError {
    /// This error as an [`Error`] of `kind`, with a message that says what to do next.
    pub fn into_error(self, kind: ErrorKind) -> Error {
        let advice = match kind {
            ErrorKind::InvalidToken => {
                "the token is invalid or expired: get a new token and retry once"
            }
            ErrorKind::TokenRequired => "this resource needs a token: sign in and send one",
            ErrorKind::Forbidden => {
                "signed in, but not allowed: ask the owner or an administrator for access \
                 (refreshing the token will not help)"
            }
            ErrorKind::InvalidClient => "check the client id (and secret) registered for this app",
            ErrorKind::InvalidGrant => "the credentials or code were rejected: sign in again",
            ErrorKind::InvalidRequest => {
                "the portal rejected the request: check the redirect URI and parameters registered for this app"
            }
            ErrorKind::RefreshTokenExpired => {
                "the refresh token expired or was revoked: sign in again"
            }
            ErrorKind::AccessDenied => "the sign-in was declined: sign in again to grant access",
            ErrorKind::RateLimited => "the portal is rate limiting: wait and retry",
            ErrorKind::Server => "the portal or server failed: retry later",
            _ => "see the ArcGIS error for details",
        };
        let code = self.code.map(|c| format!(" {c}")).unwrap_or_default();
        let mcode = self
            .message_code
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        // The first detail often says what is wrong ("Invalid username or
        // password."): keep it, short and printable.
        let detail = self
            .details
            .first()
            .map(|d| {
                d.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|d| !d.trim().is_empty() && d.as_str() != self.description())
            .map(|d| format!(" ({})", d.trim()))
            .unwrap_or_default();
        let message = format!(
            "ArcGIS error{code}{mcode}: {}{detail}: {advice}",
            self.description()
        );
        Error::new(kind, message).with_arcgis(self)
    }
}

impl Error {
    /// The error an ArcGIS JSON response body carries, if any, as seen from a
    /// service or portal call (HTTP 200 bodies included). Use this on every
    /// ArcGIS JSON answer: the status alone does not tell.
    pub fn from_arcgis_body(body: &[u8]) -> Option<Error> {
        ArcGisError::from_body(body).map(|e| {
            let kind = e.kind();
            e.into_error(kind)
        })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
