//! How a portal is secured: token-based, or behind a web tier, read from an
//! answer to a request sent without credentials.
//!
//! ArcGIS Enterprise can leave authentication to the web server in front of
//! it (the Web Adaptor in IIS or a Java container): PKI client
//! certificates, Windows Integrated Authentication (`Negotiate`, `NTLM`) or
//! HTTP Basic against a directory. Such a portal has no sign-in page, and
//! its `generateToken` takes no password. [`PortalSecurity`] tells the two
//! apart from `GET {sharing root}/info?f=json` (or a server's `rest/info`)
//! sent with no credential, and says which sign-ins will work.

use std::fmt;

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use std::error::Error as _;

use url::Url;

use crate::classify::{EndpointKind, classify};
use crate::error::{Error, ErrorKind, Result};
use crate::portal::Portal;
use crate::server::ServerRoot;
use crate::transport::{HttpClient, TlsSignal, tls_signal};

/// A scheme a web tier asks for (one `WWW-Authenticate` challenge, or the
/// TLS handshake).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WebTierScheme {
    /// A TLS client certificate (PKI): the handshake asked for one, or the
    /// web server refused the request with 403 before ArcGIS saw it.
    ClientCertificate,
    /// `WWW-Authenticate: Basic realm="…"`: a directory user (LDAP, Active
    /// Directory) over HTTP Basic.
    Basic {
        /// The realm the server named, if any.
        realm: Option<String>,
    },
    /// `WWW-Authenticate: Negotiate`: Kerberos (SPNEGO), Windows Integrated
    /// Authentication.
    Negotiate,
    /// `WWW-Authenticate: NTLM`: Microsoft's deprecated challenge-response
    /// scheme (not supported by this project; see the enterprise guide).
    Ntlm,
    /// Another scheme (`Digest`, a vendor's own), by the name it was given.
    Other(String),
    /// The portal says it is not token-based (`authInfo.isTokenBasedSecurity:
    /// false`) but let the anonymous request through, so the scheme is unknown.
    Unspecified,
}

impl fmt::Display for WebTierScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WebTierScheme::ClientCertificate => f.write_str("client certificate (PKI)"),
            WebTierScheme::Basic { realm: Some(r) } => write!(f, "HTTP Basic (realm {r:?})"),
            WebTierScheme::Basic { realm: None } => f.write_str("HTTP Basic"),
            WebTierScheme::Negotiate => f.write_str("Negotiate (Kerberos)"),
            WebTierScheme::Ntlm => f.write_str("NTLM"),
            WebTierScheme::Other(name) => write!(f, "{name}"),
            WebTierScheme::Unspecified => f.write_str("an unspecified web-tier login"),
        }
    }
}

/// A way to sign in that a portal accepts, as [`PortalSecurity::sign_ins`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignInMethod {
    /// OAuth 2 (a person with PKCE, an app with client credentials) and API keys.
    OAuth,
    /// `generateToken` with an ArcGIS username and password.
    Password,
    /// A TLS client certificate at the web tier, then `generateToken` without a password.
    ClientCertificate,
    /// HTTP Basic at the web tier, then `generateToken` without a password.
    Basic,
    /// Kerberos (`Negotiate`) at the web tier, then `generateToken` without
    /// a password (the `kerberos` feature).
    Kerberos,
}

impl SignInMethod {
    /// A stable `snake_case` name (`oauth`, `password`, `client_certificate`, `basic`, `kerberos`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::OAuth => "oauth",
            SignInMethod::Password => "password",
            SignInMethod::ClientCertificate => "client_certificate",
            SignInMethod::Basic => "basic",
            SignInMethod::Kerberos => "kerberos",
        }
    }
}

