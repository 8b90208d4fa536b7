//! Web-tier credentials: what the web server in front of a portal asks for
//! (a TLS client certificate, HTTP Basic, Kerberos), and the origins it may go to.

use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::security::SignInMethod;

#[cfg(all(
    feature = "pkcs12",
    any(feature = "rustls", feature = "rustls-no-provider")
))]
mod pkcs12;

/// A directory user's name and password for HTTP Basic at the web tier
/// (LDAP, or Windows users over Basic).
///
/// The password is a [`SecretString`]; `Debug` shows the user name only.
#[derive(Clone)]
pub struct BasicCredentials {
    username: String,
    password: SecretString,
}

impl BasicCredentials {
    /// `username` (often `DOMAIN\user` or `user@domain`) and `password`.
    ///
    /// A user name holding `:` (which Basic cannot carry) or a control
    /// character is [`ErrorKind::InvalidInput`].
    pub fn new(username: impl Into<String>, password: SecretString) -> Result<Self> {
        let username = username.into();
        if username.is_empty() || username.contains(':') || username.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the HTTP Basic username must be non-empty, without `:` or control characters",
            ));
        }
        Ok(BasicCredentials { username, password })
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The `Authorization: Basic …` value, marked sensitive.
    fn header(&self) -> Result<HeaderValue> {
        let raw = format!("{}:{}", self.username, self.password.expose_secret());
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                "the HTTP Basic credentials cannot travel in a header",
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// A TLS client certificate and its private key, as the TLS backend holds
/// them, with a label that identifies it (its file's path) for records and
/// logs. `Debug` shows the label only.
#[cfg(feature = "__tls")]
#[derive(Clone)]
pub struct ClientCertificate {
    identity: reqwest::Identity,
    label: String,
    /// Held by the platform's TLS library (read from PKCS#12).
    native: bool,
}

#[cfg(feature = "__tls")]
impl ClientCertificate {
    /// A certificate (chain) and its private key, both PEM: `cert_pem` holds
    /// one or more `CERTIFICATE` blocks, `key_pem` a `PRIVATE KEY` (PKCS#8),
    /// `EC PRIVATE KEY` (SEC1) or `RSA PRIVATE KEY` (PKCS#1) block. `label`
    /// names it in records and logs (e.g. the certificate's path).
    ///
    /// An encrypted key, or files that are not what they should be, are
    /// [`ErrorKind::InvalidInput`] with what to do.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &SecretString,
        label: impl Into<String>,
    ) -> Result<Self> {
        let key = key_pem.expose_secret();
        if key.contains("ENCRYPTED PRIVATE KEY") || key.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the private key is encrypted: decrypt it first \
                 (openssl pkey -in key.pem -out plain-key.pem) or use a PKCS#12 file",
            ));
        }
        if !key.contains("PRIVATE KEY-----") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the key file holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, \
                 `EC PRIVATE KEY` or `RSA PRIVATE KEY`)",
            ));
        }
        if !String::from_utf8_lossy(cert_pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the certificate file holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            ));
        }
        let identity = pem_identity(cert_pem, key)?;
        Ok(ClientCertificate {
            identity,
            label: label.into(),
            native: cfg!(not(any(feature = "rustls", feature = "rustls-no-provider"))),
        })
    }

    /// A PKCS#12 (`.p12`/`.pfx`) file and its password. Under rustls the
    /// `pkcs12` feature reads it (the MAC is checked with the password, then
    /// the key and its certificate chain are decrypted: PBES2 with AES, or the
    /// legacy 3DES and RC2 ciphers of older exports); with `native-tls` alone
    /// the platform's TLS library reads it. Without either this is
    /// [`ErrorKind::InvalidInput`] saying how to convert the file to PEM once:
    /// `openssl pkcs12 -in cert.p12 -clcerts -nokeys -out cert.pem` and
    /// `openssl pkcs12 -in cert.p12 -nocerts -nodes -out key.pem`.
    ///
    /// A wrong password, a file that is not PKCS#12, or one without a private
    /// key and its certificate are [`ErrorKind::InvalidInput`]; the password
    /// never appears in the error.
    pub fn from_pkcs12_der(
        der: &[u8],
        password: &SecretString,
        label: impl Into<String>,
    ) -> Result<Self> {
        #[cfg(all(
            feature = "pkcs12",
            any(feature = "rustls", feature = "rustls-no-provider")
        ))]
        {
            let (cert_pem, key_pem) = pkcs12::to_pem(der, password)?;
            Self::from_pem(cert_pem.as_bytes(), &key_pem, label)
        }
        #[cfg(all(
            feature = "native-tls",
            not(all(
                feature = "pkcs12",
                any(feature = "rustls", feature = "rustls-no-provider")
            ))
        ))]
        {
            let identity = reqwest::Identity::from_pkcs12_der(der, password.expose_secret())
                .map_err(|_| pkcs12_unreadable())?;
            Ok(ClientCertificate {
                identity,
                label: label.into(),
                native: true,
            })
        }
        #[cfg(not(any(
            feature = "native-tls",
            all(
                feature = "pkcs12",
                any(feature = "rustls", feature = "rustls-no-provider")
            )
        )))]
        {
            let _ = (der, password, label.into());
            Err(Error::new(
                ErrorKind::InvalidInput,
                "PKCS#12 files are read with the pkcs12 feature (or native-tls), which this \
                 build does not have: turn it on, or convert the file to PEM once (openssl \
                 pkcs12 -in FILE -clcerts -nokeys -out cert.pem; openssl pkcs12 -in FILE \
                 -nocerts -nodes -out key.pem) and give the certificate and key",
            ))
        }
    }

    /// What identifies the certificate (its file's path, as given).
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// A PKCS#12 file that its password does not open, or that is no PKCS#12.
#[cfg(all(
    feature = "__tls",
    any(
        feature = "native-tls",
        all(
            feature = "pkcs12",
            any(feature = "rustls", feature = "rustls-no-provider")
        )
    )
))]
pub(crate) fn pkcs12_unreadable() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "the PKCS#12 file cannot be read: check its password, and that it is \
         a .p12/.pfx file holding a certificate and its key",
    )
}

