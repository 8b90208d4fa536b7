//! What the token endpoints answer, read strictly, then normalised into [`Token`].

use std::fmt;
use std::time::Duration;

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, Scope, TokenResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;
use crate::token::{MAX_LIFETIME_SECS, RefreshToken, Token};

/// Smallest `generateToken` `expires` accepted (1973-03-03 in epoch
/// milliseconds): smaller values are seconds mistaken for milliseconds.
const MIN_EPOCH_MILLIS: i64 = 100_000_000_000;

/// An `oauth2/token` success answer, read strictly:
/// `{"access_token":"...","expires_in":1800,"username":"jdoe","ssl":true,
/// "refresh_token":"...","refresh_token_expires_in":1209599}`.
///
/// ArcGIS sends no `token_type`; [`TokenResponse::token_type`] reports
/// [`BasicTokenType::Bearer`], which is how ArcGIS tokens are sent. `expires_in`
/// is required and must be a whole number of seconds between 1 and
/// [`MAX_LIFETIME_SECS`] (a string, a negative or fractional number, or an
/// absurd one is a parse error, never a panic). `username`, `ssl`,
/// `refresh_token` and `refresh_token_expires_in` are optional (older
/// Enterprise releases omit the last).
///
/// This type exists for `oauth2`'s sake and holds `oauth2`'s own secret
/// types; convert it into the normalised [`Token`] with
/// [`into_token`](ArcGisTokenResponse::into_token) as soon as it arrives.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::{ArcGisTokenResponse, Timestamp};
///
/// let body = r#"{"access_token":"at","expires_in":1800,"username":"jdoe","ssl":true,
///                "refresh_token":"rt","refresh_token_expires_in":1209599}"#;
/// let response = ArcGisTokenResponse::from_body(body.as_bytes()).unwrap();
/// let now = Timestamp::from_unix_millis(1_700_000_000_000);
/// let token = response.into_token(now);
/// assert_eq!(token.expires_at(), now + Duration::from_secs(1800));
/// assert_eq!(token.username(), Some("jdoe"));
/// assert!(token.ssl());
/// let refresh = token.refresh_token().unwrap();
/// assert_eq!(refresh.expires_at(), Some(now + Duration::from_secs(1_209_599)));
///
/// // `expires_in` as a string is refused with a typed error.
/// let err = ArcGisTokenResponse::from_body(br#"{"access_token":"at","expires_in":"1800"}"#).unwrap_err();
/// assert_eq!(err.kind(), arcgis_auth_core::ErrorKind::UnparseableResponse);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArcGisTokenResponse {
    #[serde(deserialize_with = "de_access_token")]
    access_token: AccessToken,
    #[serde(deserialize_with = "de_seconds")]
    expires_in: u64,
    #[serde(
        default,
        deserialize_with = "de_opt_username",
        skip_serializing_if = "Option::is_none"
    )]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ssl: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_opt_refresh_token",
        skip_serializing_if = "Option::is_none"
    )]
    refresh_token: Option<oauth2::RefreshToken>,
    #[serde(
        default,
        deserialize_with = "de_opt_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    refresh_token_expires_in: Option<u64>,
    #[serde(skip, default = "bearer")]
    token_type: BasicTokenType,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

impl ArcGisTokenResponse {
    /// Reads a success body strictly; any problem is an
    /// [`ErrorKind::UnparseableResponse`] whose message names the field (never its secret value).
    pub fn from_body(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| unparseable("token response", &e))
    }

    /// Seconds the access token lives from when it was issued.
    pub fn expires_in_secs(&self) -> u64 {
        self.expires_in
    }

    /// The user the token belongs to (absent for app tokens).
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether the portal requires HTTPS for this token, when it said.
    pub fn ssl(&self) -> Option<bool> {
        self.ssl
    }

    /// Whether the answer carries a refresh token.
    pub fn has_refresh_token(&self) -> bool {
        self.refresh_token.is_some()
    }

    /// Seconds the refresh token lives, when the portal said.
    pub fn refresh_token_expires_in_secs(&self) -> Option<u64> {
        self.refresh_token_expires_in
    }

    /// The normalised token, taking `issued_at` (read from the clock just
    /// before the request was sent, so the expiry errs early) as the start of
    /// both lifetimes.
    pub fn into_token(self, issued_at: Timestamp) -> Token {
        let expires_at = issued_at + Duration::from_secs(self.expires_in);
        let refresh = self.refresh_token.map(|rt| {
            RefreshToken::new(
                SecretString::from(rt.into_secret()),
                issued_at,
                self.refresh_token_expires_in
                    .map(|s| issued_at + Duration::from_secs(s)),
            )
        });
        Token::new(
            SecretString::from(self.access_token.into_secret()),
            expires_at,
        )
        .with_ssl(self.ssl.unwrap_or(false))
        .with_username(self.username)
        .with_refresh_token(refresh)
    }
}

