//! The HTTP shim: `reqwest` 0.13 under `oauth2`, taught to read ArcGIS answers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, StatusCode};
use oauth2::{HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::classify::{EndpointKind, classify};
use crate::error::{Error, ErrorKind, Result};
use crate::error_response::ArcGisErrorResponse;
use crate::origin::Origin;
use crate::origin::is_secure_or_loopback;
use crate::portal::redact_query;
use crate::security::{PortalSecurity, SignInMethod, WebTierScheme};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::web_tier::{WebTier, WebTierCredential};

/// Form or query parameters whose value is a credential.
const CREDENTIAL_PARAMS: &[&str] = &[
    "password",
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "auth_token",
    "access_token",
];

/// Headers whose value is a credential.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-esri-authorization"];

/// The largest answer read from an auth endpoint (token answers are a few KiB).
const MAX_BODY: usize = 1024 * 1024;

/// The largest answer read by [`HttpClient::post_form_json`] and
/// [`HttpClient::get_json`] (portal answers such as `community/self` are a
/// few KiB; `portals/self` can be larger).
const MAX_JSON_BODY: usize = 4 * 1024 * 1024;

/// An HTTP client for ArcGIS auth endpoints: a `reqwest::Client` with
/// redirects **disabled**, implementing [`oauth2::AsyncHttpClient`].
///
/// What it adds to plain `reqwest`:
/// - a request carrying a credential (password, client secret, code, PKCE
///   verifier, refresh or access token, in the form, query or an
///   `Authorization` header) to a plain `http://` URL that is not loopback is
///   refused with [`ErrorKind::InsecureTransport`] before anything is sent;
/// - a redirect (e.g. to a login page) becomes a typed error instead of being
///   followed with the credentials;
/// - as an `oauth2` client, it rewrites every failed answer (ArcGIS's
///   200-with-an-error-body, real error statuses, HTML pages, empty bodies) to
///   HTTP 400 with an [`ArcGisErrorResponse`] body, so `oauth2` reports
///   [`RequestTokenError::ServerResponse`](oauth2::RequestTokenError::ServerResponse)
///   carrying the right [`ErrorKind`]; successful JSON answers get status 200 and
///   an `application/json` content type whatever ArcGIS labelled them;
/// - answers larger than 1 MiB are refused;
/// - a transient failure (429, 503, ...) carries the server's `Retry-After`
///   as [`Error::retry_after`], whether it was sent as delta-seconds or as an
///   HTTP-date; a date is turned into a wait against this client's clock
///   ([`with_clock`](Self::with_clock)).
///
/// Cloning is cheap and shares the connection pool.
///
/// ```
/// use arcgis_auth_core::HttpClient;
///
/// let http = HttpClient::new().expect("TLS backend available");
/// // Configure timeouts, proxies, user agent on a builder; redirects are switched off regardless.
/// let custom = HttpClient::from_builder(
///     reqwest::Client::builder().user_agent("my-app/1.0"),
/// ).unwrap();
/// # let _ = (http, custom);
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    /// "Now" for turning a `Retry-After` HTTP-date into a wait.
    clock: Arc<dyn Clock>,
    /// The web-tier credential and the origins it goes to (shared by clones).
    web_tier: Option<Arc<WebTier>>,
    /// Extra trusted roots ([`HttpClient::with_root_certificates`]), for the
    /// client that presents a client certificate.
    #[cfg(feature = "__tls")]
    roots: Vec<reqwest::Certificate>,
    /// The same roots as PEM, for the second look at a server that may ask
    /// for a client certificate ([`crate::certificate_request`]).
    #[cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
    roots_pem: Arc<[u8]>,
}

/// The certificates of a PEM bundle, refusing a bundle that holds none.
#[cfg(feature = "__tls")]
fn root_certificates(pem_bundle: &[u8]) -> Result<Vec<reqwest::Certificate>> {
    let certs = reqwest::Certificate::from_pem_bundle(pem_bundle)
        .map_err(|e| unusable_bundle(&e.to_string()))?;
    if certs.is_empty() {
        return Err(unusable_bundle("no certificate in it"));
    }
    Ok(certs)
}

#[cfg(feature = "__tls")]
fn unusable_bundle(detail: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "the root certificate bundle cannot be used ({detail}): give one or more PEM \
             `-----BEGIN CERTIFICATE-----` blocks of CA certificates"
        ),
    )
}

/// A raw answer, before classification.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
    /// The web-tier credential the request carried in `Authorization`
    /// (HTTP Basic, Kerberos), if any.
    pub(crate) sent_web_credential: Option<SignInMethod>,
}

