//! # arcgis-auth-core
//!
//! The contract and the wire for ArcGIS authentication: what a portal, a
//! server and a token are, how ArcGIS reports errors (usually inside an
//! HTTP 200), and an [`oauth2`] client that speaks ArcGIS's dialect of OAuth 2.
//! No storage and no policy live here: `arcgis-auth-storage` persists
//! sessions, `arcgis-auth-flows` decides when to sign in and refresh.
//!
//! ## The pieces
//!
//! - **Where**: [`Portal`] (a sharing root, found from any URL a user pastes),
//!   [`ServerRoot`] (an ArcGIS Server site cut from a service URL) and its
//!   [`ServerInfo`] (which portal it is federated with), [`Origin`]
//!   (exact scheme/host/port comparison, the only test for "may this URL get a token").
//! - **What went wrong**: [`Error`] with a matchable [`ErrorKind`];
//!   [`ArcGisError`] (the body ArcGIS sent); [`classify_response`] /
//!   [`classify_token_response`] find the error in *any* answer, HTTP 200 included.
//! - **Tokens**: the normalised [`Token`] (absolute expiry, `ssl`, user,
//!   [`RefreshToken`]) with a [`Freshness`] check against an injected [`Clock`];
//!   the wire forms [`ArcGisTokenResponse`] (an [`oauth2::TokenResponse`]) and
//!   [`GenerateTokenResponse`]; requested lifetimes as [`Expiration`] per [`TokenLifetime`].
//! - **Talking to the portal**: [`HttpClient`] (reqwest, redirects off, an
//!   [`oauth2::AsyncHttpClient`] that turns ArcGIS's error answers into
//!   [`ArcGisErrorResponse`]s), [`OAuthClient`] (sign-in URLs with PKCE, the
//!   code, client-credentials, refresh and `exchange_refresh_token` grants,
//!   revocation), [`GenerateTokenRequest`] (username/password and federated
//!   server tokens), and the raw [`ArcGisOAuth2Client`] alias.
//!
//! Secrets are [`SecretString`]s everywhere; `Debug` and `Display` never show
//! them; credentials are never sent over plain `http://` except to loopback
//! ([`ErrorKind::InsecureTransport`], decided before anything is sent).
//!
//! ## Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `url` | through `wire` | `url::Url` and what needs it: [`Origin`], [`ServerRoot`], [`RedirectParams`], the portal's endpoint URLs |
//! | `wire` | through the TLS features | the HTTP client, every grant, `generateToken`, `/rest/info`, reading answers |
//! | `rustls` | yes | TLS by rustls with aws-lc-rs, against the platform's roots |
//! | `rustls-no-provider` | no | TLS by rustls with the crypto provider the program installs |
//! | `native-tls` | no | TLS by the platform's library |
//! | `pkcs12` | no | PKCS#12 client certificates read in Rust, for rustls ([`ClientCertificate::from_pkcs12_der`]) |
//! | `http2` | yes | HTTP/2 to portals that offer it |
//! | `system-proxy` | yes | the system's proxy settings |
//! | `kerberos` | no | Kerberos (`Negotiate`) at the web tier: `KerberosCredential`, on MIT krb5's GSSAPI (building needs libkrb5-dev and libclang-dev) |
//!
//! Without default features core is the contract alone, what a session
//! store needs: [`Portal`] (its sharing root as text, read strictly), tokens,
//! errors and clocks, with no HTTP client, no TLS and no URL parser.
//!
//! ## Example
//!
//! Reading an ArcGIS answer and deciding what to do, without a network:
//!
//! ```
//! use std::time::Duration;
//! use arcgis_auth_core::{
//!     classify_response, ArcGisTokenResponse, ErrorKind, Freshness, ManualClock, Clock,
//!     Portal, Timestamp,
//! };
//! use http::StatusCode;
//!
//! // Any URL a user might paste leads to the portal's endpoints.
//! let portal = Portal::parse("https://myorg.maps.arcgis.com/home/index.html")?;
//! assert_eq!(portal.token_url().as_str(), "https://myorg.maps.arcgis.com/sharing/rest/oauth2/token");
//!
//! // A token answer, normalised against an injected clock.
//! let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
//! let answer = br#"{"access_token":"s3cr3t-access","expires_in":1800,"username":"jdoe","ssl":true}"#;
//! let token = ArcGisTokenResponse::from_body(answer)?.into_token(clock.now());
//! assert_eq!(token.freshness(clock.now(), Duration::from_secs(300)), Freshness::Fresh);
//! clock.advance(Duration::from_secs(1600));
//! assert_eq!(token.freshness(clock.now(), Duration::from_secs(300)), Freshness::RefreshDue);
//! assert!(!format!("{token:?}").contains("s3cr3t")); // secrets never print
//!
//! // A service answering HTTP 200 with an expired-token error.
//! let body = br#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#;
//! let err = classify_response(StatusCode::OK, Some("application/json"), body).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::InvalidToken);
//! # Ok::<(), arcgis_auth_core::Error>(())
//! ```
//!
//! Signing in (needs a portal, so not run here):
//!
//! ```no_run
//! use arcgis_auth_core::{AuthorizeOptions, HttpClient, OAuthClient, Portal};
//!
//! # async fn run() -> Result<(), arcgis_auth_core::Error> {
//! let client = OAuthClient::new(Portal::arcgis_online(), "my-client-id", HttpClient::new()?);
//! let sign_in = client.authorize_url("http://127.0.0.1:8765/callback", &AuthorizeOptions::new())?;
//! println!("open {}", sign_in.url());
//! // ... the browser comes back to http://127.0.0.1:8765/callback?code=...&state=...
//! # let redirect = url::Url::parse("http://127.0.0.1:8765/callback?code=x").unwrap();
//! let code = sign_in.code_from_redirect(&redirect)?;
//! let token = client
//!     .exchange_code(&code, Some(sign_in.pkce_verifier()), sign_in.redirect_uri())
//!     .await?;
//! let refreshed = client.refresh(token.refresh_token().expect("code flow gives one")).await?;
//! # let _ = refreshed;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod approval_page;
mod arcgis_error;
#[cfg(any(feature = "rustls", feature = "rustls-no-provider"))]
mod certificate_request;
#[cfg(feature = "wire")]
mod classify;
mod error;
mod error_kind;
#[cfg(feature = "wire")]
mod error_response;
mod expiration;
#[cfg(feature = "wire")]
mod generate_token;
#[cfg(feature = "kerberos")]
mod negotiate;
#[cfg(feature = "wire")]
mod oauth;
#[cfg(feature = "url")]
mod origin;
mod plain_url;
mod portal;
#[cfg(feature = "wire")]
mod portal_servers;
#[cfg(feature = "url")]
mod redirect;
#[cfg(feature = "wire")]
mod security;
#[cfg(feature = "url")]
mod server;
#[cfg(feature = "wire")]
mod server_info;
mod time;
mod token;
#[cfg(feature = "wire")]
mod token_response;
#[cfg(feature = "wire")]
mod transport;
#[cfg(feature = "wire")]
mod web_tier;