#[cfg(feature = "__tls")]
fn unreadable_identity() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "the certificate and key cannot be used together: check that the key belongs to \
         the certificate and is PKCS#8, SEC1 or PKCS#1 PEM",
    )
}

/// The backend's identity from PEM: rustls when a rustls feature is on.
#[cfg(all(
    feature = "__tls",
    any(feature = "rustls", feature = "rustls-no-provider")
))]
fn pem_identity(cert_pem: &[u8], key: &str) -> Result<reqwest::Identity> {
    let mut both = cert_pem.to_vec();
    both.push(b'\n');
    both.extend_from_slice(key.as_bytes());
    // Only CERTIFICATE and key blocks: reqwest refuses any other block.
    let both = String::from_utf8_lossy(&both).into_owned();
    reqwest::Identity::from_pem(pem_blocks(&both).as_bytes()).map_err(|_| unreadable_identity())
}

#[cfg(all(
    feature = "native-tls",
    not(any(feature = "rustls", feature = "rustls-no-provider"))
))]
fn pem_identity(cert_pem: &[u8], key: &str) -> Result<reqwest::Identity> {
    reqwest::Identity::from_pkcs8_pem(cert_pem, key.as_bytes()).map_err(|_| unreadable_identity())
}

/// The PEM blocks of `text` (text outside them, such as `openssl`'s "Bag
/// Attributes" lines, dropped).
#[cfg(all(
    feature = "__tls",
    any(feature = "rustls", feature = "rustls-no-provider")
))]
fn pem_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            inside = true;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line.starts_with("-----END ") {
            inside = false;
        }
    }
    out
}