impl Answer {
    fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }

    /// Classifies an auth endpoint's answer; `Ok` only for a JSON object without an error.
    /// `clock` dates a `Retry-After` given as an HTTP-date.
    pub(crate) fn check(&self, endpoint: EndpointKind, clock: &dyn Clock) -> Result<()> {
        self.check_as(endpoint, true, clock)
    }

    /// Classifies an answer; `strict` asks for a JSON object whatever the
    /// content type (auth endpoints), otherwise as [`classify_response`](crate::classify_response).
    fn check_as(&self, endpoint: EndpointKind, strict: bool, clock: &dyn Clock) -> Result<()> {
        if let Some(e) = self.web_tier_refusal() {
            return Err(e);
        }
        let location = self.headers.get(LOCATION).and_then(|v| v.to_str().ok());
        classify(
            endpoint,
            strict,
            self.status,
            self.content_type(),
            location,
            &self.body,
        )
        .map_err(|e| {
            if !e.kind().is_transient() {
                return e;
            }
            match retry_after(&self.headers, clock.now()) {
                Some(wait) => e.with_retry_after(wait),
                None => e,
            }
        })
    }
}

impl Answer {
    /// A 401 whose `WWW-Authenticate` names a web-tier scheme (Basic,
    /// Negotiate, NTLM): the web server in front of ArcGIS wants its own
    /// credential ([`ErrorKind::WebTierCredentialRequired`]), or refused
    /// the one sent ([`ErrorKind::WebTierCredentialRejected`]).
    fn web_tier_refusal(&self) -> Option<Error> {
        if self.status != StatusCode::UNAUTHORIZED
            || !self.headers.contains_key(http::header::WWW_AUTHENTICATE)
        {
            return None;
        }
        let security = PortalSecurity::from_answer(self.status, &self.headers, &[]).ok()?;
        let web = security.web_tier().iter().any(|s| {
            matches!(
                s,
                WebTierScheme::Basic { .. } | WebTierScheme::Negotiate | WebTierScheme::Ntlm
            )
        });
        if !web {
            return None;
        }
        Some(match self.sent_web_credential {
            Some(SignInMethod::Kerberos) => Error::new(
                ErrorKind::WebTierCredentialRejected,
                "the web server in front of the portal refused the Kerberos ticket (HTTP 401): \
                 check with `klist` that the ticket is for the realm the portal's web server \
                 belongs to (its keytab must hold HTTP/<portal host>), or run `kinit` again",
            ),
            Some(_) => Error::new(
                ErrorKind::WebTierCredentialRejected,
                "the web server in front of the portal refused the username and password \
                 (HTTP 401): check them; they are not sent again",
            ),
            None => Error::new(ErrorKind::WebTierCredentialRequired, security.advice()),
        })
    }
}

/// The longest wait a `Retry-After` may ask for; longer asks are cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The `Retry-After` header of an answer, as a wait from `now`: see
/// [`parse_retry_after`]. `None` when the header is missing or malformed.
pub(crate) fn retry_after(headers: &http::HeaderMap, now: Timestamp) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// Reads a `Retry-After` value (RFC 9110, section 10.2.3) as a wait from `now`.
///
/// - delta-seconds (`120`): that many seconds; a number too large for any
///   integer type is still "very long", not malformed;
/// - an HTTP-date in any of the three forms HTTP allows (IMF-fixdate
///   `Sun, 06 Nov 1994 08:49:37 GMT`, and the obsolete RFC 850 and asctime
///   forms, which recipients must also accept): the time from `now` until
///   then, rounded **up** to whole seconds (so the wait never ends before the
///   date, and it survives the whole-second trip through
///   [`ArcGisErrorResponse`]); a date already past is a wait of zero.
///
/// Either way the wait is capped at [`MAX_RETRY_AFTER`] (one hour). Anything
/// else (negative or fractional numbers, an invalid date, a date before
/// 1970) is `None`: the header is ignored, as if it were absent.
fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: the parse fails only on overflow, which is "very long".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let date = Timestamp::from(httpdate::parse_http_date(value).ok()?);
    let millis = date.saturating_duration_since(now).as_millis();
    let secs = u64::try_from(millis.div_ceil(1000)).unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The builder behind [`HttpClient::new`]: the timeouts, and rustls whenever
/// one of the rustls features is on (reqwest would pick native-tls when both
/// are compiled in).
fn default_builder() -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    #[cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
    let builder = builder.tls_backend_rustls();
    builder
}

impl HttpClient {
    /// A client with redirects disabled, a 10-second connect timeout and a
    /// 60-second overall timeout, over the TLS backend the crate features
    /// chose (rustls when a rustls feature is on, else native-tls), verifying
    /// certificates against the platform's roots.
    pub fn new() -> Result<Self> {
        HttpClient::from_builder(default_builder())
    }

