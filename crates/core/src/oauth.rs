//! OAuth 2 against an ArcGIS portal: the `oauth2` client configured for
//! ArcGIS, and a friendly wrapper for every grant ArcGIS knows.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use oauth2::basic::BasicTokenIntrospectionResponse;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken,
    TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::classify::EndpointKind;
use crate::error::{Error, ErrorKind, Result};
use crate::error_response::ArcGisErrorResponse;
use crate::expiration::{Expiration, TokenLifetime};
use crate::generate_token::GenerateTokenRequest;
use crate::origin::is_secure_or_loopback;
use crate::portal::Portal;
use crate::redirect::RedirectParams;
use crate::time::{Clock, SystemClock, Timestamp};
use crate::token::{RefreshToken, Token, constant_time_eq};
use crate::token_response::{ArcGisTokenResponse, RevokeResponse, unparseable};
use crate::transport::{FormValue, HttpClient, insecure};

/// `oauth2::Client` configured for ArcGIS: our token and error types,
/// authorization and token endpoints set, client credentials in the request
/// body ([`AuthType::RequestBody`]; ArcGIS never takes Basic auth).
///
/// [`OAuthClient`] builds one and wraps it, and is what most code should use;
/// [`OAuthClient::oauth2_client`] lends it out for grants the wrapper does not cover.
pub type ArcGisOAuth2Client = oauth2::Client<
    ArcGisErrorResponse,
    ArcGisTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    ArcGisErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// An [`ArcGisOAuth2Client`] for `portal` and `client_id`. No client secret is
/// stored in it: pass one per request (`add_extra_param("client_secret", ...)`)
/// as [`OAuthClient`] does, so the secret stays a [`SecretString`].
pub(crate) fn arcgis_oauth2_client(portal: &Portal, client_id: &str) -> ArcGisOAuth2Client {
    oauth2::Client::new(ClientId::new(client_id.to_owned()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::from_url(portal.authorize_url()))
        .set_token_uri(TokenUrl::from_url(portal.token_url()))
}

/// Maps `oauth2`'s error for a request sent through [`HttpClient`] to ours.
///
/// `ServerResponse` keeps the ArcGIS kind decided by the shim (a token-endpoint
/// 498 is [`ErrorKind::RefreshTokenExpired`]); `Request` is the shim's own error
/// (transport, insecure transport); `Parse` and `Other` become
/// [`ErrorKind::UnparseableResponse`]. The response body is never copied into
/// the error: it may hold a token.
pub(crate) fn map_request_token_error(e: RequestTokenError<Error, ArcGisErrorResponse>) -> Error {
    match e {
        RequestTokenError::ServerResponse(r) => r.into_error(),
        RequestTokenError::Request(e) => e,
        RequestTokenError::Parse(e, _body) => {
            let inner = e.inner();
            Error::new(
                ErrorKind::UnparseableResponse,
                format!(
                    "the token response could not be read (at `{}`: {inner}): the portal's \
                     answer is broken; retry later",
                    e.path()
                ),
            )
        }
        RequestTokenError::Other(msg) if msg.starts_with("failed to prepare request") => {
            Error::new(ErrorKind::InvalidUrl, msg)
        }
        RequestTokenError::Other(msg) => Error::new(
            ErrorKind::UnparseableResponse,
            format!("unexpected token endpoint answer: {msg}"),
        ),
    }
}

/// The look of the sign-in page (`style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Style {
    /// `style=light`.
    Light,
    /// `style=dark`.
    Dark,
}

/// Optional parts of an authorization request.
///
/// ```
/// use arcgis_auth_core::{AuthorizeOptions, Expiration, Style};
///
/// let options = AuthorizeOptions::new()
///     .expiration(Expiration::MAXIMUM) // the refresh token: as long as allowed
///     .locale("fr")
///     .style(Style::Dark);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct AuthorizeOptions {
    expiration: Option<Expiration>,
    locale: Option<String>,
    style: Option<Style>,
    state: Option<String>,
}

