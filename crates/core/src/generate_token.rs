//! `generateToken`: username/password tokens and federated-server tokens.

use std::fmt;
use std::net::IpAddr;

use secrecy::SecretString;
use url::Url;

use crate::classify::EndpointKind;
use crate::error::Result;
use crate::expiration::{Expiration, TokenLifetime};
use crate::server::ServerRoot;
use crate::time::Clock;
use crate::token::Token;
use crate::token_response::GenerateTokenResponse;
use crate::transport::{FormValue, HttpClient};

/// What a `generateToken` token is bound to (the `client` parameter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenBinding {
    /// `client=referer&referer=<url>`: every request using the token must send this `Referer`.
    Referer(String),
    /// `client=ip&ip=<addr>`: only requests from this address may use the token.
    Ip(IpAddr),
    /// `client=requestip`: only requests from the address that asked for the token.
    RequestIp,
}

#[derive(Clone)]
enum Credentials {
    Password {
        username: String,
        password: SecretString,
    },
    Federated {
        portal_token: SecretString,
        server: ServerRoot,
    },
    /// `request=getToken`: the web tier has signed the caller in.
    WebTier,
}

/// A `generateToken` request: for a user's name and password, or to trade a
/// portal token for a federated server's own token.
///
/// ```
/// use arcgis_auth_core::{Expiration, GenerateTokenRequest, ServerRoot, TokenBinding};
///
/// let by_password = GenerateTokenRequest::password(
///     "jdoe",
///     "correct horse".into(),
///     TokenBinding::Referer("https://app.example.com".into()),
/// )
/// .with_expiration(Expiration::minutes(120));
/// assert!(!format!("{by_password:?}").contains("horse"));
///
/// let server = ServerRoot::parse("https://gis.example.com/server/rest/services").unwrap();
/// let federated = GenerateTokenRequest::federated("portal-token".into(), &server);
/// assert!(!format!("{federated:?}").contains("portal-token"));
/// ```
#[derive(Clone)]
pub struct GenerateTokenRequest {
    credentials: Credentials,
    binding: Option<TokenBinding>,
    expiration: Option<Expiration>,
}

impl GenerateTokenRequest {
    /// A token for `username`/`password`, bound as `binding` says.
    pub fn password(
        username: impl Into<String>,
        password: SecretString,
        binding: TokenBinding,
    ) -> Self {
        GenerateTokenRequest {
            credentials: Credentials::Password {
                username: username.into(),
                password,
            },
            binding: Some(binding),
            expiration: None,
        }
    }

    /// A server token for `server`, federated with the portal that issued
    /// `portal_token` (`token` + `serverUrl`). Send it to the *portal's*
    /// `generateToken`.
    pub fn federated(portal_token: SecretString, server: &ServerRoot) -> Self {
        GenerateTokenRequest {
            credentials: Credentials::Federated {
                portal_token,
                server: server.clone(),
            },
            binding: None,
            expiration: None,
        }
    }

    /// A portal token for the user the web tier in front of the portal has
    /// signed in (a client certificate, HTTP Basic): `request=getToken`
    /// with `referer` and no username or password. Send it with an
    /// [`HttpClient`] that presents the web-tier credential
    /// ([`HttpClient::with_web_tier`]); every request using the token must
    /// send this `Referer`.
    ///
    /// ```
    /// use arcgis_auth_core::{Expiration, GenerateTokenRequest};
    ///
    /// let request = GenerateTokenRequest::web_tier("https://app.example.com")
    ///     .with_expiration(Expiration::minutes(60));
    /// assert_eq!(request.username(), None);
    /// ```
    pub fn web_tier(referer: impl Into<String>) -> Self {
        GenerateTokenRequest {
            credentials: Credentials::WebTier,
            binding: Some(TokenBinding::Referer(referer.into())),
            expiration: None,
        }
    }

    /// Binds the token (`client=...`); federated requests send no `client` unless set.
    pub fn with_binding(mut self, binding: TokenBinding) -> Self {
        self.binding = Some(binding);
        self
    }

