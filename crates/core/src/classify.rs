//! Deciding whether an ArcGIS HTTP answer is a success, whatever its status says.
//!
//! ArcGIS reports most errors with HTTP 200 and an `error` object in the body;
//! newer services use real statuses with the same body; proxies and outages
//! answer HTML; misconfigured portals redirect to login pages. The functions
//! here look at status, content type and body together and return the one
//! typed [`Error`] the answer carries.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::arcgis_error::ArcGisError;
use crate::error::{Error, ErrorKind, Result};

/// Which kind of ArcGIS endpoint answered: this decides what a 498 means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EndpointKind {
    /// A service, portal or `generateToken` call: 498 means the *access* token
    /// is invalid or expired ([`ErrorKind::InvalidToken`]); refresh and retry once.
    Service,
    /// `oauth2/token` or `oauth2/revokeToken`: 498 means the *refresh* token is
    /// dead ([`ErrorKind::RefreshTokenExpired`]); refreshing again would loop.
    Token,
}

/// Inspects any ArcGIS service or portal response and returns the error it
/// carries, if any: an ArcGIS error body (with HTTP 200 or a real status), a
/// 429, a 5xx or outage page, a redirect, an HTML page where JSON was asked
/// for, an empty or truncated JSON body.
///
/// Responses whose content type is neither JSON nor text (images, protobuf,
/// downloads) with a 2xx status are accepted without reading the body.
///
/// ```
/// use arcgis_auth_core::{classify_response, ErrorKind};
/// use http::StatusCode;
///
/// // HTTP 200, yet an error: the token expired.
/// let body = br#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#;
/// let err = classify_response(StatusCode::OK, Some("application/json"), body).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidToken);
///
/// // A feature query answer is fine.
/// let ok = br#"{"features":[],"exceededTransferLimit":false}"#;
/// assert!(classify_response(StatusCode::OK, Some("text/plain; charset=utf-8"), ok).is_ok());
///
/// // An outage page is a server error, not a parse error.
/// let html = b"<html><body>502 Bad Gateway</body></html>";
/// let err = classify_response(StatusCode::BAD_GATEWAY, Some("text/html"), html).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Server);
/// ```
pub fn classify_response(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<()> {
    classify(
        EndpointKind::Service,
        false,
        status,
        content_type,
        None,
        body,
    )
}

/// As [`classify_response`], for answers from `oauth2/token` and
/// `oauth2/revokeToken`: a 498 there is [`ErrorKind::RefreshTokenExpired`], and
/// the body must be a JSON object whatever the content type says.
///
/// ```
/// use arcgis_auth_core::{classify_token_response, ErrorKind};
/// use http::StatusCode;
///
/// let body = br#"{"error":{"code":498,"error":"invalid_request","error_description":"refresh_token expired","message":"refresh_token expired","details":[]}}"#;
/// let err = classify_token_response(StatusCode::OK, Some("application/json"), body).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::RefreshTokenExpired);
/// assert!(err.to_string().contains("sign in again"));
/// ```
pub fn classify_token_response(
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<()> {
    classify(EndpointKind::Token, true, status, content_type, None, body)
}

/// The full classification. `strict`: the answer must be a JSON object
/// whatever its content type (auth endpoints). `location` is the `Location`
/// header of a redirect.
pub(crate) fn classify(
    endpoint: EndpointKind,
    strict: bool,
    status: StatusCode,
    content_type: Option<&str>,
    location: Option<&str>,
    body: &[u8],
) -> Result<()> {
    if status.is_redirection() {
        return Err(redirect_error(status, location));
    }
    let trimmed = trim_start(body);
    if trimmed.first() == Some(&b'{') {
        match probe(trimmed) {
            Ok(Some(arcgis)) => return Err(arcgis_error(endpoint, status, arcgis)),
            Ok(None) if status.is_success() => return Ok(()),
            Ok(None) => return Err(status_error(endpoint, status, false)),
            Err(e) if status.is_success() => {
                return Err(Error::new(
                    ErrorKind::UnparseableResponse,
                    "ArcGIS answered with invalid or truncated JSON: retry, and check the \
                     network or proxy if it persists",
                )
                .with_source(e));
            }
            Err(_) => return Err(status_error(endpoint, status, false)),
        }
    }
    let html = looks_like_html(trimmed, content_type);
    if !status.is_success() {
        return Err(status_error(endpoint, status, html));
    }
    if !strict && !content_type.is_none_or(is_textual) {
        return Ok(());
    }
    if trimmed.is_empty() {
        return Err(Error::new(
            ErrorKind::UnparseableResponse,
            "ArcGIS answered with an empty body: check that the URL is an ArcGIS endpoint \
             and that the request sends f=json",
        ));
    }
    if html {
        // Maintenance pages, overloaded gateways and captive portals answer HTML with
        // a 200 as often as with a 5xx: treat it as a server failure, which callers
        // retry with bounded backoff. A login page in front of the portal fails the
        // same way after those few retries, with this message.
        return Err(Error::new(
            ErrorKind::Server,
            "ArcGIS answered with an HTML (or XML) page instead of JSON: the portal may be \
             down for maintenance, the request may lack f=json, or a proxy or web-tier login \
             page is in front of the portal",
        ));
    }
    if trimmed.first() == Some(&b'[') && !strict {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::UnparseableResponse,
        format!(
            "ArcGIS answered with something that is not a JSON object{}: check the URL \
             and that the request sends f=json",
            content_type
                .map(|ct| format!(" (content type `{}`)", clip(ct, 80)))
                .unwrap_or_default()
        ),
    ))
}

/// The top-level fields that can carry an error; everything else is skipped
/// without being built, so large feature responses cost one scan.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default, rename = "messageCode")]
    message_code: Option<Value>,
    #[serde(default)]
    error_description: Option<Value>,
    #[serde(default)]
    details: Option<Value>,
    #[serde(default)]
    status: Option<Value>,
    #[serde(default)]
    messages: Option<Value>,
}