impl AuthorizeOptions {
    /// No options: two-week refresh token, the portal's locale and style.
    pub fn new() -> Self {
        AuthorizeOptions::default()
    }

    /// The refresh token's lifetime (`expiration`, minutes; [`Expiration::MAXIMUM`] allowed).
    pub fn expiration(mut self, expiration: Expiration) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// The sign-in page's language (`locale`, e.g. `fr` or `en-GB`).
    pub fn locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }

    /// The sign-in page's look (`style`).
    pub fn style(mut self, style: Style) -> Self {
        self.style = Some(style);
        self
    }

    /// Uses `state` instead of a fresh random one. It must be unguessable and
    /// single-use (it is what stops forged redirects); prefer the default.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }
}

/// A prepared sign-in: the URL to open, and what to keep until the user comes back.
///
/// Keep the whole value (or its state and verifier) until the redirect
/// arrives, then call [`Authorization::code_from_redirect`] and
/// [`OAuthClient::exchange_code`] with [`Authorization::pkce_verifier`].
pub struct Authorization {
    url: Url,
    state: String,
    pkce_verifier: SecretString,
    redirect_uri: String,
}

impl Authorization {
    /// Rebuilds a sign-in from its saved parts (e.g. read back from a session store).
    pub fn from_parts(
        url: Url,
        state: String,
        pkce_verifier: SecretString,
        redirect_uri: String,
    ) -> Self {
        Authorization {
            url,
            state,
            pkce_verifier,
            redirect_uri,
        }
    }

    /// The `oauth2/authorize` URL to open in the user's browser.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The random `state` sent; the redirect must carry it back unchanged.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The PKCE verifier whose S256 challenge the URL carries; send it with the
    /// code. Empty for implicit-flow sign-ins.
    pub fn pkce_verifier(&self) -> &SecretString {
        &self.pkce_verifier
    }

    /// The redirect URI the URL names (the code exchange must repeat it exactly).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Whether `returned` is the state this sign-in sent (constant-time).
    pub fn state_matches(&self, returned: &str) -> bool {
        constant_time_eq(self.state.as_bytes(), returned.as_bytes())
    }

    /// The authorization code from the URL the portal redirected to, read by
    /// the rules of [`RedirectParams`].
    ///
    /// Errors: [`ErrorKind::StateMismatch`] when the state is missing,
    /// repeated or differs (a forged or stale redirect), even when the
    /// redirect reports an error; [`ErrorKind::AccessDenied`] when the user
    /// declined (`error=access_denied`), the matching kind for other `error`
    /// values; [`ErrorKind::InvalidRequest`] when no code is present.
    pub fn code_from_redirect(&self, redirect: &Url) -> Result<SecretString> {
        let params = RedirectParams::from_encoded(redirect.query().unwrap_or_default());
        params.check_state(&self.state)?;
        params.code()
    }

