//! `{server}/rest/info`: who owns a server, and how it issues tokens.

use arcgis_auth_core::{Error, ErrorKind};
use serde::Deserialize;
use url::Url;

/// What a server's `/rest/info?f=json` says about itself.
///
/// ```
/// use arcgis_auth_flows::federation::ServerInfo;
///
/// let body = br#"{"currentVersion":11.1,"owningSystemUrl":"https://gis.example.com/portal",
///   "authInfo":{"isTokenBasedSecurity":true,
///   "tokenServicesUrl":"https://gis.example.com/portal/sharing/rest/generateToken",
///   "shortLivedTokenValidity":60}}"#;
/// let info = ServerInfo::from_body(body).unwrap();
/// assert_eq!(info.owning_system_url(), Some("https://gis.example.com/portal"));
/// assert!(info.is_token_based_security());
/// assert_eq!(info.short_lived_token_validity_minutes(), Some(60));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    current_version: Option<f64>,
    owning_system_url: Option<String>,
    is_token_based_security: bool,
    token_services_url: Option<Url>,
    short_lived_token_validity: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    current_version: Option<serde_json::Value>,
    #[serde(default)]
    owning_system_url: Option<String>,
    #[serde(default)]
    auth_info: Option<WireAuth>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAuth {
    #[serde(default)]
    is_token_based_security: Option<bool>,
    #[serde(default)]
    token_services_url: Option<String>,
    #[serde(default)]
    short_lived_token_validity: Option<serde_json::Value>,
}

impl ServerInfo {
    /// Reads a `/rest/info` answer. Fails with
    /// [`ErrorKind::UnparseableResponse`] when it is not a JSON object.
    pub fn from_body(body: &[u8]) -> Result<Self, Error> {
        let wire: Wire = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::UnparseableResponse,
                format!(
                    "the server's /rest/info answer is not the expected JSON (line {}, column {}): \
                     check that the URL is an ArcGIS Server",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let auth = wire.auth_info;
        let number = |v: &serde_json::Value| match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(ServerInfo {
            current_version: wire.current_version.as_ref().and_then(number),
            owning_system_url: wire
                .owning_system_url
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            is_token_based_security: auth
                .as_ref()
                .and_then(|a| a.is_token_based_security)
                .unwrap_or(false),
            token_services_url: auth
                .as_ref()
                .and_then(|a| a.token_services_url.as_deref())
                .and_then(|s| Url::parse(s.trim()).ok()),
            short_lived_token_validity: auth
                .as_ref()
                .and_then(|a| a.short_lived_token_validity.as_ref())
                .and_then(number)
                .filter(|m| m.is_finite() && *m >= 0.0)
                // Saturating: a value in minutes, far below u64::MAX.
                .map(|m| m as u64),
        })
    }

    /// The server's version (`currentVersion`), when given.
    pub fn current_version(&self) -> Option<f64> {
        self.current_version
    }

    /// The portal the server is federated with (`owningSystemUrl`), if any.
    pub fn owning_system_url(&self) -> Option<&str> {
        self.owning_system_url.as_deref()
    }

    /// Whether the server secures services with tokens (`authInfo.isTokenBasedSecurity`).
    pub fn is_token_based_security(&self) -> bool {
        self.is_token_based_security
    }

    /// Where the server says tokens come from (`authInfo.tokenServicesUrl`).
    pub fn token_services_url(&self) -> Option<&Url> {
        self.token_services_url.as_ref()
    }

    /// `authInfo.shortLivedTokenValidity`, in minutes.
    pub fn short_lived_token_validity_minutes(&self) -> Option<u64> {
        self.short_lived_token_validity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_and_lenient() {
        let info = ServerInfo::from_body(
            br#"{"currentVersion":"10.91","authInfo":{"isTokenBasedSecurity":false,"shortLivedTokenValidity":"15"}}"#,
        )
        .unwrap();
        assert_eq!(info.owning_system_url(), None);
        assert_eq!(info.current_version(), Some(10.91));
        assert!(!info.is_token_based_security());
        assert_eq!(info.short_lived_token_validity_minutes(), Some(15));
        let info = ServerInfo::from_body(br#"{"owningSystemUrl":"  "}"#).unwrap();
        assert_eq!(info.owning_system_url(), None);
        assert!(ServerInfo::from_body(b"<html>").is_err());
        assert!(ServerInfo::from_body(br#"{"owningSystemUrl":5}"#).is_err());
    }
}