    /// Asks for a lifetime (the server may grant less). Checked when sent:
    /// zero and [`Expiration::MAXIMUM`] are refused.
    pub fn with_expiration(mut self, expiration: Expiration) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// The user name, for password requests.
    pub fn username(&self) -> Option<&str> {
        match &self.credentials {
            Credentials::Password { username, .. } => Some(username),
            Credentials::Federated { .. } | Credentials::WebTier => None,
        }
    }

    /// The server, for federated requests.
    pub fn server(&self) -> Option<&ServerRoot> {
        match &self.credentials {
            Credentials::Federated { server, .. } => Some(server),
            Credentials::Password { .. } | Credentials::WebTier => None,
        }
    }

    /// Posts this request to `url` (a portal's
    /// [`generate_token_url`](crate::Portal::generate_token_url) or a
    /// standalone server's [`generate_token_url`](crate::ServerRoot::generate_token_url)).
    ///
    /// Errors: [`InsecureTransport`](crate::ErrorKind::InsecureTransport) for a
    /// remote `http://` URL (nothing sent), [`InvalidInput`](crate::ErrorKind::InvalidInput)
    /// for a bad expiration, the ArcGIS kinds for errors the server reports
    /// (a 498 here is [`InvalidToken`](crate::ErrorKind::InvalidToken): the
    /// *portal* token of a federated request is dead),
    /// [`UnparseableResponse`](crate::ErrorKind::UnparseableResponse) for a broken answer.
    pub async fn send(&self, http: &HttpClient, url: &Url, clock: &dyn Clock) -> Result<Token> {
        self.send_raw(http, url).await?.into_token(clock.now())
    }

    /// As [`send`](GenerateTokenRequest::send), returning the answer as read.
    pub async fn send_raw(&self, http: &HttpClient, url: &Url) -> Result<GenerateTokenResponse> {
        let expiration = self
            .expiration
            .map(|e| {
                e.check_for(TokenLifetime::GenerateToken)
                    .map(Expiration::to_param)
            })
            .transpose()?;
        let server_url;
        let ip;
        let mut form: Vec<(&str, FormValue<'_>)> = Vec::with_capacity(8);
        match &self.credentials {
            Credentials::Password { username, password } => {
                form.push(("username", FormValue::Plain(username)));
                form.push(("password", FormValue::Secret(password)));
            }
            Credentials::Federated {
                portal_token,
                server,
            } => {
                server_url = server.as_url().to_string();
                form.push(("token", FormValue::Secret(portal_token)));
                form.push(("serverUrl", FormValue::Plain(&server_url)));
            }
            Credentials::WebTier => form.push(("request", FormValue::Plain("getToken"))),
        }
        let web_tier = matches!(self.credentials, Credentials::WebTier);
        match &self.binding {
            // `request=getToken` takes the referer alone, as the ArcGIS API for Python sends it.
            Some(TokenBinding::Referer(r)) if web_tier => {
                form.push(("referer", FormValue::Plain(r)));
            }
            Some(TokenBinding::Referer(r)) => {
                form.push(("client", FormValue::Plain("referer")));
                form.push(("referer", FormValue::Plain(r)));
            }
            Some(TokenBinding::Ip(addr)) => {
                ip = addr.to_string();
                form.push(("client", FormValue::Plain("ip")));
                form.push(("ip", FormValue::Plain(&ip)));
            }
            Some(TokenBinding::RequestIp) => form.push(("client", FormValue::Plain("requestip"))),
            None => {}
        }
        if let Some(e) = &expiration {
            form.push(("expiration", FormValue::Plain(e)));
        }
        let body = http.post_form(EndpointKind::Service, url, &form).await?;
        GenerateTokenResponse::from_body(&body)
    }
}

impl fmt::Debug for GenerateTokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("GenerateTokenRequest");
        match &self.credentials {
            Credentials::Password { username, .. } => d
                .field("username", username)
                .field("password", &"[REDACTED]"),
            Credentials::Federated { server, .. } => d
                .field("server", server)
                .field("portal_token", &"[REDACTED]"),
            Credentials::WebTier => d.field("request", &"getToken"),
        };
        d.field("binding", &self.binding)
            .field("expiration", &self.expiration)
            .finish()
    }
}