impl fmt::Display for SignInMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a portal (or server) is secured, from an answer to a request sent
/// with no credential.
///
/// ```
/// use arcgis_auth_core::{PortalSecurity, SignInMethod, WebTierScheme};
/// use http::{HeaderMap, HeaderValue, StatusCode};
///
/// let mut headers = HeaderMap::new();
/// headers.append("www-authenticate", HeaderValue::from_static("Negotiate"));
/// headers.append("www-authenticate", HeaderValue::from_static(r#"Basic realm="GIS""#));
/// let security = PortalSecurity::from_answer(StatusCode::UNAUTHORIZED, &headers, b"")?;
/// assert!(!security.is_token_based());
/// assert_eq!(security.web_tier()[1], WebTierScheme::Basic { realm: Some("GIS".into()) });
/// assert_eq!(security.sign_ins(), vec![SignInMethod::Kerberos, SignInMethod::Basic]);
///
/// let body = br#"{"owningSystemUrl":"https://gis.example.com/portal",
///                 "authInfo":{"isTokenBasedSecurity":true}}"#;
/// let security = PortalSecurity::from_answer(StatusCode::OK, &HeaderMap::new(), body)?;
/// assert!(security.is_token_based());
/// assert!(security.sign_ins().contains(&SignInMethod::Password));
/// # Ok::<(), arcgis_auth_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSecurity {
    web_tier: Vec<WebTierScheme>,
}

#[derive(Deserialize)]
struct InfoWire {
    #[serde(default, rename = "authInfo")]
    auth_info: Option<AuthInfoWire>,
}

#[derive(Deserialize)]
struct AuthInfoWire {
    #[serde(default, rename = "isTokenBasedSecurity")]
    is_token_based_security: Option<serde_json::Value>,
}

impl PortalSecurity {
    /// A token-based portal: the portal signs users in itself.
    pub fn token_based() -> Self {
        PortalSecurity {
            web_tier: Vec::new(),
        }
    }

    /// A portal behind a web tier asking for `schemes` (an empty list means
    /// [`WebTierScheme::Unspecified`]).
    pub fn web_tier_of(schemes: Vec<WebTierScheme>) -> Self {
        let web_tier = if schemes.is_empty() {
            vec![WebTierScheme::Unspecified]
        } else {
            schemes
        };
        PortalSecurity { web_tier }
    }

    /// Reads the answer to `GET {sharing root}/info?f=json` (or `{server}/rest/info?f=json`)
    /// sent without credentials.
    ///
    /// - HTTP 401: the `WWW-Authenticate` challenges name the web tier's schemes;
    /// - HTTP 403 that is not an ArcGIS JSON error (the web server refused the
    ///   request itself): a client certificate is wanted;
    /// - HTTP 200 with `authInfo.isTokenBasedSecurity: false`: a web tier of
    ///   unknown scheme; any other JSON object: token-based;
    /// - anything else is the error it carries (a 5xx, an HTML page, an ArcGIS
    ///   error body), as [`classify_response`](crate::classify_response) reads it.
    ///
    /// Never panics, whatever the headers and body hold.
    pub fn from_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<Self> {
        if status == StatusCode::UNAUTHORIZED {
            let schemes = headers
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .flat_map(|v| parse_www_authenticate(&String::from_utf8_lossy(v.as_bytes())))
                .collect::<Vec<_>>();
            let mut unique = Vec::with_capacity(schemes.len());
            for s in schemes {
                if !unique.contains(&s) {
                    unique.push(s);
                }
            }
            return Ok(PortalSecurity::web_tier_of(unique));
        }
        if status == StatusCode::FORBIDDEN && !looks_like_json_object(body) {
            return Ok(PortalSecurity::web_tier_of(vec![
                WebTierScheme::ClientCertificate,
            ]));
        }
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        classify(
            EndpointKind::Service,
            true,
            status,
            content_type,
            None,
            body,
        )?;
        let wire: InfoWire = serde_json::from_slice(body).map_err(|e| {
            Error::new(
                ErrorKind::UnparseableResponse,
                format!(
                    "the portal's info answer is not the JSON expected ({e}): check the portal URL"
                ),
            )
        })?;
        let token_based = match wire.auth_info.and_then(|a| a.is_token_based_security) {
            Some(serde_json::Value::Bool(b)) => b,
            Some(serde_json::Value::String(s)) => !s.trim().eq_ignore_ascii_case("false"),
            _ => true,
        };
        Ok(if token_based {
            PortalSecurity::token_based()
        } else {
            PortalSecurity::web_tier_of(Vec::new())
        })
    }

