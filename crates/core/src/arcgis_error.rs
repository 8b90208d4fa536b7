//! ArcGIS error bodies, wherever they hide: `{"error":{...}}` objects (usually
//! with HTTP 200), top-level `code`/`message`, real HTTP statuses, HTML pages.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error_kind::ErrorKind;

/// An error as ArcGIS reported it, field by field.
///
/// ```
/// use arcgis_auth_core::ArcGisError;
///
/// let body = br#"{"error":{"code":499,"message":"Token Required","messageCode":"GWM_0003","details":[]}}"#;
/// let e = ArcGisError::from_body(body).unwrap();
/// assert_eq!(e.code, Some(499));
/// assert_eq!(e.message_code.as_deref(), Some("GWM_0003"));
/// ```
///
/// It serialises in ArcGIS's own shape (`messageCode`), so it can be stored and
/// read back; [`ArcGisError::from_body`] is the lenient reader for network input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ArcGisError {
    /// The numeric code (`498`, `499`, `403`, `400`, ...), when present.
    pub code: Option<i64>,
    /// The OAuth error name (`invalid_request`, `invalid_client_id`, ...), when present.
    pub error: Option<String>,
    /// The OAuth error description.
    pub error_description: Option<String>,
    /// The human-readable message.
    pub message: Option<String>,
    /// The specific message code (`GWM_0003`, `GWM_0007`, ...), more precise than `code`.
    #[serde(rename = "messageCode", alias = "message_code")]
    pub message_code: Option<String>,
    /// Extra detail lines.
    pub details: Vec<String>,
}

impl ArcGisError {
    /// The error carried by an ArcGIS JSON body, if any: `{"error":{...}}`, or a
    /// top-level `code` of 400 or more with a `message` (billing and some newer
    /// services), or a top-level OAuth `error` string, or the ArcGIS Server
    /// admin shape `{"status":"error","messages":[...],"code":498}`. Returns
    /// `None` for successful bodies and for bodies that are not JSON objects.
    pub fn from_body(body: &[u8]) -> Option<ArcGisError> {
        let value: Value = serde_json::from_slice(body).ok()?;
        ArcGisError::from_value(&value)
    }

    /// As [`ArcGisError::from_body`], on parsed JSON.
    pub fn from_value(value: &Value) -> Option<ArcGisError> {
        let obj = value.as_object()?;
        match obj.get("error") {
            Some(Value::Object(inner)) => Some(ArcGisError::from_fields(inner)),
            Some(Value::String(name)) => {
                let mut e = ArcGisError::from_fields(obj);
                e.error = Some(name.clone());
                Some(e)
            }
            _ if obj.get("status").and_then(Value::as_str) == Some("error") => {
                let messages: Vec<String> = match obj.get("messages") {
                    Some(Value::Array(items)) => items
                        .iter()
                        .take(20)
                        .filter_map(Value::as_str)
                        .map(|s| truncate(s, 500))
                        .collect(),
                    _ => Vec::new(),
                };
                let mut e = ArcGisError::from_fields(obj);
                if e.message.is_none() && !messages.is_empty() {
                    e.message = Some(messages.join("; "));
                }
                if e.details.is_empty() {
                    e.details = messages;
                }
                Some(e)
            }
            _ => {
                let code = obj.get("code").and_then(lenient_i64)?;
                if code >= 400 && (obj.contains_key("message") || obj.contains_key("messageCode")) {
                    Some(ArcGisError::from_fields(obj))
                } else {
                    None
                }
            }
        }
    }

    fn from_fields(obj: &serde_json::Map<String, Value>) -> ArcGisError {
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(|s| truncate(s, 500));
        let details = match obj.get("details") {
            Some(Value::Array(items)) => items
                .iter()
                .take(20)
                .map(|v| match v {
                    Value::String(s) => truncate(s, 500),
                    other => truncate(&other.to_string(), 500),
                })
                .collect(),
            Some(Value::String(s)) => vec![truncate(s, 500)],
            _ => Vec::new(),
        };
        ArcGisError {
            code: obj.get("code").and_then(lenient_i64),
            error: text("error"),
            error_description: text("error_description"),
            message: text("message"),
            message_code: text("messageCode"),
            details,
        }
    }