fn probe(body: &[u8]) -> std::result::Result<Option<ArcGisError>, serde_json::Error> {
    let p: Probe = serde_json::from_slice(body)?;
    let mut map = Map::new();
    for (k, v) in [
        ("error", p.error),
        ("code", p.code),
        ("message", p.message),
        ("messageCode", p.message_code),
        ("error_description", p.error_description),
        ("details", p.details),
        ("status", p.status),
        ("messages", p.messages),
    ] {
        if let Some(v) = v {
            map.insert(k.to_owned(), v);
        }
    }
    Ok(ArcGisError::from_value(&Value::Object(map)))
}

fn arcgis_error(endpoint: EndpointKind, status: StatusCode, arcgis: ArcGisError) -> Error {
    let mut kind = match endpoint {
        EndpointKind::Service => arcgis.kind(),
        EndpointKind::Token => arcgis.kind_at_token_endpoint(),
    };
    if kind == ErrorKind::ArcGis {
        if status == StatusCode::TOO_MANY_REQUESTS {
            kind = ErrorKind::RateLimited;
        } else if status.is_server_error() {
            kind = ErrorKind::Server;
        }
    }
    arcgis.into_error(kind)
}

fn status_error(endpoint: EndpointKind, status: StatusCode, html: bool) -> Error {
    let what = if html {
        "an HTML page"
    } else {
        "no ArcGIS error"
    };
    let (kind, advice) = match status.as_u16() {
        429 => (
            ErrorKind::RateLimited,
            "the server is rate limiting: wait and retry",
        ),
        500..=599 => (
            ErrorKind::Server,
            "the portal or server (or a proxy in front of it) failed: retry later",
        ),
        408 => (ErrorKind::Server, "the server timed out: retry later"),
        401 if endpoint == EndpointKind::Token => (
            ErrorKind::InvalidClient,
            "the token endpoint refused the client: check the client id and secret",
        ),
        401 => (
            ErrorKind::TokenRequired,
            "the server asked for credentials: send a token (a web-tier login may be in front of it)",
        ),
        403 => (
            ErrorKind::Forbidden,
            "access is forbidden: ask the owner or an administrator for access",
        ),
        404 => (
            ErrorKind::InvalidUrl,
            "nothing answers at this URL: check the portal or service URL",
        ),
        400..=499 => (
            ErrorKind::InvalidRequest,
            "the request was refused: check its parameters",
        ),
        _ => (
            ErrorKind::UnparseableResponse,
            "this is not an answer an ArcGIS endpoint gives: check the URL",
        ),
    };
    Error::new(kind, format!("HTTP {status} with {what}: {advice}"))
}