#[cfg(feature = "__tls")]
impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("label", &self.label)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// A credential for the web server in front of a portal, presented only
/// to the origins an [`HttpClient`](crate::HttpClient) allows
/// ([`HttpClient::with_web_tier`](crate::HttpClient::with_web_tier)).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum WebTierCredential {
    /// `Authorization: Basic` on every request to the allowed origins.
    Basic(BasicCredentials),
    /// A TLS client certificate, offered in the handshakes with the allowed origins.
    #[cfg(feature = "__tls")]
    ClientCertificate(ClientCertificate),
    /// Kerberos: `Authorization: Negotiate` with a fresh SPNEGO token for
    /// `HTTP@<host>` on every request to the allowed origins.
    #[cfg(feature = "kerberos")]
    Kerberos(crate::negotiate::KerberosCredential),
}

impl WebTierCredential {
    /// Which sign-in this credential is.
    pub fn method(&self) -> SignInMethod {
        match self {
            WebTierCredential::Basic(_) => SignInMethod::Basic,
            #[cfg(feature = "__tls")]
            WebTierCredential::ClientCertificate(_) => SignInMethod::ClientCertificate,
            #[cfg(feature = "kerberos")]
            WebTierCredential::Kerberos(_) => SignInMethod::Kerberos,
        }
    }

    /// What identifies it, never a secret: the Basic user name, the
    /// certificate's label, or the Kerberos principal.
    pub fn identity(&self) -> &str {
        match self {
            WebTierCredential::Basic(b) => b.username(),
            #[cfg(feature = "__tls")]
            WebTierCredential::ClientCertificate(c) => c.label(),
            #[cfg(feature = "kerberos")]
            WebTierCredential::Kerberos(k) => k.principal(),
        }
    }
}

impl From<BasicCredentials> for WebTierCredential {
    fn from(c: BasicCredentials) -> Self {
        WebTierCredential::Basic(c)
    }
}

#[cfg(feature = "kerberos")]
impl From<crate::negotiate::KerberosCredential> for WebTierCredential {
    fn from(c: crate::negotiate::KerberosCredential) -> Self {
        WebTierCredential::Kerberos(c)
    }
}

#[cfg(feature = "__tls")]
impl From<ClientCertificate> for WebTierCredential {
    fn from(c: ClientCertificate) -> Self {
        WebTierCredential::ClientCertificate(c)
    }
}

/// A web-tier credential inside an `HttpClient`, with the client that
/// presents it and the origins it may go to (shared by the client's clones).
pub(crate) struct WebTier {
    pub(crate) credential: WebTierCredential,
    /// The client that offers the certificate (a copy of the plain one for Basic).
    pub(crate) client: reqwest::Client,
    /// `Authorization: Basic …`, for Basic.
    pub(crate) basic: Option<HeaderValue>,
    origins: RwLock<Vec<Origin>>,
}

impl WebTier {
    pub(crate) fn new(
        credential: WebTierCredential,
        client: reqwest::Client,
        origin: Origin,
    ) -> Result<Arc<Self>> {
        let basic = match &credential {
            WebTierCredential::Basic(b) => Some(b.header()?),
            #[cfg(feature = "__tls")]
            WebTierCredential::ClientCertificate(_) => None,
            #[cfg(feature = "kerberos")]
            WebTierCredential::Kerberos(_) => None,
        };
        Ok(Arc::new(WebTier {
            credential,
            client,
            basic,
            origins: RwLock::new(vec![origin]),
        }))
    }

    /// The `Authorization` value for a request to `url` (which it must
    /// [cover](Self::covers)): Basic's, or a fresh Negotiate token for the
    /// URL's host; `None` for a certificate.
    pub(crate) async fn authorization(&self, url: &Url) -> Result<Option<HeaderValue>> {
        #[cfg(feature = "kerberos")]
        if let WebTierCredential::Kerberos(k) = &self.credential {
            let host = url.host_str().unwrap_or_default();
            return k.header_for(host).await.map(Some);
        }
        let _ = url;
        Ok(self.basic.clone())
    }