pub use approval_page::{OOB_REDIRECT_URI, code_from_approval_page};
pub use arcgis_error::ArcGisError;
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use classify::{classify_response, classify_token_response};
pub use error::{Error, Result};
pub use error_kind::ErrorKind;
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use error_response::ArcGisErrorResponse;
pub use expiration::{Expiration, TokenLifetime};
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use generate_token::{GenerateTokenRequest, TokenBinding};
#[cfg(feature = "kerberos")]
#[cfg_attr(docsrs, doc(cfg(feature = "kerberos")))]
pub use negotiate::KerberosCredential;
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use oauth::{
    ArcGisOAuth2Client, Authorization, AuthorizeOptions, OAuthClient, Style, TokenTypeHint,
};
#[cfg(feature = "url")]
#[cfg_attr(docsrs, doc(cfg(feature = "url")))]
pub use origin::Origin;
pub use portal::Portal;
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use portal_servers::FederatedServers;
#[cfg(feature = "url")]
#[cfg_attr(docsrs, doc(cfg(feature = "url")))]
pub use redirect::{RedirectParams, RedirectPart};
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use security::{PortalSecurity, SignInMethod, WebTierScheme, parse_www_authenticate};
#[cfg(feature = "url")]
#[cfg_attr(docsrs, doc(cfg(feature = "url")))]
pub use server::ServerRoot;
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use server_info::{ServerInfo, generate_token_endpoint};
pub use time::{Clock, CoarseSystemClock, ManualClock, SystemClock, Timestamp};
pub use token::{Freshness, MAX_LIFETIME_SECS, RefreshToken, Token};
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use token_response::{ArcGisTokenResponse, GenerateTokenResponse};
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use transport::HttpClient;
#[cfg(feature = "__tls")]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "rustls",
        feature = "rustls-no-provider",
        feature = "native-tls"
    )))
)]
pub use web_tier::ClientCertificate;
#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use web_tier::{BasicCredentials, WebTierCredential};

#[cfg(feature = "wire")]
#[cfg_attr(docsrs, doc(cfg(feature = "wire")))]
pub use oauth2;
pub use secrecy::{self, ExposeSecret, SecretString};

/// Helpers the other `arcgis-auth-*` crates share with this one.
///
/// **Not part of the API**: no semver promise covers anything in here; it may
/// change or vanish in any release. Use the documented items instead.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "url")]
    pub use crate::origin::is_secure_or_loopback;
    #[cfg(feature = "url")]
    pub use crate::portal::redact_query;
    pub use crate::token::{constant_time_eq, effective_lead};
}