    /// Whether the portal signs users in itself (OAuth, `generateToken` with a password).
    pub fn is_token_based(&self) -> bool {
        self.web_tier.is_empty()
    }

    /// What the web tier asks for, in the order the server named them
    /// (empty for a token-based portal).
    pub fn web_tier(&self) -> &[WebTierScheme] {
        &self.web_tier
    }

    /// The sign-ins that will work, best first: OAuth and passwords on a
    /// token-based portal; on a web tier the credential for each scheme it
    /// asks for (an unspecified web tier: client certificate and Basic, the
    /// ones to try). NTLM and unknown schemes give none.
    pub fn sign_ins(&self) -> Vec<SignInMethod> {
        if self.is_token_based() {
            return vec![SignInMethod::OAuth, SignInMethod::Password];
        }
        let mut out = Vec::new();
        let mut push = |m: SignInMethod| {
            if !out.contains(&m) {
                out.push(m);
            }
        };
        for scheme in &self.web_tier {
            match scheme {
                WebTierScheme::ClientCertificate => push(SignInMethod::ClientCertificate),
                WebTierScheme::Basic { .. } => push(SignInMethod::Basic),
                WebTierScheme::Negotiate => push(SignInMethod::Kerberos),
                WebTierScheme::Unspecified => {
                    push(SignInMethod::ClientCertificate);
                    push(SignInMethod::Basic);
                }
                WebTierScheme::Ntlm | WebTierScheme::Other(_) => {}
            }
        }
        out
    }

    /// A sentence naming the credential the web tier wants, for error messages
    /// ("this portal's web tier asks for a client certificate: sign in with `login pki`").
    pub fn advice(&self) -> String {
        if self.is_token_based() {
            return "the portal is token-based: sign in with OAuth or a password".to_owned();
        }
        let schemes = self
            .web_tier
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let logins = self
            .sign_ins()
            .iter()
            .filter_map(|m| login_hint(*m))
            .collect::<Vec<_>>();
        if logins.is_empty() {
            format!(
                "the web server in front of this portal asks for {schemes}, which this \
                 project cannot provide: ask the administrator for PKI or Basic access"
            )
        } else {
            format!(
                "the web server in front of this portal asks for {schemes}: sign in with {}",
                logins.join(" or ")
            )
        }
    }
}

/// The web-tier credential to use for `method`, as a short instruction.
fn login_hint(method: SignInMethod) -> Option<&'static str> {
    match method {
        SignInMethod::ClientCertificate => Some("a client certificate (`login pki`)"),
        SignInMethod::Basic => Some("a directory username and password (`login basic`)"),
        SignInMethod::Kerberos => Some("a Kerberos ticket (`kinit`, then `login kerberos`)"),
        _ => None,
    }
}

fn looks_like_json_object(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

/// The schemes of one `WWW-Authenticate` header value (RFC 9110, section
/// 11.6.1): several challenges may share one value, separated by commas,
/// each a scheme name followed by a token68 or `name=value` parameters
/// (values may be quoted strings holding commas and `\"`). Anything it
/// cannot read is skipped; it never panics.
///
/// ```
/// use arcgis_auth_core::{WebTierScheme, parse_www_authenticate};
///
/// let schemes = parse_www_authenticate(r#"Basic realm="a, \"b\"", charset="UTF-8", NTLM"#);
/// assert_eq!(schemes, vec![
///     WebTierScheme::Basic { realm: Some(r#"a, "b""#.into()) },
///     WebTierScheme::Ntlm,
/// ]);
/// ```
pub fn parse_www_authenticate(value: &str) -> Vec<WebTierScheme> {
    let mut out = Vec::new();
    for (scheme, params) in challenges(value) {
        let s = match scheme.to_ascii_lowercase().as_str() {
            "basic" => WebTierScheme::Basic {
                realm: params
                    .into_iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("realm"))
                    .map(|(_, v)| v),
            },
            "negotiate" | "kerberos" => WebTierScheme::Negotiate,
            "ntlm" => WebTierScheme::Ntlm,
            _ => WebTierScheme::Other(scheme),
        };
        out.push(s);
    }
    out
}