impl TokenResponse for ArcGisTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    fn expires_in(&self) -> Option<Duration> {
        Some(Duration::from_secs(self.expires_in))
    }

    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
    }
}

/// A `generateToken` success answer: `{"token":"...","expires":1732212345678,"ssl":false}`,
/// with `expires` an absolute time in epoch **milliseconds**.
///
/// ```
/// use arcgis_auth_core::{GenerateTokenResponse, Timestamp};
///
/// let body = br#"{"token":"t","expires":1732212345678,"ssl":true}"#;
/// let response = GenerateTokenResponse::from_body(body).unwrap();
/// assert_eq!(response.expires(), Timestamp::from_unix_millis(1_732_212_345_678));
/// let token = response.into_token(Timestamp::from_unix_millis(1_732_200_000_000)).unwrap();
/// assert!(token.ssl());
///
/// // Seconds instead of milliseconds are refused, not read as 1970.
/// assert!(GenerateTokenResponse::from_body(br#"{"token":"t","expires":1732212345}"#).is_err());
/// ```
#[derive(Debug, Clone, Deserialize)]
pub struct GenerateTokenResponse {
    #[serde(deserialize_with = "de_secret")]
    token: SecretString,
    #[serde(deserialize_with = "de_epoch_millis")]
    expires: Timestamp,
    #[serde(default)]
    ssl: Option<bool>,
}

impl GenerateTokenResponse {
    /// Reads a success body strictly ([`ErrorKind::UnparseableResponse`] on any problem).
    pub fn from_body(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| unparseable("generateToken response", &e))
    }

    /// The token. Send it in a header or POST body, never in a URL query.
    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// When the token stops working.
    pub fn expires(&self) -> Timestamp {
        self.expires
    }

    /// Whether the server requires HTTPS for this token, when it said.
    pub fn ssl(&self) -> Option<bool> {
        self.ssl
    }

    /// The normalised token. Fails with [`ErrorKind::UnparseableResponse`] when
    /// `expires` is not after `now` or more than [`MAX_LIFETIME_SECS`] after it
    /// (a wrong clock here or on the server, or a broken answer).
    pub fn into_token(self, now: Timestamp) -> Result<Token> {
        if self.expires <= now {
            return Err(Error::new(
                ErrorKind::UnparseableResponse,
                format!(
                    "generateToken answered with a token that expired at {} (now is {}): \
                     check this machine's clock and the server's",
                    self.expires, now
                ),
            ));
        }
        if self.expires > now + Duration::from_secs(MAX_LIFETIME_SECS) {
            return Err(Error::new(
                ErrorKind::UnparseableResponse,
                format!(
                    "generateToken answered with an absurd expiry ({}): refusing the token",
                    self.expires
                ),
            ));
        }
        Ok(Token::new(self.token, self.expires).with_ssl(self.ssl.unwrap_or(false)))
    }
}

/// A `revokeToken` answer: `{"success":true}`.
#[derive(Debug, Deserialize)]
pub(crate) struct RevokeResponse {
    pub(crate) success: bool,
}

pub(crate) fn unparseable(what: &str, e: &serde_json::Error) -> Error {
    Error::new(
        ErrorKind::UnparseableResponse,
        format!("the {what} could not be read ({e}): the portal's answer is broken; retry later"),
    )
}

fn de_access_token<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<AccessToken, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(de::Error::custom("access_token is empty"));
    }
    Ok(AccessToken::new(s))
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<SecretString, D::Error> {
    let s = SecretString::from(String::deserialize(d)?);
    if s.expose_secret().trim().is_empty() {
        return Err(de::Error::custom("token is empty"));
    }
    Ok(s)
}

fn de_opt_refresh_token<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<oauth2::RefreshToken>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|s| !s.trim().is_empty())
        .map(oauth2::RefreshToken::new))
}

fn de_opt_username<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()))
}

/// A whole number of seconds in `1..=MAX_LIFETIME_SECS`.
struct Seconds;

