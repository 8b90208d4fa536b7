//! The error type `oauth2` reports for ArcGIS token endpoints.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::arcgis_error::ArcGisError;
use crate::error::{Error, ErrorKind};

/// An ArcGIS token-endpoint error as `oauth2` sees it: the
/// [`oauth2::ErrorResponse`] of [`ArcGisOAuth2Client`](crate::ArcGisOAuth2Client).
///
/// [`HttpClient`](crate::HttpClient) turns every failed answer (an ArcGIS error
/// inside an HTTP 200, a real error status, an HTML page, a redirect) into one
/// of these, so `oauth2` reports
/// [`RequestTokenError::ServerResponse`](oauth2::RequestTokenError::ServerResponse)
/// with the [`kind`](ArcGisErrorResponse::kind) already decided. Plain ArcGIS
/// bodies (`{"error":{...}}`) deserialise too, read as token-endpoint answers.
///
/// ```
/// use arcgis_auth_core::{ArcGisErrorResponse, Error, ErrorKind};
///
/// let body = r#"{"error":{"code":400,"error":"invalid_client_id","error_description":"Invalid client_id","message":"Invalid client_id","details":[]}}"#;
/// let response: ArcGisErrorResponse = serde_json::from_str(body).unwrap();
/// assert_eq!(response.kind(), ErrorKind::InvalidClient);
/// let err: Error = response.into();
/// assert_eq!(err.kind(), ErrorKind::InvalidClient);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArcGisErrorResponse {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    arcgis: Option<ArcGisError>,
    retry_after_secs: Option<u64>,
}

/// The key under which this crate records its classification in a rewritten body.
const MARKER: &str = "arcgis_auth";

impl ArcGisErrorResponse {
    /// The response describing `error`, as received with HTTP `status`.
    pub fn from_error(error: &Error, status: Option<u16>) -> Self {
        ArcGisErrorResponse {
            kind: error.kind(),
            message: error.message().to_owned(),
            status,
            arcgis: error.arcgis().cloned(),
            retry_after_secs: error.retry_after().map(|d| d.as_secs()),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What happened and what to do next (no secrets).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status the portal actually answered with (often 200), when known.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The ArcGIS error body, when the portal sent one.
    pub fn arcgis(&self) -> Option<&ArcGisError> {
        self.arcgis.as_ref()
    }

    /// How long the server asked us to wait (`Retry-After`), when it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after_secs.map(std::time::Duration::from_secs)
    }

    /// This response as this crate's [`Error`].
    pub fn into_error(self) -> Error {
        let wait = self.retry_after();
        let mut err = Error::new(self.kind, self.message);
        if let Some(wait) = wait {
            err = err.with_retry_after(wait);
        }
        match self.arcgis {
            Some(a) => err.with_arcgis(a),
            None => err,
        }
    }

    fn from_value(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        let arcgis = ArcGisError::from_value(value);
        if let Some(Value::Object(mark)) = obj.get(MARKER) {
            let kind = mark
                .get("kind")
                .and_then(|k| ErrorKind::deserialize(k).ok())
                .unwrap_or(ErrorKind::ArcGis);
            let message = mark
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| kind.as_str().to_owned());
            let status = mark
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok());
            let retry_after_secs = mark.get("retry_after_secs").and_then(Value::as_u64);
            return Some(ArcGisErrorResponse {
                kind,
                message,
                status,
                arcgis,
                retry_after_secs,
            });
        }
        let arcgis = arcgis?;
        let err = arcgis.clone().into_error(arcgis.kind_at_token_endpoint());
        Some(ArcGisErrorResponse::from_error(&err, None))
    }
}

impl fmt::Display for ArcGisErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ArcGisErrorResponse {}

impl oauth2::ErrorResponse for ArcGisErrorResponse {}

impl From<ArcGisErrorResponse> for Error {
    fn from(r: ArcGisErrorResponse) -> Error {
        r.into_error()
    }
}

impl Serialize for ArcGisErrorResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut obj = Map::new();
        if let Some(a) = &self.arcgis {
            obj.insert(
                "error".to_owned(),
                serde_json::to_value(a).map_err(serde::ser::Error::custom)?,
            );
        }
        let mut mark = Map::new();
        mark.insert("kind".to_owned(), Value::from(self.kind.as_str()));
        mark.insert("message".to_owned(), Value::from(self.message.clone()));
        if let Some(st) = self.status {
            mark.insert("status".to_owned(), Value::from(st));
        }
        if let Some(wait) = self.retry_after_secs {
            mark.insert("retry_after_secs".to_owned(), Value::from(wait));
        }
        obj.insert(MARKER.to_owned(), Value::Object(mark));
        Value::Object(obj).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ArcGisErrorResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        ArcGisErrorResponse::from_value(&value)
            .ok_or_else(|| serde::de::Error::custom("not an ArcGIS error body"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let body = br#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#;
        let err = Error::from_arcgis_body(body).unwrap();
        let r = ArcGisErrorResponse::from_error(&err, Some(200));
        let json = serde_json::to_string(&r).unwrap();
        let back: ArcGisErrorResponse = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.kind(), ErrorKind::InvalidToken);
        assert_eq!(back.status(), Some(200));
        assert_eq!(back.arcgis().and_then(|a| a.code), Some(498));
    }

    #[test]
    fn plain_bodies_are_read_as_token_endpoint_answers() {
        let body = r#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#;
        let r: ArcGisErrorResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.kind(), ErrorKind::RefreshTokenExpired);
        assert!(serde_json::from_str::<ArcGisErrorResponse>(r#"{"access_token":"x"}"#).is_err());
        assert!(serde_json::from_str::<ArcGisErrorResponse>("[]").is_err());
    }
}
