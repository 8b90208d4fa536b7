//! The session record: everything needed to keep a sign-in alive, and nothing
//! that must not be written down (no password, no client secret).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use arcgis_auth_core::{ExposeSecret, Portal, RefreshToken, SecretString, Timestamp, Token};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format version this crate writes. Records with a higher version are
/// reported as [`StoreErrorKind::Corrupt`](crate::StoreErrorKind::Corrupt)
/// rather than half-understood; lower versions are upgraded on load.
pub const FORMAT_VERSION: u32 = 1;

/// How a session was signed in; decides how it can be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionKind {
    /// A user signed in with OAuth (authorization code, PKCE): renewed with the refresh token.
    User,
    /// An app signed in with client credentials: renewed by signing in again with the
    /// client secret, which is never stored.
    App,
    /// A user signed in with `generateToken`: renewed by signing in again with the
    /// password, which is never stored.
    GenerateToken,
    /// A static API key: never renewed.
    ApiKey,
    /// A user the web tier in front of an Enterprise portal signed in (a
    /// TLS client certificate, HTTP Basic, Kerberos): renewed with `generateToken`
    /// `request=getToken` over the same web-tier credential, whose secret
    /// (private key, password) is never stored;
    /// [`SessionRecord::web_tier`] says which credential it was.
    WebTier,
}

/// Which web-tier credential a [`SessionKind::WebTier`] session was signed
/// in with: what identifies it, never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebTierCredentialId {
    /// HTTP Basic, as this directory user (the password is never stored).
    Basic {
        /// The user name sent to the web tier.
        username: String,
    },
    /// A TLS client certificate, by its label (the path of its file; the
    /// private key and any PKCS#12 password are never stored).
    ClientCertificate {
        /// What identifies the certificate, e.g. `/home/jdoe/.pki/jdoe.pem`.
        label: String,
    },
    /// Kerberos (`Negotiate`), as this principal (the tickets stay in the
    /// user's credential cache).
    Kerberos {
        /// The principal, e.g. `jdoe@EXAMPLE.COM`.
        principal: String,
    },
}

/// A token issued for one federated server, kept in the session record.
#[derive(Clone, Serialize, Deserialize)]
pub struct ServerTokenRecord {
    /// The server token.
    #[serde(serialize_with = "ser_secret", deserialize_with = "de_secret")]
    pub token: SecretString,
    /// When it expires.
    pub expires_at: Timestamp,
    /// Whether the server requires HTTPS for it.
    #[serde(default)]
    pub ssl: bool,
}

impl fmt::Debug for ServerTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTokenRecord")
            .field("token", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .field("ssl", &self.ssl)
            .finish()
    }
}

/// One signed-in session, as stored.
///
/// Unknown fields (written by a newer release) are kept in [`extra`](Self::extra)
/// and written back unchanged, so an older process never erases what a newer
/// one stored.
///
/// ```
/// use arcgis_auth_core::{Portal, Timestamp};
/// use arcgis_auth_storage::{SessionKind, SessionRecord};
///
/// let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
/// record.client_id = Some("my-app".into());
/// record.access_token = Some("secret-token".into());
/// record.expires_at = Some(Timestamp::from_unix_millis(1_800_000));
///
/// let json = record.to_json().unwrap();
/// let back = arcgis_auth_storage::SessionRecord::from_json(&json).unwrap();
/// assert_eq!(back.client_id.as_deref(), Some("my-app"));
/// assert!(!format!("{back:?}").contains("secret-token"));
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionRecord {
    /// The record format version ([`FORMAT_VERSION`] when written by this release).
    #[serde(default = "format_v1")]
    pub format: u32,
    /// The portal the session belongs to.
    pub portal: Portal,
    /// How it was signed in.
    pub kind: SessionKind,
    /// The OAuth client id (user and app sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The signed-in user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The current access token (or API key).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_secret",
        deserialize_with = "de_opt_secret"
    )]
    pub access_token: Option<SecretString>,
    /// When the access token expires ([`Timestamp::MAX`] for API keys without expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Whether the portal requires HTTPS for this session's tokens.
    #[serde(default)]
    pub ssl: bool,
    /// The refresh token (user sessions).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_opt_secret",
        deserialize_with = "de_opt_secret"
    )]
    pub refresh_token: Option<SecretString>,
    /// When the refresh token was issued (to decide when to exchange it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_issued_at: Option<Timestamp>,
    /// When the refresh token expires, when the portal said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_at: Option<Timestamp>,
    /// The redirect URI used at sign-in (`exchange_refresh_token` needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// For `generateToken` sessions bound to `client=referer`: the referer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referer: Option<String>,
    /// For `generateToken` sessions bound to `client=ip`: the address the
    /// tokens are bound to, so a renewal after a restart binds them the same
    /// way. (Neither this nor [`referer`](Self::referer) set: `client=requestip`.)
    /// Added in format 1 without a version bump: older readers keep it in
    /// their `extra` fields and write it back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<IpAddr>,
    /// For [`SessionKind::WebTier`] sessions: the web-tier credential
    /// (its identity only). Added in format 1 without a version bump, like
    /// [`client_ip`](Self::client_ip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_tier: Option<WebTierCredentialId>,
    /// Tokens for federated servers, keyed by server root URL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_tokens: BTreeMap<String, ServerTokenRecord>,
    /// When this record was last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// Fields this release does not know, kept so they survive a round trip.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn format_v1() -> u32 {
    1
}

