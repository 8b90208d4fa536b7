//! `ApiKey`: a developer API key as a session that is never renewed (guide: `guide::api_keys`).

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::__private::is_secure_or_loopback;
use arcgis_auth_core::{
    Clock, Error as CoreError, ErrorKind, ExposeSecret, HttpClient, Portal, SecretString,
    SystemClock, Timestamp, Token,
};
use arcgis_auth_storage::{SessionKind, SessionRecord};

use super::{NeverRenewed, SignedIn};
use crate::error::{FlowError, FlowErrorKind, Result};

/// The prefixes ArcGIS API keys commonly start with: `AAPK` (legacy API keys)
/// and `AAPT` (API key credentials).
const PREFIXES: &[&str] = &["AAPK", "AAPT"];

/// Whether `s` looks like an ArcGIS API key: it starts with `AAPK` (legacy API
/// keys) or `AAPT` (API key credentials) and is otherwise a plausible token
/// (at least 20 characters of `A-Z a-z 0-9 - _ . ~`).
///
/// This is a hint for choosing a strategy and for friendlier messages, e.g. a
/// CLI telling an API key from an OAuth client secret in its configuration, or
/// warning that an API key was pasted where a client id belongs. It says
/// nothing about whether the key works (check that with
/// [`ApiKey::verify`]), and keys in other formats exist, so never refuse a key
/// only because this returns `false`.
///
/// ```
/// use arcgis_auth_flows::signin::looks_like_api_key;
///
/// assert!(looks_like_api_key("AAPK0123456789abcdefGHIJ-_.~"));
/// assert!(looks_like_api_key("AAPTxxxxxxxxxxxxxxxxxxxxxxxx"));
/// assert!(!looks_like_api_key("my-client-id"));
/// assert!(!looks_like_api_key("AAPK with spaces in it......"));
/// ```
pub fn looks_like_api_key(s: &str) -> bool {
    let s = s.trim();
    PREFIXES.iter().any(|p| s.starts_with(p))
        && s.len() >= 20
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// A static ArcGIS API key: a long-lived access token made in the developer
/// dashboard or portal. It is never refreshed; when it expires or is revoked,
/// the only cure is a new key.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct ApiKey {
    key: SecretString,
    expires_at: Option<Timestamp>,
}

impl ApiKey {
    /// Wraps `key` (surrounding white space is trimmed).
    ///
    /// Errors: [`FlowErrorKind::InvalidInput`] when the key is empty or holds
    /// white space or control characters (it could not travel in a header).
    pub fn new(key: SecretString) -> Result<Self> {
        let trimmed = key.expose_secret().trim();
        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "that is not an API key (empty, or holds spaces or control characters): copy the \
                 key again from the developer dashboard or portal",
            ));
        }
        let key = if trimmed.len() == key.expose_secret().len() {
            key
        } else {
            SecretString::from(trimmed.to_owned())
        };
        Ok(ApiKey {
            key,
            expires_at: None,
        })
    }

    /// Records when the key expires (API key credentials have an expiration
    /// date; the manager reports [`FlowErrorKind::NotRenewable`] after it).
    /// Without it the key is treated as never expiring.
    pub fn with_expiry(mut self, expires_at: Timestamp) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// The key. Send it in a header (`X-Esri-Authorization: Bearer ...`) or a
    /// POST body, never in a URL query.
    pub fn secret(&self) -> &SecretString {
        &self.key
    }

    /// Whether the key has a recognisable prefix; see [`looks_like_api_key`].
    pub fn looks_like_api_key(&self) -> bool {
        looks_like_api_key(self.key.expose_secret())
    }

    /// The key as a session of `portal`, for a [`TokenManager`](crate::TokenManager)
    /// (with [`NeverRenewed`] as its source, on the system clock). Nothing is sent.
    pub fn session(&self, portal: Portal) -> SignedIn<NeverRenewed> {
        let token =
            Token::new(self.key.clone(), self.expires_at.unwrap_or(Timestamp::MAX)).with_ssl(true);
        let mut record = SessionRecord::new(portal, SessionKind::ApiKey);
        record.set_token(&token);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        SignedIn::new(record, token, NeverRenewed, clock)
    }

    /// Checks the key against `portal` (`portals/self`, the key in the
    /// `X-Esri-Authorization` header).
    ///
    /// Errors: [`FlowErrorKind::NotRenewable`] when ArcGIS rejects the key
    /// (498: invalid, expired or revoked; the message says to replace it, and
    /// [`arcgis_kind`](FlowError::arcgis_kind) is
    /// [`InvalidToken`](ErrorKind::InvalidToken)); [`FlowErrorKind::ArcGis`]
    /// with [`InsecureTransport`](ErrorKind::InsecureTransport) for a remote
    /// `http://` portal (nothing sent), and the ArcGIS and transport kinds for
    /// anything else.
    pub async fn verify(&self, portal: &Portal, http: &HttpClient) -> Result<()> {
        let url = portal.portals_self_url();
        if !is_secure_or_loopback(&url) {
            return Err(CoreError::new(
                ErrorKind::InsecureTransport,
                format!(
                    "refusing to send an API key over plain http to {portal}: use the portal's \
                     https:// URL"
                ),
            )
            .into());
        }
        http.get_json(&url, Some(&self.key))
            .await
            .map(drop)
            .map_err(|err| match err.kind() {
                ErrorKind::InvalidInput => FlowError::new(
                    FlowErrorKind::InvalidInput,
                    "the API key holds characters that cannot travel in an HTTP header: copy \
                     the key again",
                ),
                _ => rejected_key(err),
            })
    }
}

/// Turns ArcGIS's answer to a request made with an API key into the error to
/// show: a 498 (or 499) means the key itself is unusable.
pub(crate) fn rejected_key(err: CoreError) -> FlowError {
    match err.kind() {
        ErrorKind::InvalidToken | ErrorKind::TokenRequired => FlowError::from_core(
            FlowErrorKind::NotRenewable,
            "ArcGIS rejected the API key (498: invalid, expired or revoked): create a new API \
             key in the developer dashboard or portal and replace this one; retrying will not help",
            err,
        ),
        _ => err.into(),
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