    /// Like [`new`](Self::new), and also trusting the root certificates in
    /// `pem_bundle` (one or more PEM `CERTIFICATE` blocks, as in a CA bundle
    /// file): for a portal or server whose certificate comes from a private
    /// CA. The platform's roots stay trusted; verification is never turned
    /// off.
    ///
    /// A bundle with no certificate, or one that cannot be read, is
    /// [`ErrorKind::InvalidInput`].
    ///
    /// ```no_run
    /// use arcgis_auth_core::HttpClient;
    ///
    /// let pem = std::fs::read("/etc/pki/our-enterprise-ca.pem").expect("readable");
    /// let http = HttpClient::with_root_certificates(&pem)?;
    /// # let _ = http;
    /// # Ok::<(), arcgis_auth_core::Error>(())
    /// ```
    #[cfg(feature = "__tls")]
    #[cfg_attr(
        docsrs,
        doc(cfg(any(
            feature = "rustls",
            feature = "rustls-no-provider",
            feature = "native-tls"
        )))
    )]
    pub fn with_root_certificates(pem_bundle: &[u8]) -> Result<Self> {
        let certs = root_certificates(pem_bundle)?;
        // The platform's roots built in `new`; a failure now is the bundle's.
        let mut client = HttpClient::build(default_builder().tls_certs_merge(certs.clone()))
            .map_err(|e| unusable_bundle(&e.to_string()))?;
        client.roots = certs;
        #[cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
        {
            client.roots_pem = pem_bundle.into();
        }
        Ok(client)
    }

    /// Presents `credential` to the web server in front of the portal at
    /// `origin` (PKI, LDAP over HTTP Basic, Kerberos) on every request to that origin,
    /// and to the origins added later with
    /// [`allow_web_tier_origin`](Self::allow_web_tier_origin) (servers proven
    /// federated with the portal), never elsewhere: origins compare exactly
    /// (scheme, host, port), and a URL with a user name or password in it
    /// gets no credential. Basic travels as `Authorization: Basic` and
    /// Kerberos as `Authorization: Negotiate` (a fresh token for each
    /// request), so a token sent with them must use `X-Esri-Authorization`; a certificate is
    /// offered only in handshakes with those origins (other hosts are
    /// reached by a client that holds none).
    ///
    /// The client presenting a certificate is built like [`new`](Self::new)
    /// with the roots of [`with_root_certificates`](Self::with_root_certificates)
    /// (a builder given to [`from_builder`](Self::from_builder) is not reused for it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InsecureTransport`] for an `http://` origin that is not
    /// loopback; [`ErrorKind::InvalidInput`] when the TLS backend refuses the
    /// certificate.
    ///
    /// ```
    /// use arcgis_auth_core::{BasicCredentials, HttpClient, Origin};
    ///
    /// let portal = Origin::parse("https://gis.example.com")?;
    /// let directory = BasicCredentials::new("CORP\\jdoe", "directory-password".into())?;
    /// let http = HttpClient::new()?.with_web_tier(directory, portal)?;
    /// let url = url::Url::parse("https://gis.example.com/portal/sharing/rest/info")?;
    /// assert!(http.web_tier_covers(&url));
    /// let elsewhere = url::Url::parse("https://gis.example.com.evil.example/portal")?;
    /// assert!(!http.web_tier_covers(&elsewhere));
    /// assert!(!format!("{http:?}").contains("directory-password"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_web_tier(
        mut self,
        credential: impl Into<WebTierCredential>,
        origin: Origin,
    ) -> Result<Self> {
        let credential = credential.into();
        if !origin.is_https() && !origin.is_loopback() {
            return Err(Error::new(
                ErrorKind::InsecureTransport,
                format!(
                    "a web-tier credential never travels over plain http:// to {origin}: \
                     use the portal's https:// URL"
                ),
            ));
        }
        let client = self.web_tier_client_for(&credential)?;
        self.web_tier = Some(WebTier::new(credential, client, origin)?);
        Ok(self)
    }

    #[cfg(feature = "__tls")]
    fn web_tier_client_for(&self, credential: &WebTierCredential) -> Result<reqwest::Client> {
        let Some(identity) = crate::web_tier::identity(credential) else {
            return Ok(self.inner.clone());
        };
        let mut builder = default_builder();
        if crate::web_tier::needs_native(credential) {
            #[cfg(feature = "native-tls")]
            {
                builder = builder.tls_backend_native();
            }
        }
        if !self.roots.is_empty() {
            builder = builder.tls_certs_merge(self.roots.clone());
        }
        builder
            .identity(identity)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "the TLS backend refused the client certificate: check that the key \
                     belongs to the certificate",
                )
            })
    }

    #[cfg(not(feature = "__tls"))]
    fn web_tier_client_for(&self, _credential: &WebTierCredential) -> Result<reqwest::Client> {
        Ok(self.inner.clone())
    }

    /// The web-tier credential this client presents, if any ([`with_web_tier`](Self::with_web_tier)).
    pub fn web_tier(&self) -> Option<&WebTierCredential> {
        self.web_tier.as_deref().map(|w| &w.credential)
    }

    /// Whether a request to `url` carries the web-tier credential.
    pub fn web_tier_covers(&self, url: &Url) -> bool {
        self.web_tier.as_ref().is_some_and(|w| w.covers(url))
    }

    /// Adds `origin` to those that get the web-tier credential (for this
    /// client and every clone of it). Only for a server proven federated
    /// with the portal (its `rest/info` names the portal), or one you know
    /// stands behind the same web tier. No effect without a web tier.
    pub fn allow_web_tier_origin(&self, origin: Origin) {
        if let Some(w) = &self.web_tier {
            w.allow(origin);
        }
    }

    /// The origins that get the web-tier credential.
    pub fn web_tier_origins(&self) -> Vec<Origin> {
        self.web_tier
            .as_ref()
            .map(|w| w.origins())
            .unwrap_or_default()
    }

    /// For a client certificate: the `reqwest` client that offers it
    /// (redirects disabled). Send only requests to
    /// [covered](Self::web_tier_covers) URLs with it.
    pub fn web_tier_reqwest(&self) -> Option<&reqwest::Client> {
        let w = self.web_tier.as_ref()?;
        w.in_handshake().then_some(&w.client)
    }

    /// For HTTP Basic: the `Authorization: Basic …` value (marked
    /// sensitive). Put it only on requests to [covered](Self::web_tier_covers) URLs.
    /// [`web_tier_authorization_for`](Self::web_tier_authorization_for)
    /// also makes Kerberos tokens.
    pub fn web_tier_authorization(&self) -> Option<&HeaderValue> {
        self.web_tier.as_ref()?.basic.as_ref()
    }

    /// The `Authorization` value the web tier wants on a request to `url`
    /// (marked sensitive): Basic's, or for Kerberos a fresh
    /// `Negotiate` token for the service `HTTP@<host of url>` (made on
    /// tokio's blocking pool; a token is never sent twice). `None` when
    /// `url` is not [covered](Self::web_tier_covers) (another origin, a
    /// user name in it) or the credential is a certificate.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WebTierCredentialRequired`] when no Kerberos ticket
    /// for that service can be had (no `kinit`, unknown service principal).
    pub async fn web_tier_authorization_for(&self, url: &Url) -> Result<Option<HeaderValue>> {
        match self.web_tier.as_deref() {
            Some(w) if w.covers(url) => w.authorization(url).await,
            _ => Ok(None),
        }
    }

    /// A client from your own `reqwest` builder (proxies, timeouts, user
    /// agent, root certificates). Redirects are disabled whatever the builder says.
    pub fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self> {
        HttpClient::build(builder).map_err(|e| {
            Error::new(
                ErrorKind::Transport,
                "could not build the HTTP client: check the TLS setup",
            )
            .with_source(e)
        })
    }

    fn build(builder: reqwest::ClientBuilder) -> std::result::Result<Self, reqwest::Error> {
        let inner = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(HttpClient {
            inner,
            clock: Arc::new(SystemClock),
            web_tier: None,
            #[cfg(feature = "__tls")]
            roots: Vec::new(),
            #[cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
            roots_pem: Arc::from(&[][..]),
        })
    }

    /// Uses `clock` as "now" when a server's `Retry-After` is an HTTP-date
    /// (the default is [`SystemClock`]): the wait reported by
    /// [`Error::retry_after`] is the time from `clock`'s now until that date.
    ///
    /// Give it the clock you give the rest of your stack (the token manager,
    /// [`OAuthClient::with_clock`](crate::OAuthClient::with_clock), which
    /// sets it on its own copy of this client), so that a test on a
    /// [`ManualClock`](crate::ManualClock) sees the wait the server meant.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arcgis_auth_core::{HttpClient, ManualClock, Timestamp};
    ///
    /// let clock = ManualClock::new(Timestamp::from_unix_millis(1_732_212_345_000));
    /// let http = HttpClient::new()?.with_clock(Arc::new(clock));
    /// # let _ = http;
    /// # Ok::<(), arcgis_auth_core::Error>(())
    /// ```
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock that dates a `Retry-After` HTTP-date ([`with_clock`](Self::with_clock)).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The underlying `reqwest` client (redirects disabled).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends `request` after the credential check; reads at most 1 MiB of answer.
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<Answer> {
        self.send_limited(request, MAX_BODY, false).await
    }

    /// POSTs `form` plus `f=json` to `url`, an ArcGIS portal or service
    /// endpoint (`community/self`, `portals/self`, `oauth2/validateAppAccess`,
    /// a feature service query ...), and returns the body of a successful
    /// answer.
    ///
    /// `token`, when given, travels as a `token` form field: in the body,
    /// never in the URL. As for every request of this client, a credential
    /// bound for plain `http://` to a host that is not loopback is refused
    /// before anything is sent, and redirects are not followed. At most 4 MiB
    /// of answer is read. The answer is classified like
    /// [`classify_response`](crate::classify_response) does (an ArcGIS error
    /// in an HTTP 200 body is an error; a 498 is [`ErrorKind::InvalidToken`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InsecureTransport`] (nothing sent),
    /// [`ErrorKind::Transport`], [`ErrorKind::UnparseableResponse`] (also for
    /// an answer over 4 MiB), and the ArcGIS kinds the answer carries.
    pub async fn post_form_json(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        token: Option<&SecretString>,
    ) -> Result<Vec<u8>> {
        let mut fields: Vec<(&str, FormValue<'_>)> = form
            .iter()
            .map(|&(k, v)| (k, FormValue::Plain(v)))
            .collect();
        if let Some(token) = token {
            fields.push(("token", FormValue::Secret(token)));
        }
        let request = form_request(url, &fields)?;
        self.json_answer(request).await
    }

    /// GETs `url` with `f=json` added to its query, and returns the body of a
    /// successful answer. `token`, when given, travels in the
    /// `X-Esri-Authorization: Bearer` header (marked sensitive), never in the
    /// URL. Checks, limits and errors as for
    /// [`post_form_json`](Self::post_form_json); a token that cannot be a
    /// header value is [`ErrorKind::InvalidInput`] (nothing sent).
    pub async fn get_json(&self, url: &Url, token: Option<&SecretString>) -> Result<Vec<u8>> {
        self.get_json_from(url, token, None).await
    }

    /// [`get_json`](Self::get_json), with `Referer: referer` when given (a
    /// referer-bound token is accepted only with its referer).
    pub(crate) async fn get_json_from(
        &self,
        url: &Url,
        token: Option<&SecretString>,
        referer: Option<&str>,
    ) -> Result<Vec<u8>> {
        let mut url = url.clone();
        url.query_pairs_mut().append_pair("f", "json");
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .header(ACCEPT, "application/json");
        if let Some(referer) = referer {
            let value = HeaderValue::from_str(referer).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "the referer holds characters that cannot travel in an HTTP header",
                )
            })?;
            request = request.header(http::header::REFERER, value);
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        "the token holds characters that cannot travel in an HTTP header: copy                          it again",
                    )
                })?;
            value.set_sensitive(true);
            request = request.header("X-Esri-Authorization", value);
        }
        let request = request.body(Vec::new()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("could not build a request to {} ({e})", redact_query(&url)),
            )
        })?;
        self.json_answer(request).await
    }

    /// Sends a request of [`post_form_json`](Self::post_form_json) or
    /// [`get_json`](Self::get_json) and classifies the answer.
    async fn json_answer(&self, request: HttpRequest) -> Result<Vec<u8>> {
        let answer = self.send_limited(request, MAX_JSON_BODY, false).await?;
        answer.check_as(EndpointKind::Service, false, self.clock.as_ref())?;
        Ok(answer.body)
    }

    /// GETs `url` (JSON accepted) with no credential of any kind, and
    /// returns the answer unclassified (at most 1 MiB of it).
    pub(crate) async fn send_anonymous(&self, url: &Url) -> Result<Answer> {
        let request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .header(ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidUrl,
                    format!("could not build a request to {} ({e})", redact_query(url)),
                )
            })?;
        self.send_limited(request, MAX_BODY, true).await
    }

    /// Sends `request` after the credential check; reads at most `max_body`
    /// bytes of answer. Unless `anonymous`, a request to an origin of the
    /// web tier carries its credential.
    async fn send_limited(
        &self,
        mut request: HttpRequest,
        max_body: usize,
        anonymous: bool,
    ) -> Result<Answer> {
        let url = Url::parse(&request.uri().to_string()).map_err(|e| {
            Error::new(ErrorKind::InvalidUrl, "not a valid request URL").with_source(e)
        })?;
        let web = if anonymous {
            None
        } else {
            self.web_tier.as_deref().filter(|w| w.covers(&url))
        };
        let mut sent_web_credential = None;
        if let Some(w) = web
            && !request.headers().contains_key(AUTHORIZATION)
            && let Some(value) = w.authorization(&url).await?
        {
            request.headers_mut().insert(AUTHORIZATION, value);
            sent_web_credential = Some(w.credential.method());
        }
        refuse_insecure_credentials(&url, &request)?;
        let client = web.map_or(&self.inner, |w| &w.client);
        let where_ = redact_query(&url);
        let request = reqwest::Request::try_from(request).map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "could not build the request to {where_} ({})",
                    e.without_url()
                ),
            )
        })?;
        let offers_certificate = web.is_some_and(|w| w.in_handshake());
        let mut response = match client.execute(request).await {
            Ok(response) => response,
            Err(e) => {
                return Err(self
                    .failed_request(&url, &where_, e, offers_certificate)
                    .await);
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&where_, e))?
        {
            if body.len() + chunk.len() > max_body {
                return Err(Error::new(
                    ErrorKind::UnparseableResponse,
                    format!(
                        "{where_} answered with more than {max_body} bytes: that is not the \
                         answer asked for; check the URL"
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
            sent_web_credential,
        })
    }

    /// The error for a request to `url` that failed with `e`. A request
    /// sent without a client certificate over `https://` that failed after
    /// its handshake, with no TLS alert to tell why, gets a second look
    /// ([`crate::certificate_request`]): a server that asks for a
    /// certificate in its handshake and refuses the request is
    /// [`ErrorKind::WebTierCredentialRequired`], as its alert would have said.
    async fn failed_request(
        &self,
        url: &Url,
        where_: &str,
        e: reqwest::Error,
        offers_certificate: bool,
    ) -> Error {
        #[cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
        if !offers_certificate
            && url.scheme() == "https"
            && !e.is_connect()
            && !e.is_timeout()
            && tls_signal(&e).is_none()
            && crate::certificate_request::asks_for_client_certificate(url, &self.roots_pem).await
        {
            return certificate_demanded(where_).with_source(e.without_url());
        }
        #[cfg(not(any(feature = "rustls", feature = "rustls-no-provider")))]
        let _ = (url, offers_certificate);
        transport_error(where_, e)
    }

    /// POSTs `form` (plus `f=json`) to `url` and returns the body of a
    /// successful answer, or the typed error the answer carries.
    pub(crate) async fn post_form(
        &self,
        endpoint: EndpointKind,
        url: &Url,
        form: &[(&str, FormValue<'_>)],
    ) -> Result<Vec<u8>> {
        let request = form_request(url, form)?;
        let answer = self.send(request).await?;
        answer.check(endpoint, self.clock.as_ref())?;
        Ok(answer.body)
    }

    /// What `oauth2` sees: transport failures as `Err`, every other failure
    /// rewritten to HTTP 400 with an [`ArcGisErrorResponse`] body.
    async fn call_for_oauth2(&self, request: HttpRequest) -> Result<HttpResponse> {
        let answer = self.send(request).await?;
        let (status, body) = match answer.check(EndpointKind::Token, self.clock.as_ref()) {
            Ok(()) => (StatusCode::OK, answer.body),
            Err(e) => {
                let rewritten = ArcGisErrorResponse::from_error(&e, Some(answer.status.as_u16()));
                let body = serde_json::to_vec(&rewritten).map_err(|se| {
                    Error::new(
                        ErrorKind::UnparseableResponse,
                        format!("could not re-encode an ArcGIS error ({se})"),
                    )
                })?;
                (StatusCode::BAD_REQUEST, body)
            }
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.call_for_oauth2(request))
    }
}

/// A form value: plain, or a secret exposed only while the body is encoded.
pub(crate) enum FormValue<'a> {
    Plain(&'a str),
    Secret(&'a SecretString),
}

/// A `application/x-www-form-urlencoded` POST with `f=json` appended.
pub(crate) fn form_request(url: &Url, form: &[(&str, FormValue<'_>)]) -> Result<HttpRequest> {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        match v {
            FormValue::Plain(s) => ser.append_pair(k, s),
            FormValue::Secret(s) => ser.append_pair(k, s.expose_secret()),
        };
    }
    ser.append_pair("f", "json");
    http::Request::builder()
        .method(http::Method::POST)
        .uri(url.as_str())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(ser.finish().into_bytes())
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("could not build a request to {} ({e})", redact_query(url)),
            )
        })
}

/// Refuses a credential bound for plain `http://` to a host that is not loopback.
pub(crate) fn refuse_insecure_credentials(url: &Url, request: &HttpRequest) -> Result<()> {
    if is_secure_or_loopback(url) {
        return Ok(());
    }
    let in_query = url
        .query_pairs()
        .any(|(k, _)| CREDENTIAL_PARAMS.contains(&k.as_ref()));
    let in_body = url::form_urlencoded::parse(request.body())
        .any(|(k, _)| CREDENTIAL_PARAMS.contains(&k.as_ref()));
    let in_headers = request
        .headers()
        .keys()
        .any(|h| CREDENTIAL_HEADERS.contains(&h.as_str()));
    if in_query || in_body || in_headers {
        return Err(insecure(url));
    }
    Ok(())
}

/// The error for a credential that would travel in clear text.
pub(crate) fn insecure(url: &Url) -> Error {
    Error::new(
        ErrorKind::InsecureTransport,
        format!(
            "refusing to send credentials over plain http to {}: use the https:// URL \
             (plain http is only allowed to loopback addresses)",
            redact_query(url)
        ),
    )
}

/// What a failed TLS handshake says about the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsSignal {
    /// The server asked for a client certificate and none was sent
    /// (`certificate_required` alert).
    CertificateDemanded,
    /// The server refused the client certificate sent (`bad_certificate`,
    /// `unknown_ca`, `certificate_expired`, ... alerts).
    CertificateRefused,
    /// The client did not trust the server's certificate.
    ServerNotTrusted,
    /// A `handshake_failure` alert: under TLS 1.2 also what a server that
    /// demands a certificate sends.
    HandshakeFailure,
}