/// Splits a header value into `(scheme, params)` challenges.
fn challenges(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let items = split_commas(value);
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        // `name=value` continues the current challenge; anything else starts one.
        if let Some((k, v)) = param(item)
            && let Some(last) = out.last_mut()
        {
            last.1.push((k, v));
            continue;
        }
        let (scheme, rest) = match item.find(|c: char| c.is_ascii_whitespace()) {
            Some(i) => (&item[..i], item[i..].trim()),
            None => (item, ""),
        };
        if scheme.is_empty() || !scheme.bytes().all(is_tchar) {
            continue;
        }
        let mut params = Vec::new();
        if let Some(p) = param(rest) {
            params.push(p);
        }
        out.push((scheme.to_owned(), params));
    }
    out
}

/// `name=value` or `name="quoted"`, unquoted; `None` for a token68 or anything else.
fn param(item: &str) -> Option<(String, String)> {
    let (name, value) = item.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return None;
    }
    let value = value.trim();
    // A token68 ends in `=` padding: `abc==` has an empty "value" after the first `=`.
    if value.is_empty() || value.starts_with('=') {
        return None;
    }
    Some((name.to_owned(), unquote(value)))
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"') else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

/// Splits on commas outside quoted strings.
fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl HttpClient {
    /// How `portal` is secured: `GET {sharing root}/info?f=json` sent with
    /// **no** credential (not even this client's web-tier one), read by
    /// [`PortalSecurity::from_answer`]. A TLS handshake that demands a
    /// client certificate is [`WebTierScheme::ClientCertificate`], not an
    /// error: told by the server's alert, or (with the rustls features,
    /// when TLS 1.3 lets the connection close before the alert is read) by
    /// the `CertificateRequest` in its handshake.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Transport`] when the portal cannot be reached (a
    /// portal certificate from an untrusted CA says so), and the kinds
    /// [`PortalSecurity::from_answer`] returns.
    pub async fn probe_portal(&self, portal: &Portal) -> Result<PortalSecurity> {
        self.probe(portal.info_url()).await
    }

    /// How the ArcGIS Server at `server` is secured: `GET {server}/rest/info?f=json`
    /// sent with no credential; see [`probe_portal`](Self::probe_portal).
    pub async fn probe_server(&self, server: &ServerRoot) -> Result<PortalSecurity> {
        self.probe(server.rest_info_url()).await
    }

    async fn probe(&self, mut url: Url) -> Result<PortalSecurity> {
        url.query_pairs_mut().append_pair("f", "json");
        match self.send_anonymous(&url).await {
            Ok(answer) => PortalSecurity::from_answer(answer.status, &answer.headers, &answer.body),
            Err(e) => {
                let demanded = e.kind() == ErrorKind::WebTierCredentialRequired
                    || (e.kind() == ErrorKind::Transport
                        && e.source().and_then(tls_signal) == Some(TlsSignal::HandshakeFailure));
                if demanded {
                    Ok(PortalSecurity::web_tier_of(vec![
                        WebTierScheme::ClientCertificate,
                    ]))
                } else {
                    Err(e)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn challenges_in_every_shape() {
        let s = PortalSecurity::from_answer(
            StatusCode::UNAUTHORIZED,
            &with(&[b"Negotiate, NTLM", b"Basic realm=\"GIS\""]),
            b"<html>401</html>",
        )
        .unwrap();
        assert_eq!(
            s.web_tier(),
            [
                WebTierScheme::Negotiate,
                WebTierScheme::Ntlm,
                WebTierScheme::Basic {
                    realm: Some("GIS".into())
                }
            ]
        );
        assert_eq!(
            s.sign_ins(),
            vec![SignInMethod::Kerberos, SignInMethod::Basic]
        );
        assert!(s.advice().contains("login basic"), "{}", s.advice());
        // A mutual-auth token after Negotiate, unquoted realms, odd case.
        assert_eq!(
            parse_www_authenticate("negotiate YIIabc==, BASIC Realm=corp"),
            vec![
                WebTierScheme::Negotiate,
                WebTierScheme::Basic {
                    realm: Some("corp".into())
                }
            ]
        );
        // Only NTLM: nothing this project can do, and the advice says so.
        let s =
            PortalSecurity::from_answer(StatusCode::UNAUTHORIZED, &with(&[b"NTLM"]), b"").unwrap();
        assert!(s.sign_ins().is_empty());
        assert!(s.advice().contains("cannot provide"), "{}", s.advice());
        // A 401 without any challenge: a web tier of unknown scheme.
        let s =
            PortalSecurity::from_answer(StatusCode::UNAUTHORIZED, &HeaderMap::new(), b"").unwrap();
        assert_eq!(s.web_tier(), [WebTierScheme::Unspecified]);
    }

    #[test]
    fn bodies_and_statuses() {
        let h = HeaderMap::new();
        let s = PortalSecurity::from_answer(
            StatusCode::OK,
            &h,
            br#"{"authInfo":{"isTokenBasedSecurity":false}}"#,
        )
        .unwrap();
        assert_eq!(s.web_tier(), [WebTierScheme::Unspecified]);
        assert_eq!(
            s.sign_ins(),
            vec![SignInMethod::ClientCertificate, SignInMethod::Basic]
        );
        for token_based in [
            &br#"{"owningSystemUrl":"x"}"#[..],
            br#"{"authInfo":{"isTokenBasedSecurity":true}}"#,
            br#"{"authInfo":{"isTokenBasedSecurity":"yes"}}"#,
            br#"{"authInfo":null}"#,
        ] {
            assert!(
                PortalSecurity::from_answer(StatusCode::OK, &h, token_based)
                    .unwrap()
                    .is_token_based()
            );
        }
        // The web server's own 403 page: PKI; ArcGIS's 403 JSON: the error.
        let s =
            PortalSecurity::from_answer(StatusCode::FORBIDDEN, &h, b"<html>403.7</html>").unwrap();
        assert_eq!(s.sign_ins(), vec![SignInMethod::ClientCertificate]);
        let e = PortalSecurity::from_answer(
            StatusCode::FORBIDDEN,
            &h,
            br#"{"error":{"code":403,"message":"nope"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Forbidden);
        let e = PortalSecurity::from_answer(StatusCode::BAD_GATEWAY, &h, b"").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        let e = PortalSecurity::from_answer(StatusCode::OK, &h, b"[1]").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnparseableResponse);
    }

    #[test]
    fn malformed_headers_never_panic() {
        for v in [
            "",
            ",,,",
            "=",
            "\"",
            "Basic realm=\"unterminated",
            "Basic realm=\"esc\\",
            "Basic realm=",
            "Basic =x",
            "Ba sic",
            "(),=\"\\",
            "Basic realm=\"ü\", Négotiate",
        ] {
            let _ = parse_www_authenticate(v);
        }
        let s = PortalSecurity::from_answer(
            StatusCode::UNAUTHORIZED,
            &with(&[&[0xff, 0xfe, b' ', b'x']]),
            &[0xff; 4],
        )
        .unwrap();
        assert!(!s.is_token_based());
    }
}