    /// Whether the credential travels in the TLS handshake (a certificate).
    pub(crate) fn in_handshake(&self) -> bool {
        #[cfg(feature = "__tls")]
        if let WebTierCredential::ClientCertificate(_) = &self.credential {
            return true;
        }
        false
    }

    pub(crate) fn covers(&self, url: &Url) -> bool {
        let Ok(origin) = Origin::of(url) else {
            return false;
        };
        // A URL with a user name or password never gets a credential.
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        self.origins
            .read()
            .map(|o| o.contains(&origin))
            .unwrap_or(false)
    }

    pub(crate) fn allow(&self, origin: Origin) {
        // A credential never travels in clear to a remote host.
        if !origin.is_https() && !origin.is_loopback() {
            return;
        }
        if let Ok(mut o) = self.origins.write()
            && !o.contains(&origin)
        {
            o.push(origin);
        }
    }

    pub(crate) fn origins(&self) -> Vec<Origin> {
        self.origins.read().map(|o| o.clone()).unwrap_or_default()
    }
}

impl fmt::Debug for WebTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebTier")
            .field("credential", &self.credential)
            .field("origins", &self.origins())
            .finish_non_exhaustive()
    }
}

/// Whether a certificate needs the native backend.
#[cfg(feature = "__tls")]
pub(crate) fn needs_native(credential: &WebTierCredential) -> bool {
    match credential {
        WebTierCredential::ClientCertificate(c) => c.native,
        _ => false,
    }
}

/// The identity to add to a client builder, if any.
#[cfg(feature = "__tls")]
pub(crate) fn identity(credential: &WebTierCredential) -> Option<reqwest::Identity> {
    match credential {
        WebTierCredential::ClientCertificate(c) => Some(c.identity.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_encoded_and_never_printed() {
        let c = BasicCredentials::new("CORP\\jdoe", "s3cr3t-pw".into()).unwrap();
        let header = c.header().unwrap();
        assert!(header.is_sensitive());
        assert_eq!(
            header.to_str().unwrap(),
            "Basic Q09SUFxqZG9lOnMzY3IzdC1wdw=="
        );
        let w = WebTierCredential::from(c);
        assert!(!format!("{w:?}").contains("s3cr3t"));
        assert_eq!(w.identity(), "CORP\\jdoe");
        for bad in ["", "a:b", "a\nb"] {
            let e = BasicCredentials::new(bad, "x".into()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn origins_are_exact_and_userinfo_is_refused() {
        let origin = Origin::parse("https://gis.example.com").unwrap();
        let client = reqwest::Client::new();
        let c = BasicCredentials::new("jdoe", "pw".into()).unwrap();
        let tier = WebTier::new(c.into(), client, origin).unwrap();
        let covers = |u: &str| tier.covers(&Url::parse(u).unwrap());
        assert!(covers("https://gis.example.com/portal/sharing/rest/info"));
        assert!(covers("https://GIS.example.com:443/portal"));
        for attack in [
            "http://gis.example.com/portal",
            "https://gis.example.com.evil.example/portal",
            "https://evil.example/gis.example.com/portal",
            "https://gis.example.com:8443/portal",
            "https://jdoe@gis.example.com/portal",
            "https://x:y@gis.example.com/portal",
            "https://evil.example@gis.example.com.evil.example/",
            "https://sub.gis.example.com/portal",
        ] {
            assert!(!covers(attack), "{attack}");
        }
        tier.allow(Origin::parse("https://server.example.com:6443").unwrap());
        assert!(covers(
            "https://server.example.com:6443/arcgis/rest/services"
        ));
        assert!(!covers("https://server.example.com/arcgis/rest/services"));
        tier.allow(Origin::parse("http://plain.example.com").unwrap());
        assert!(!covers("http://plain.example.com/arcgis/rest/services"));
    }
}