/// Reads the TLS alert behind a request failure, by the texts rustls and
/// OpenSSL give them (neither reaches us as a type through reqwest).
pub(crate) fn tls_signal(e: &(dyn std::error::Error + 'static)) -> Option<TlsSignal> {
    let mut text = String::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        text.push_str(&format!(" {c} {c:?}").to_ascii_lowercase());
        cause = c.source();
    }
    let any = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if any(&[
        "alert: certificaterequired",
        "alert certificate required",
        "certificate_required",
    ]) {
        return Some(TlsSignal::CertificateDemanded);
    }
    if any(&[
        "alert: badcertificate",
        "alert: unknownca",
        "alert: certificateexpired",
        "alert: certificaterevoked",
        "alert: certificateunknown",
        "alert: unsupportedcertificate",
        "alert: accessdenied",
        "alert bad certificate",
        "alert unknown ca",
        "alert certificate expired",
        "alert certificate revoked",
        "alert certificate unknown",
    ]) {
        return Some(TlsSignal::CertificateRefused);
    }
    if any(&[
        "invalid peer certificate",
        "certificate verify failed",
        "unknownissuer",
    ]) {
        return Some(TlsSignal::ServerNotTrusted);
    }
    if any(&["alert: handshakefailure", "alert handshake failure"]) {
        return Some(TlsSignal::HandshakeFailure);
    }
    None
}