impl SessionRecord {
    /// An empty record of `kind` for `portal`.
    pub fn new(portal: Portal, kind: SessionKind) -> Self {
        SessionRecord {
            format: FORMAT_VERSION,
            portal,
            kind,
            client_id: None,
            username: None,
            access_token: None,
            expires_at: None,
            ssl: false,
            refresh_token: None,
            refresh_token_issued_at: None,
            refresh_token_expires_at: None,
            redirect_uri: None,
            referer: None,
            client_ip: None,
            web_tier: None,
            server_tokens: BTreeMap::new(),
            updated_at: None,
            extra: BTreeMap::new(),
        }
    }

    /// The stored access token as a [`Token`] (with its refresh token), if there is one.
    pub fn token(&self) -> Option<Token> {
        let access = self.access_token.clone()?;
        let expires_at = self.expires_at?;
        let refresh = self.refresh_token.clone().map(|rt| {
            RefreshToken::new(
                rt,
                self.refresh_token_issued_at
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                self.refresh_token_expires_at,
            )
        });
        Some(
            Token::new(access, expires_at)
                .with_ssl(self.ssl)
                .with_username(self.username.clone())
                .with_refresh_token(refresh),
        )
    }

    /// Stores `token` (and its refresh token, when it has one; an existing refresh
    /// token is kept when `token` carries none, as after a `refresh_token` grant).
    pub fn set_token(&mut self, token: &Token) {
        self.access_token = Some(token.access_token().clone());
        self.expires_at = Some(token.expires_at());
        self.ssl = token.ssl();
        if let Some(user) = token.username() {
            self.username = Some(user.to_owned());
        }
        if let Some(rt) = token.refresh_token() {
            self.refresh_token = Some(rt.secret().clone());
            self.refresh_token_issued_at = Some(rt.issued_at());
            self.refresh_token_expires_at = rt.expires_at();
        }
    }

    /// Serialises to JSON (the secrets are written: this is the storage format).
    pub fn to_json(&self) -> crate::StoreResult<String> {
        serde_json::to_string(self).map_err(|e| {
            crate::StoreError::new(
                crate::StoreErrorKind::InvalidInput,
                "session record cannot be serialised",
            )
            .with_source(e)
        })
    }

    /// Parses a stored record, refusing newer formats and anything malformed with
    /// [`StoreErrorKind::Corrupt`](crate::StoreErrorKind::Corrupt). The error never
    /// quotes the input (it may hold tokens).
    pub fn from_json(json: &str) -> crate::StoreResult<Self> {
        Self::from_slice(json.as_bytes())
    }