fn redirect_error(status: StatusCode, location: Option<&str>) -> Error {
    let target = location
        .map(|l| {
            let cut = l.split(['?', '#']).next().unwrap_or_default();
            format!(" to {}", clip(cut, 200))
        })
        .unwrap_or_default();
    Error::new(
        ErrorKind::UnparseableResponse,
        format!(
            "ArcGIS redirected (HTTP {status}){target} instead of answering; credentials are \
             never sent on to another URL: use the portal's https:// sharing root, and check \
             whether a web-tier login sits in front of it"
        ),
    )
}

fn trim_start(body: &[u8]) -> &[u8] {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    body.get(start..).unwrap_or_default()
}

fn looks_like_html(trimmed: &[u8], content_type: Option<&str>) -> bool {
    trimmed.first() == Some(&b'<')
        || content_type.is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("text/html") || ct.starts_with("application/xhtml")
        })
}

/// JSON or text: content types ArcGIS uses (or mislabels) for JSON answers.
fn is_textual(ct: &str) -> bool {
    let ct = ct.trim().to_ascii_lowercase();
    ct.starts_with("text/") || ct.contains("json") || ct.contains("javascript")
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn binary_answers_are_not_read() {
        assert!(classify_response(StatusCode::OK, Some("image/png"), b"\x89PNG").is_ok());
        assert!(
            classify_token_response(StatusCode::OK, Some("image/png"), b"\x89PNG")
                .is_err_and(|e| e.kind() == ErrorKind::UnparseableResponse)
        );
    }

    #[test]
    fn real_status_wins_for_generic_bodies() {
        let body = br#"{"error":{"code":400,"message":"Unable to complete operation."}}"#;
        let e = classify_response(StatusCode::SERVICE_UNAVAILABLE, JSON, body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        let e = classify_response(StatusCode::TOO_MANY_REQUESTS, JSON, body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        let e = classify_response(StatusCode::TOO_MANY_REQUESTS, JSON, b"{}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn admin_shape_and_top_level_codes() {
        let admin = br#"{"status":"error","messages":["Invalid token."],"code":498}"#;
        let e = classify_response(StatusCode::OK, JSON, admin).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidToken);
        assert!(e.to_string().contains("Invalid token."), "{e}");
        let billing = br#"{"code":403,"message":"Subscription is disabled","messageCode":"ORG_1"}"#;
        let e = classify_response(StatusCode::OK, JSON, billing).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        // A successful body that merely has a `code` field below 400 is fine.
        assert!(classify_response(StatusCode::OK, JSON, br#"{"code":200,"message":"ok"}"#).is_ok());
    }

    #[test]
    fn redirects_name_the_target_without_its_query() {
        let e = classify(
            EndpointKind::Token,
            true,
            StatusCode::FOUND,
            None,
            Some("https://idp.example/login?returnUrl=secret-ish"),
            b"",
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnparseableResponse);
        assert!(e.to_string().contains("https://idp.example/login"), "{e}");
        assert!(!e.to_string().contains("secret-ish"), "{e}");
    }

    #[test]
    fn bom_and_whitespace_are_tolerated() {
        let body = b"\xEF\xBB\xBF \n{\"access_token\":\"x\"}";
        assert!(classify_token_response(StatusCode::OK, JSON, body).is_ok());
    }
}