/// The error for a server that demands a client certificate none was sent.
fn certificate_demanded(where_: &str) -> Error {
    Error::new(
        ErrorKind::WebTierCredentialRequired,
        format!(
            "{where_} asked for a TLS client certificate and none was sent: sign in with a \
             client certificate (PKI, `login pki`)"
        ),
    )
}

fn transport_error(where_: &str, e: reqwest::Error) -> Error {
    let e = e.without_url();
    match tls_signal(&e) {
        Some(TlsSignal::CertificateDemanded) => {
            return certificate_demanded(where_).with_source(e);
        }
        Some(TlsSignal::CertificateRefused) => {
            return Error::new(
                ErrorKind::WebTierCredentialRejected,
                format!(
                    "{where_} refused the TLS client certificate (another CA, expired or \
                     revoked): use a certificate the portal's web server accepts"
                ),
            )
            .with_source(e);
        }
        Some(TlsSignal::ServerNotTrusted) => {
            return Error::new(
                ErrorKind::Transport,
                format!(
                    "the TLS certificate of {where_} is not trusted (a private CA?): trust \
                     its CA's PEM bundle (HttpClient::with_root_certificates)"
                ),
            )
            .with_source(e);
        }
        _ => {}
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    Error::new(
        ErrorKind::Transport,
        format!("the request to {where_} {what}: check the network and retry"),
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, body: &str) -> HttpRequest {
        http::Request::builder()
            .method("POST")
            .uri(url)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn credentials_never_go_to_remote_plain_http() {
        let remote = Url::parse("http://gis.example.com/portal/sharing/rest/oauth2/token").unwrap();
        for body in [
            "grant_type=client_credentials&client_id=x&client_secret=s",
            "grant_type=authorization_code&code=c",
            "refresh_token=r",
            "username=u&password=p",
            "token=t&serverUrl=x",
            "auth_token=t",
        ] {
            let e = refuse_insecure_credentials(&remote, &req(remote.as_str(), body)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InsecureTransport, "{body}");
        }
        let with_header = http::Request::builder()
            .uri(remote.as_str())
            .header("X-Esri-Authorization", "Bearer t")
            .body(Vec::new())
            .unwrap();
        assert!(refuse_insecure_credentials(&remote, &with_header).is_err());
        let q = Url::parse("http://gis.example.com/x?token=t").unwrap();
        assert!(refuse_insecure_credentials(&q, &req(q.as_str(), "")).is_err());
        // No credential: allowed (e.g. public portal info).
        assert!(refuse_insecure_credentials(&remote, &req(remote.as_str(), "f=json")).is_ok());
        // Loopback and https: allowed.
        for ok in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://localhost/x",
            "https://gis.example.com/x",
        ] {
            let u = Url::parse(ok).unwrap();
            assert!(
                refuse_insecure_credentials(&u, &req(ok, "client_secret=s")).is_ok(),
                "{ok}"
            );
        }
    }

    /// 2024-11-21T18:05:45Z, a Thursday.
    const NOW: Timestamp = Timestamp::from_unix_millis(1_732_212_345_000);

    fn wait(value: &str, now: Timestamp) -> Option<Duration> {
        parse_retry_after(value, now)
    }

    #[test]
    fn retry_after_in_delta_seconds() {
        assert_eq!(wait("120", NOW), Some(Duration::from_secs(120)));
        assert_eq!(wait(" 0 ", NOW), Some(Duration::ZERO));
        assert_eq!(wait("3600", NOW), Some(MAX_RETRY_AFTER));
        // Absurd values are cut to an hour, even past u64.
        assert_eq!(wait("3601", NOW), Some(MAX_RETRY_AFTER));
        assert_eq!(
            wait("999999999999999999999999999", NOW),
            Some(MAX_RETRY_AFTER)
        );
        // Not delta-seconds and not a date: ignored.
        for bad in ["", "  ", "-5", "+5", "1.5", "5s", "soon", "0x10", "١٢"] {
            assert_eq!(wait(bad, NOW), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_as_an_http_date_in_every_form_http_allows() {
        // 90 seconds after NOW, in the three forms of RFC 9110, section 5.6.7.
        for date in [
            "Thu, 21 Nov 2024 18:07:15 GMT",
            "Thursday, 21-Nov-24 18:07:15 GMT",
            "Thu Nov 21 18:07:15 2024",
        ] {
            assert_eq!(wait(date, NOW), Some(Duration::from_secs(90)), "{date}");
        }
        // The date is what counts, not the system time: the same header read at
        // another "now" gives another wait.
        let later = NOW + Duration::from_secs(60);
        assert_eq!(
            wait("Thu, 21 Nov 2024 18:07:15 GMT", later),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_dates_in_the_past_far_future_or_invalid() {
        // Now, and past dates: retry at once.
        assert_eq!(
            wait("Thu, 21 Nov 2024 18:05:45 GMT", NOW),
            Some(Duration::ZERO)
        );
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:49:37 GMT", NOW),
            Some(Duration::ZERO)
        );
        assert_eq!(
            wait("Thu, 01 Jan 1970 00:00:00 GMT", NOW),
            Some(Duration::ZERO)
        );
        // Far future: cut to an hour, like seconds.
        assert_eq!(
            wait("Fri, 31 Dec 9999 23:59:59 GMT", NOW),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            wait("Thu, 21 Nov 2024 19:05:46 GMT", NOW),
            Some(MAX_RETRY_AFTER)
        );
        // A fraction of a second before the date is a whole second to wait:
        // never retry before the date.
        let almost = NOW + Duration::from_millis(89_001);
        assert_eq!(
            wait("Thu, 21 Nov 2024 18:07:15 GMT", almost),
            Some(Duration::from_secs(1))
        );
        for bad in [
            "Wed, 21 Nov 2024 18:07:15 GMT", // wrong weekday
            "Thu, 31 Nov 2024 18:07:15 GMT", // no such day
            "Thu, 21 Nov 2024 24:07:15 GMT",
            "Thu, 21 Nov 2024 18:07:15 CET",
            "2024-11-21T18:07:15Z",
            "Wed, 31 Dec 1969 23:59:59 GMT", // before the epoch: not a date httpdate reads
            "Thu, 21 Nov 2024 18:07:15 GMT trailing",
            "Thu, 21 Nov 2024 18:07:15 GMT\u{e9}",
        ] {
            assert_eq!(wait(bad, NOW), None, "{bad}");
        }
    }

    #[test]
    fn only_the_retry_after_header_counts() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers, NOW), None);
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_static("Thu, 21 Nov 2024 18:06:45 GMT"),
        );
        assert_eq!(retry_after(&headers, NOW), Some(Duration::from_secs(60)));
        // Not visible ASCII: ignored, not a panic.
        headers.insert(
            http::header::RETRY_AFTER,
            HeaderValue::from_bytes(b"\xff120").unwrap(),
        );
        assert_eq!(retry_after(&headers, NOW), None);
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics_and_never_asks_more_than_an_hour(
            value in "\\PC{0,40}",
            now in proptest::prelude::any::<i64>(),
        ) {
            let got = wait(&value, Timestamp::from_unix_millis(now));
            proptest::prop_assert!(got.is_none_or(|w| w <= MAX_RETRY_AFTER));
        }

        #[test]
        fn delta_seconds_are_read_exactly_up_to_the_cap(secs in proptest::prelude::any::<u64>()) {
            let expected = Duration::from_secs(secs.min(3600));
            proptest::prop_assert_eq!(wait(&secs.to_string(), NOW), Some(expected));
        }

        #[test]
        fn http_dates_are_a_wait_from_now_rounded_up_and_capped(
            // 1970-01-01 .. 9999-12-31, whole seconds (what an HTTP-date holds).
            date_secs in 0u64..253_402_300_800,
            // "now" from two hours after the date to two hours before it: past
            // dates, waits under the cap and waits over it.
            ahead_ms in -7_200_000i64..7_200_000,
        ) {
            let date = std::time::UNIX_EPOCH + Duration::from_secs(date_secs);
            let date_ms = i64::try_from(date_secs).unwrap() * 1000;
            let now = Timestamp::from_unix_millis(date_ms - ahead_ms);
            let got = wait(&httpdate::fmt_http_date(date), now);
            let whole_secs = u64::try_from(ahead_ms.max(0)).unwrap().div_ceil(1000);
            let expected = Duration::from_secs(whole_secs.min(3600));
            proptest::prop_assert_eq!(got, Some(expected));
        }
    }

    #[tokio::test]
    async fn the_shim_refuses_before_sending() {
        // Port 9 on a documentation address: if anything were sent, this would be
        // a Transport error (or hang), not InsecureTransport.
        let http = HttpClient::new().unwrap();
        let e = oauth2::AsyncHttpClient::call(
            &http,
            req(
                "http://192.0.2.1:9/sharing/rest/oauth2/token",
                "client_secret=s",
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InsecureTransport);
        assert!(!e.to_string().contains("client_secret=s"));
    }

    #[test]
    fn a_401_after_a_web_tier_credential_is_a_rejection_whatever_it_carries() {
        let answer = |challenge: &'static str, sent: Option<SignInMethod>| {
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            Answer {
                status: StatusCode::UNAUTHORIZED,
                headers,
                body: Vec::new(),
                sent_web_credential: sent,
            }
        };
        // A server's answer token (here a SPNEGO reject) after ours: refused, not another leg.
        let e = answer("Negotiate oQcwBaADCgEC", Some(SignInMethod::Kerberos))
            .web_tier_refusal()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::WebTierCredentialRejected);
        assert!(e.to_string().contains("Kerberos ticket"), "{e}");
        assert!(e.to_string().contains("kinit"), "{e}");
        let e = answer("Basic realm=\"x\"", Some(SignInMethod::Basic))
            .web_tier_refusal()
            .unwrap();
        assert!(e.to_string().contains("username and password"), "{e}");
        // Nothing sent: the credential to use is named.
        let e = answer("Negotiate", None).web_tier_refusal().unwrap();
        assert_eq!(e.kind(), ErrorKind::WebTierCredentialRequired);
        assert!(e.to_string().contains("login kerberos"), "{e}");
    }
}