    /// The best human-readable description ArcGIS gave.
    pub fn description(&self) -> &str {
        self.message
            .as_deref()
            .or(self.error_description.as_deref())
            .or(self.error.as_deref())
            .unwrap_or("no message")
    }

    /// The kind of error this is when it came from a service or portal call
    /// (not the token endpoint; see [`ArcGisError::kind_at_token_endpoint`]).
    pub fn kind(&self) -> ErrorKind {
        match self.error.as_deref() {
            Some("invalid_client_id" | "invalid_client" | "unauthorized_client") => {
                return ErrorKind::InvalidClient;
            }
            Some("invalid_grant") => return ErrorKind::InvalidGrant,
            Some("access_denied") => return ErrorKind::AccessDenied,
            Some("invalid_token") => return ErrorKind::InvalidToken,
            _ => {}
        }
        if self.says_credentials_were_refused() {
            return ErrorKind::InvalidGrant;
        }
        match self.code {
            Some(498) => ErrorKind::InvalidToken,
            Some(499) => ErrorKind::TokenRequired,
            Some(403) => ErrorKind::Forbidden,
            Some(429) => ErrorKind::RateLimited,
            Some(c) if (500..600).contains(&c) => ErrorKind::Server,
            _ if matches!(
                self.error.as_deref(),
                Some(
                    "invalid_request"
                        | "unsupported_grant_type"
                        | "invalid_scope"
                        | "unsupported_response_type"
                )
            ) =>
            {
                ErrorKind::InvalidRequest
            }
            Some(400) if self.error.is_some() => ErrorKind::InvalidRequest,
            _ => ErrorKind::ArcGis,
        }
    }

    /// The kind of error this is when the token endpoint sent it: there, 498
    /// means the refresh token is dead ([`ErrorKind::RefreshTokenExpired`]), and
    /// so does an `invalid_request` whose description says the refresh token is
    /// invalid or expired (how ArcGIS reports a revoked refresh token).
    pub fn kind_at_token_endpoint(&self) -> ErrorKind {
        match self.kind() {
            ErrorKind::InvalidToken => ErrorKind::RefreshTokenExpired,
            ErrorKind::InvalidRequest | ErrorKind::InvalidGrant | ErrorKind::ArcGis
                if self.says_refresh_token_is_dead() =>
            {
                ErrorKind::RefreshTokenExpired
            }
            other => other,
        }
    }

    /// Whether the body refuses the username and password, in the words
    /// ArcGIS uses where it sends no OAuth `error` name: a portal's
    /// `generateToken` ("Unable to generate token." with the detail "Invalid
    /// username or password.") and a standalone server's ("Invalid
    /// credentials", with code 401). Read as [`ErrorKind::InvalidGrant`], so
    /// a password that was refused is known as refused and not sent again.
    fn says_credentials_were_refused(&self) -> bool {
        self.details
            .iter()
            .chain(self.message.as_ref())
            .chain(self.error_description.as_ref())
            .any(|text| {
                let t = text.to_ascii_lowercase();
                t.contains("invalid username or password") || t.contains("invalid credentials")
            })
    }

    fn says_refresh_token_is_dead(&self) -> bool {
        [&self.error_description, &self.message]
            .into_iter()
            .flatten()
            .any(|text| {
                let t = text.to_ascii_lowercase();
                t.contains("refresh_token")
                    && (t.contains("expired") || t.contains("invalid") || t.contains("revoked"))
            })
    }
}

impl fmt::Display for ArcGisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(c) => write!(f, "ArcGIS error {c}: {}", self.description()),
            None => write!(f, "ArcGIS error: {}", self.description()),
        }
    }
}

impl std::error::Error for ArcGisError {}

/// `code` arrives as a number, occasionally as a numeric string.
fn lenient_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