    /// As [`SessionRecord::from_json`], from bytes.
    pub fn from_slice(bytes: &[u8]) -> crate::StoreResult<Self> {
        let record: SessionRecord = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's messages can quote a string value: keep only the position.
            crate::StoreError::corrupt(format!(
                "stored session is not a valid record (line {}, column {}): it was left untouched",
                e.line(),
                e.column()
            ))
        })?;
        record.check_format()
    }

    /// As [`SessionRecord::from_json`], from an already parsed JSON value.
    pub(crate) fn from_value(value: serde_json::Value) -> crate::StoreResult<Self> {
        let record = SessionRecord::deserialize(value).map_err(|_| {
            // The message can quote a value (a token): say only that it is malformed.
            crate::StoreError::corrupt(
                "stored session is not a valid record (a field is missing or has the wrong type): \
                 it was left untouched",
            )
        })?;
        record.check_format()
    }

    fn check_format(self) -> crate::StoreResult<Self> {
        if self.format > FORMAT_VERSION || self.format == 0 {
            return Err(crate::StoreError::corrupt(format!(
                "stored session has format {} but this release reads 1 to {FORMAT_VERSION}: \
                 upgrade arcgis-auth",
                self.format
            )));
        }
        Ok(self)
    }
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |o: &Option<SecretString>| o.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("SessionRecord")
            .field("format", &self.format)
            .field("portal", &self.portal)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("access_token", &redacted(&self.access_token))
            .field("expires_at", &self.expires_at)
            .field("ssl", &self.ssl)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("refresh_token_issued_at", &self.refresh_token_issued_at)
            .field("refresh_token_expires_at", &self.refresh_token_expires_at)
            .field("redirect_uri", &self.redirect_uri)
            .field("referer", &self.referer)
            .field("client_ip", &self.client_ip)
            .field("web_tier", &self.web_tier)
            .field("server_tokens", &self.server_tokens)
            .field("updated_at", &self.updated_at)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn ser_secret<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

fn de_secret<'de, D: Deserializer<'de>>(de: D) -> Result<SecretString, D::Error> {
    String::deserialize(de).map(SecretString::from)
}

fn ser_opt_secret<S: Serializer>(s: &Option<SecretString>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(s) => ser.serialize_some(s.expose_secret()),
        None => ser.serialize_none(),
    }
}

fn de_opt_secret<'de, D: Deserializer<'de>>(de: D) -> Result<Option<SecretString>, D::Error> {
    Option::<String>::deserialize(de).map(|o| o.map(SecretString::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ip_binding_round_trips_and_is_left_out_when_unset() {
        let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::GenerateToken);
        let json = r.to_json().unwrap();
        assert!(!json.contains("client_ip"), "{json}");
        assert_eq!(SessionRecord::from_json(&json).unwrap().client_ip, None);

        r.client_ip = Some("2001:db8::7".parse().unwrap());
        let json = r.to_json().unwrap();
        assert!(json.contains(r#""client_ip":"2001:db8::7""#), "{json}");
        let back = SessionRecord::from_json(&json).unwrap();
        assert_eq!(back.client_ip, r.client_ip);
        assert_eq!(back.format, FORMAT_VERSION);
        assert!(back.extra.is_empty());
    }

    #[test]
    fn the_web_tier_credential_round_trips_as_its_identity_only() {
        let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::WebTier);
        assert!(!r.to_json().unwrap().contains("web_tier\":"));
        for id in [
            WebTierCredentialId::Basic {
                username: "CORP\\jdoe".into(),
            },
            WebTierCredentialId::ClientCertificate {
                label: "/home/jdoe/.pki/jdoe.pem".into(),
            },
            WebTierCredentialId::Kerberos {
                principal: "jdoe@EXAMPLE.COM".into(),
            },
        ] {
            r.web_tier = Some(id.clone());
            let json = r.to_json().unwrap();
            assert!(json.contains(r#""kind":"web_tier""#), "{json}");
            let back = SessionRecord::from_json(&json).unwrap();
            assert_eq!(back.web_tier, Some(id));
            assert_eq!(back.kind, SessionKind::WebTier);
            assert!(back.extra.is_empty());
        }
        let json = r.to_json().unwrap();
        assert!(
            json.contains(r#""web_tier":{"method":"kerberos","principal":"jdoe@EXAMPLE.COM"}"#),
            "{json}"
        );
    }
}