    /// The token from the URL fragment of an implicit-flow redirect
    /// (`#access_token=...&expires_in=...&username=...&ssl=true&state=...`),
    /// for a sign-in started with [`OAuthClient::authorize_url_implicit`].
    /// `now` is when the redirect arrived. Implicit tokens have no refresh token.
    ///
    /// Errors as for [`code_from_redirect`](Authorization::code_from_redirect)
    /// for the state and `error`, and [`ErrorKind::UnparseableResponse`] for a
    /// missing token, an `expires_in` that is not a whole number of seconds in
    /// range, or an `ssl` that is neither `true` nor `false`
    /// ([`RedirectParams::implicit_token`]).
    pub fn token_from_implicit_redirect(&self, redirect: &Url, now: Timestamp) -> Result<Token> {
        let params = RedirectParams::from_encoded(redirect.fragment().unwrap_or_default());
        params.check_state(&self.state)?;
        params.implicit_token(now)
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state guards the redirect and the URL carries it: keep both out
        // of logs, as the flows' `PendingSignIn` does.
        f.debug_struct("Authorization")
            .field("url", &crate::portal::redact_query(&self.url))
            .field("state", &"[REDACTED]")
            .field("pkce_verifier", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// Which token [`OAuthClient::revoke`] is given (`token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// An access token.
    AccessToken,
    /// A refresh token (revoking it revokes the access tokens made from it).
    RefreshToken,
}

/// OAuth 2 with an ArcGIS portal: sign-in URLs and every grant, answering
/// normalised [`Token`]s and typed [`Error`]s.
///
/// Every request goes through [`HttpClient`] (so credentials never go to a
/// remote `http://` URL), sends `f=json`, and puts the client secret in the
/// form body. Issue times come from the injected [`Clock`].
///
/// ```
/// use arcgis_auth_core::{AuthorizeOptions, HttpClient, OAuthClient, Portal};
///
/// let client = OAuthClient::new(Portal::arcgis_online(), "my-client-id", HttpClient::new()?);
/// let sign_in = client.authorize_url("http://127.0.0.1:8765/callback", &AuthorizeOptions::new())?;
/// let url = sign_in.url().as_str();
/// assert!(url.starts_with("https://www.arcgis.com/sharing/rest/oauth2/authorize?"));
/// assert!(url.contains("response_type=code"));
/// assert!(url.contains("code_challenge_method=S256"));
/// // Later: client.exchange_code(&code, Some(sign_in.pkce_verifier()), sign_in.redirect_uri()).await
/// # Ok::<(), arcgis_auth_core::Error>(())
/// ```
#[derive(Clone)]
pub struct OAuthClient {
    portal: Portal,
    client_id: String,
    client_secret: Option<SecretString>,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    oauth2: ArcGisOAuth2Client,
}

impl OAuthClient {
    /// A public client (no secret) of `portal` with `client_id`, using the system clock.
    pub fn new(portal: Portal, client_id: impl Into<String>, http: HttpClient) -> Self {
        let client_id = client_id.into();
        let oauth2 = arcgis_oauth2_client(&portal, &client_id);
        OAuthClient {
            portal,
            client_id,
            client_secret: None,
            http,
            clock: Arc::new(SystemClock),
            oauth2,
        }
    }

    /// Adds a client secret (confidential server apps, app authentication).
    pub fn with_client_secret(mut self, secret: SecretString) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// Uses `clock` for issue times (tests: [`ManualClock`](crate::ManualClock)),
    /// and, through [`HttpClient::with_clock`] on this client's copy of the
    /// HTTP client, as "now" for a `Retry-After` that a server sends as an
    /// HTTP-date.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.http = self.http.with_clock(Arc::clone(&clock));
        self.clock = clock;
        self
    }

    /// The portal.
    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether a client secret is configured.
    pub fn has_client_secret(&self) -> bool {
        self.client_secret.is_some()
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The underlying `oauth2` client, for grants this wrapper does not cover.
    pub fn oauth2_client(&self) -> &ArcGisOAuth2Client {
        &self.oauth2
    }

    fn check_secure(&self, url: &Url) -> Result<()> {
        if is_secure_or_loopback(url) {
            Ok(())
        } else {
            Err(insecure(url))
        }
    }

    /// Prepares a sign-in with the authorization-code flow and PKCE (S256):
    /// `client_id`, `response_type=code`, `redirect_uri`, `state` (random),
    /// `code_challenge` + `code_challenge_method=S256`, and the options
    /// (`expiration` sets the *refresh* token's lifetime).
    ///
    /// Errors: [`ErrorKind::InvalidUrl`] for a bad redirect URI,
    /// [`ErrorKind::InvalidInput`] for an expiration out of range,
    /// [`ErrorKind::InsecureTransport`] when the portal is remote plain `http://`
    /// (the user's password would cross the network in clear).
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        options: &AuthorizeOptions,
    ) -> Result<Authorization> {
        self.build_authorize_url(redirect_uri, options, false)
    }

    /// Prepares a sign-in with the deprecated implicit flow
    /// (`response_type=token`, no PKCE; `expiration` sets the access token's
    /// lifetime, at most 2 weeks). The token arrives in the redirect's
    /// fragment: read it with [`Authorization::token_from_implicit_redirect`].
    /// It cannot be refreshed. Prefer [`authorize_url`](OAuthClient::authorize_url).
    ///
    /// The returned [`Authorization::pkce_verifier`] is empty.
    pub fn authorize_url_implicit(
        &self,
        redirect_uri: &str,
        options: &AuthorizeOptions,
    ) -> Result<Authorization> {
        self.build_authorize_url(redirect_uri, options, true)
    }

    fn build_authorize_url(
        &self,
        redirect_uri: &str,
        options: &AuthorizeOptions,
        implicit: bool,
    ) -> Result<Authorization> {
        self.check_secure(self.portal.sharing_root())?;
        let redirect = redirect_url(redirect_uri)?;
        let lifetime = if implicit {
            TokenLifetime::ImplicitAccessToken
        } else {
            TokenLifetime::RefreshToken
        };
        let expiration = options
            .expiration
            .map(|e| e.check_for(lifetime).map(Expiration::to_param))
            .transpose()?;
        let state = match &options.state {
            Some(s) if s.is_empty() => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "an empty state would not protect the sign-in: leave it unset for a random one",
                ));
            }
            Some(s) => CsrfToken::new(s.clone()),
            None => CsrfToken::new_random(),
        };
        let mut request = self
            .oauth2
            .authorize_url(|| state)
            .set_redirect_uri(Cow::Owned(redirect));
        let verifier = if implicit {
            request = request.use_implicit_flow();
            SecretString::from(String::new())
        } else {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            SecretString::from(verifier.into_secret())
        };
        if let Some(e) = expiration {
            request = request.add_extra_param("expiration", e);
        }
        if let Some(l) = &options.locale {
            request = request.add_extra_param("locale", l.clone());
        }
        if let Some(s) = options.style {
            let s = match s {
                Style::Light => "light",
                Style::Dark => "dark",
            };
            request = request.add_extra_param("style", s);
        }
        let (url, state) = request.url();
        Ok(Authorization {
            url,
            state: state.into_secret(),
            pkce_verifier: verifier,
            redirect_uri: redirect_uri.to_owned(),
        })
    }

    /// `grant_type=authorization_code`: trades the code from the redirect for
    /// tokens (access token for 30 minutes, and a refresh token).
    /// `pkce_verifier` is the one of [`Authorization::pkce_verifier`] (`None`
    /// only for confidential apps that skipped PKCE); `redirect_uri` must be the
    /// one used to sign in.
    pub async fn exchange_code(
        &self,
        code: &SecretString,
        pkce_verifier: Option<&SecretString>,
        redirect_uri: &str,
    ) -> Result<Token> {
        self.check_secure(self.portal.sharing_root())?;
        let redirect = redirect_url(redirect_uri)?;
        let mut request = self
            .oauth2
            .exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()))
            .set_redirect_uri(Cow::Owned(redirect));
        if let Some(v) = pkce_verifier {
            check_verifier(v)?;
            request =
                request.set_pkce_verifier(PkceCodeVerifier::new(v.expose_secret().to_owned()));
        }
        if let Some(secret) = &self.client_secret {
            request = request.add_extra_param("client_secret", secret.expose_secret());
        }
        let issued_at = self.clock.now();
        let response = request
            .add_extra_param("f", "json")
            .request_async(&self.http)
            .await
            .map_err(map_request_token_error)?;
        Ok(response.into_token(issued_at))
    }

    /// `grant_type=client_credentials`: an app token (needs the client secret).
    /// `expiration` defaults to ArcGIS's 2 hours and may be at most 2 weeks.
    pub async fn client_credentials(&self, expiration: Option<Expiration>) -> Result<Token> {
        self.check_secure(self.portal.sharing_root())?;
        let secret = self.client_secret.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "client_credentials needs a client secret: build the client with_client_secret",
            )
        })?;
        let expiration = expiration
            .map(|e| {
                e.check_for(TokenLifetime::AppToken)
                    .map(Expiration::to_param)
            })
            .transpose()?;
        let mut request = self
            .oauth2
            .exchange_client_credentials()
            .add_extra_param("client_secret", secret.expose_secret());
        if let Some(e) = expiration {
            request = request.add_extra_param("expiration", e);
        }
        let issued_at = self.clock.now();
        let response = request
            .add_extra_param("f", "json")
            .request_async(&self.http)
            .await
            .map_err(map_request_token_error)?;
        Ok(response.into_token(issued_at))
    }

    /// `grant_type=refresh_token`: a new access token. ArcGIS sends no new
    /// refresh token here, so the returned token carries `refresh_token` over
    /// (or the new one, should the portal send one).
    ///
    /// A 498 is [`ErrorKind::RefreshTokenExpired`]: sign in again, do not retry.
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<Token> {
        self.check_secure(self.portal.sharing_root())?;
        let rt = oauth2::RefreshToken::new(refresh_token.secret().expose_secret().to_owned());
        let mut request = self.oauth2.exchange_refresh_token(&rt);
        if let Some(secret) = &self.client_secret {
            request = request.add_extra_param("client_secret", secret.expose_secret());
        }
        let issued_at = self.clock.now();
        let response = request
            .add_extra_param("f", "json")
            .request_async(&self.http)
            .await
            .map_err(map_request_token_error)?;
        let mut token = response.into_token(issued_at);
        if token.refresh_token().is_none() {
            token = token.with_refresh_token(Some(refresh_token.clone()));
        }
        Ok(token)
    }

    /// `grant_type=exchange_refresh_token` (ArcGIS only): a new access token
    /// AND a new refresh token; the old refresh token stops working, so store
    /// the new one before anything else. An answer without a new refresh token
    /// is [`ErrorKind::UnparseableResponse`].
    pub async fn exchange_refresh_token(
        &self,
        refresh_token: &RefreshToken,
        redirect_uri: &str,
    ) -> Result<Token> {
        let url = self.portal.token_url();
        self.check_secure(&url)?;
        redirect_url(redirect_uri)?;
        let issued_at = self.clock.now();
        let form = [
            ("grant_type", FormValue::Plain("exchange_refresh_token")),
            ("client_id", FormValue::Plain(&self.client_id)),
            ("refresh_token", FormValue::Secret(refresh_token.secret())),
            ("redirect_uri", FormValue::Plain(redirect_uri)),
        ];
        let body = self
            .http
            .post_form(EndpointKind::Token, &url, &form)
            .await?;
        let response = ArcGisTokenResponse::from_body(&body)?;
        if !response.has_refresh_token() {
            return Err(Error::new(
                ErrorKind::UnparseableResponse,
                "exchange_refresh_token answered without a new refresh token; the old one no \
                 longer works: sign in again",
            ));
        }
        Ok(response.into_token(issued_at))
    }

    /// Revokes a token at `oauth2/revokeToken` and reads the answer
    /// (`{"success":true}`; ArcGIS says so even for unknown tokens). App tokens
    /// and `generateToken` tokens cannot be revoked.
    pub async fn revoke(&self, token: &SecretString, hint: TokenTypeHint) -> Result<()> {
        let url = self.portal.revoke_token_url();
        self.check_secure(&url)?;
        let hint = match hint {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        };
        let form = [
            ("client_id", FormValue::Plain(&self.client_id)),
            ("auth_token", FormValue::Secret(token)),
            ("token_type_hint", FormValue::Plain(hint)),
        ];
        let body = self
            .http
            .post_form(EndpointKind::Token, &url, &form)
            .await?;
        let answer: RevokeResponse =
            serde_json::from_slice(&body).map_err(|e| unparseable("revokeToken response", &e))?;
        if answer.success {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::ArcGis,
                "the portal answered success=false to the revocation: the token may still \
                 work; retry, or let it expire",
            ))
        }
    }

    /// `generateToken` at this portal (username/password, or a federated
    /// server token); see [`GenerateTokenRequest`].
    pub async fn generate_token(&self, request: &GenerateTokenRequest) -> Result<Token> {
        request
            .send(
                &self.http,
                &self.portal.generate_token_url(),
                self.clock.as_ref(),
            )
            .await
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClient")
            .field("portal", &self.portal)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

fn redirect_url(redirect_uri: &str) -> Result<RedirectUrl> {
    RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidUrl,
            format!(
                "`{redirect_uri}` is not a valid redirect URI: give the exact URI registered \
                 for the app (or urn:ietf:wg:oauth:2.0:oob)"
            ),
        )
        .with_source(e)
    })
}