impl Visitor<'_> for Seconds {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a whole number of seconds between 1 and {MAX_LIFETIME_SECS}"
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<u64, E> {
        if v == 0 {
            Err(E::custom(
                "a lifetime of 0 seconds: the token is dead on arrival",
            ))
        } else if v > MAX_LIFETIME_SECS {
            Err(E::custom(format!(
                "a lifetime of {v} seconds is absurd (more than ten years)"
            )))
        } else {
            Ok(v)
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("a negative lifetime ({v} seconds)"))),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<u64, E> {
        Err(E::custom(format!(
            "a fractional or out-of-range lifetime ({v}); expected whole seconds"
        )))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<u64, E> {
        Err(E::custom(
            "a lifetime given as a string; expected a number of seconds",
        ))
    }
}

fn de_seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    d.deserialize_any(Seconds)
}

fn de_opt_seconds<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "de_seconds")] u64);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

fn de_epoch_millis<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Timestamp, D::Error> {
    struct Millis;
    impl Visitor<'_> for Millis {
        type Value = Timestamp;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an absolute time in epoch milliseconds")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Timestamp, E> {
            i64::try_from(v)
                .map_err(|_| E::custom(format!("expires {v} is out of range")))
                .and_then(|v| self.visit_i64(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Timestamp, E> {
            if v < MIN_EPOCH_MILLIS {
                Err(E::custom(format!(
                    "expires {v} is not epoch milliseconds (seconds, or a time before 1973)"
                )))
            } else {
                Ok(Timestamp::from_unix_millis(v))
            }
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Timestamp, E> {
            Err(E::custom(format!(
                "expires {v} is not a whole number of milliseconds"
            )))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Timestamp, E> {
            Err(E::custom(
                "expires given as a string; expected epoch milliseconds",
            ))
        }
    }
    d.deserialize_any(Millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_app_token() {
        let r =
            ArcGisTokenResponse::from_body(br#"{"access_token":"a","expires_in":7200}"#).unwrap();
        assert_eq!(r.token_type(), &BasicTokenType::Bearer);
        assert_eq!(r.expires_in(), Some(Duration::from_secs(7200)));
        let t = r.into_token(Timestamp::UNIX_EPOCH);
        assert!(!t.ssl());
        assert!(t.username().is_none());
        assert!(t.refresh_token().is_none());
    }

    #[test]
    fn token_type_on_the_wire_is_ignored() {
        let r = ArcGisTokenResponse::from_body(
            br#"{"access_token":"a","expires_in":60,"token_type":"mac"}"#,
        )
        .unwrap();
        assert_eq!(r.token_type(), &BasicTokenType::Bearer);
    }

    #[test]
    fn bounds() {
        for bad in [
            r#"{"access_token":"a","expires_in":0}"#,
            r#"{"access_token":"a","expires_in":-5}"#,
            r#"{"access_token":"a","expires_in":1e30}"#,
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
            r#"{"access_token":"a","expires_in":1800.5}"#,
            r#"{"access_token":"","expires_in":1800}"#,
            r#"{"access_token":"a","expires_in":1800,"refresh_token":"r","refresh_token_expires_in":-1}"#,
        ] {
            let e = ArcGisTokenResponse::from_body(bad.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnparseableResponse, "{bad}");
        }
        let max = format!(r#"{{"access_token":"a","expires_in":{MAX_LIFETIME_SECS}}}"#);
        let t = ArcGisTokenResponse::from_body(max.as_bytes())
            .unwrap()
            .into_token(Timestamp::MAX);
        assert_eq!(t.expires_at(), Timestamp::MAX);
    }

    #[test]
    fn generate_token_expiry_checks() {
        let now = Timestamp::from_unix_millis(1_732_200_000_000);
        let past =
            GenerateTokenResponse::from_body(br#"{"token":"t","expires":1732100000000}"#).unwrap();
        assert_eq!(
            past.into_token(now).unwrap_err().kind(),
            ErrorKind::UnparseableResponse
        );
        let far = GenerateTokenResponse::from_body(br#"{"token":"t","expires":9000000000000000}"#)
            .unwrap();
        assert!(far.into_token(now).is_err());
        assert!(GenerateTokenResponse::from_body(br#"{"token":"t","expires":-1}"#).is_err());
        assert!(
            GenerateTokenResponse::from_body(br#"{"token":"","expires":1732300000000}"#).is_err()
        );
        assert!(
            GenerateTokenResponse::from_body(br#"{"token":"t","expires":"1732300000000"}"#)
                .is_err()
        );
    }
}