/// RFC 7636: 43–128 characters of `A-Z a-z 0-9 - . _ ~`.
fn check_verifier(v: &SecretString) -> Result<()> {
    let s = v.expose_secret();
    let ok = (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            "the PKCE verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~: pass the \
             verifier of the Authorization this sign-in started with",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_rules() {
        assert!(check_verifier(&"a".repeat(43).into()).is_ok());
        assert!(check_verifier(&"a".repeat(128).into()).is_ok());
        assert!(check_verifier(&"a".repeat(42).into()).is_err());
        assert!(check_verifier(&"a".repeat(129).into()).is_err());
        assert!(check_verifier(&format!("{}+", "a".repeat(43)).into()).is_err());
    }

    /// A client, and a sign-in it began with the caller's `state`.
    fn sign_in_with_state(state: &str) -> (OAuthClient, Authorization) {
        let http = HttpClient::new().unwrap();
        let client = OAuthClient::new(Portal::arcgis_online(), "id", http);
        let a = client
            .authorize_url(
                "http://127.0.0.1:1/cb",
                &AuthorizeOptions::new().state(state),
            )
            .unwrap();
        (client, a)
    }

    #[test]
    fn caller_state_is_used_and_empty_state_refused() {
        let (client, a) = sign_in_with_state("s-123");
        assert!(!format!("{a:?}").contains("s-123"), "{a:?}");
        assert_eq!(a.state(), "s-123");
        assert!(
            a.url()
                .query_pairs()
                .any(|(k, v)| k == "state" && v == "s-123")
        );
        assert!(a.state_matches("s-123"));
        assert!(!a.state_matches("s-124"));
        let e = client
            .authorize_url("http://127.0.0.1:1/cb", &AuthorizeOptions::new().state(""))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn redirects_need_exactly_this_state_even_to_report_an_error() {
        let (_, a) = sign_in_with_state("s1");
        let kind = |q: &str| {
            let url = Url::parse(&format!("http://127.0.0.1:1/cb?{q}")).unwrap();
            a.code_from_redirect(&url).map(drop).map_err(|e| e.kind())
        };
        assert!(kind("code=c&state=s1").is_ok());
        // A forged denial is still forged.
        assert_eq!(
            kind("error=access_denied&state=forged"),
            Err(ErrorKind::StateMismatch)
        );
        // The state must be there once: a second one is not "also" ours.
        assert_eq!(
            kind("code=c&state=s1&state=s1"),
            Err(ErrorKind::StateMismatch)
        );
        assert_eq!(
            kind("code=c&state=s1&state=x"),
            Err(ErrorKind::StateMismatch)
        );
        // The portal may leave the state out of a denial.
        assert_eq!(kind("error=access_denied"), Err(ErrorKind::AccessDenied));
        assert_eq!(
            kind("error=access_denied&state=s1"),
            Err(ErrorKind::AccessDenied)
        );
        let url = Url::parse(
            "http://127.0.0.1:1/cb?error=invalid_request&error_description=bad%0Aredirect&state=s1",
        )
        .unwrap();
        let e = a.code_from_redirect(&url).unwrap_err();
        assert!(!e.to_string().contains('\n'), "{e}");
    }
}
