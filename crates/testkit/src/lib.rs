//! # arcgis-auth-testkit
//!
//! A fake ArcGIS portal (and federated servers) on loopback, for testing
//! code that signs in to ArcGIS, without a real portal and without sleeping.
//!
//! The portal is stateful and strict the way a real one is: codes are
//! single-use and bound to their client and redirect URI, PKCE verifiers are
//! checked, refresh tokens expire and rotate, server tokens only open their
//! own server, and errors come back in ArcGIS's own shapes — mostly inside
//! HTTP 200 answers. Your test controls time, failures and who is signed in,
//! and reads counters of every call afterwards.
//!
//! ## Start one
//!
//! ```
//! use arcgis_auth_testkit::{FakePortal, Grant, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let portal = FakePortal::start().await;
//!
//! // App sign-in, the way any client would do it.
//! let answer: serde_json::Value = reqwest::Client::new()
//!     .post(portal.url("oauth2/token"))
//!     .form(&[
//!         ("grant_type", "client_credentials"),
//!         ("client_id", CONFIDENTIAL_CLIENT_ID),
//!         ("client_secret", CONFIDENTIAL_CLIENT_SECRET),
//!         ("f", "json"),
//!     ])
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(answer["expires_in"], 7200);
//! assert!(answer["access_token"].is_string());
//!
//! // Every call is counted, by endpoint and by grant.
//! assert_eq!(portal.calls().token(Grant::ClientCredentials), 1);
//! # Ok(())
//! # }
//! ```
//!
//! Point the code under test at [`FakePortal::portal_url`] (the sharing root,
//! `http://127.0.0.1:{port}/sharing/rest`) or [`FakePortal::portal`].
//! [`FakePortal::start`] registers a ready-made set (a public and a
//! confidential app, a signed-in user, a federated server: see its docs and the
//! constants such as [`PUBLIC_CLIENT_ID`]); [`FakePortal::builder`] lets you
//! choose your own:
//!
//! ```
//! use arcgis_auth_testkit::{App, FakePortal, Server, OOB_REDIRECT_URI};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let portal = FakePortal::builder()
//!     .app(App::public("client-id").redirect_uri("http://127.0.0.1/cb").redirect_uri(OOB_REDIRECT_URI))
//!     .app(App::confidential("id", "secret"))
//!     .user("jdoe", "password")
//!     .server(Server::federated("server1"))
//!     .server(Server::standalone("standalone"))
//!     .server(Server::federated_with("foreign", "https://other.example.com/portal"))
//!     .start()
//!     .await;
//! # let _ = portal;
//! # }
//! ```
//!
//! ## What it answers
//!
//! All paths are under the sharing root unless marked "server".
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `oauth2/authorize` (GET) | checks `client_id` and `redirect_uri` (exact match, or a port-less loopback URI on any port) and shows its own error otherwise (an HTML page, or JSON with `f=json`); then approves for the signed-in user with a 302 to the redirect URI carrying `?code=…&state=…` (keeping the URI's own query), or `#access_token=…&expires_in=…&username=…&ssl=…&state=…` for `response_type=token`, or `error=access_denied` after [`FakePortal::deny_next_authorization`]. PKCE `S256` and `plain` (the default); `expiration` sets the refresh token's lifetime. The OOB redirect URI goes to `oauth2/approval?code=…`. Nobody signed in: a "Sign In" HTML page. |
//! | `oauth2/approval` (GET) | HTML whose `<title>` is `SUCCESS code=<CODE>` for a live code. |
//! | `oauth2/token` (POST) | `authorization_code`, `client_credentials`, `refresh_token`, `exchange_refresh_token`, verified for real (see below). |
//! | `oauth2/revokeToken` (POST) | `{"success":true}`; a refresh token takes its access tokens with it; app and `generateToken` tokens cannot be revoked. |
//! | `generateToken` (POST, `f=json`) | `username`+`password` → a portal token; `token`+`serverUrl` (or password + `serverUrl`) → a token for that federated server; `client=referer` binds the token to the `Referer`. `expires` is epoch milliseconds. |
//! | `info`, `portals/self`, `community/self` | public info; the organisation (plus `user` or `appInfo` with a token); the user. |
//! | `content/items/{id}` | a secured resource on the portal's origin: any valid portal token. |
//! | server `rest/info` | `owningSystemUrl` and `authInfo { isTokenBasedSecurity, tokenServicesUrl, shortLivedTokenValidity }`. |
//! | server `rest/services/…` | JSON naming the token's user, only for a token made for THIS server. |
//! | server `tokens/generateToken` | standalone servers only: their own username/password tokens. |
//!
//! Tokens are read from `X-Esri-Authorization: Bearer …`, `Authorization:
//! Bearer …`, or a `token` form field (or, as ArcGIS allows, a `token` query
//! parameter — counted by [`Calls::secrets_in_url`] so your tests can forbid it).
//! Endpoints that ArcGIS answers with HTML unless asked for JSON do the same
//! here: send `f=json`. Token, revoke and `generateToken` calls must be POSTs.
//!
//! ### Token rules
//!
//! | token | lifetime |
//! |---|---|
//! | code-flow access token (and its refreshes) | 30 min, fixed |
//! | refresh token | `expiration` on authorize; 2 weeks default, 90 days max, `-1` = max |
//! | implicit token | 120 min default, 2 weeks max |
//! | app token (`client_credentials` `expiration`) | 120 min default, 2 weeks max |
//! | `generateToken` | 60 min default (a server's `shortLivedTokenValidity` for server tokens), 2 weeks max; a server token never outlives the portal token it came from |
//!
//! [`FakePortalBuilder::max_token_expiration_minutes`] caps them all.
//! Authorization codes live 10 minutes and work once; PKCE verifiers must be
//! 43–128 characters of `A-Z a-z 0-9 - . _ ~`, and `S256` is checked as
//! base64url-nopad(sha256(verifier)) with code independent of the `oauth2`
//! crate's. `exchange_refresh_token` needs the redirect URI of the original
//! sign-in and kills the old refresh token.
//!
//! ### Errors, as ArcGIS sends them (HTTP 200)
//!
//! | situation | body |
//! |---|---|
//! | unknown client id | `{"error":{"code":400,"error":"invalid_client_id","error_description":"Invalid client_id",…}}` |
//! | wrong or missing redirect URI, code, verifier | `{"error":{"code":400,"error":"invalid_request","error_description":"Invalid redirect_uri",…}}` (`Invalid authorization code`, `Invalid code_verifier`) |
//! | wrong client secret | `{"error":{"code":400,"error":"invalid_client","error_description":"Invalid client_secret",…}}` |
//! | expired refresh token | `{"error":{"code":498,"error":"invalid_request","error_description":"refresh_token expired",…}}` |
//! | unknown, revoked or rotated refresh token | `{"error":{"code":498,"error":"invalid_request","error_description":"Invalid refresh_token",…}}` |
//! | bad or expired token on a resource | `{"error":{"code":498,"message":"Invalid token.","details":[]}}` (servers: `Invalid Token`) |
//! | no token on a resource | `{"error":{"code":499,"message":"Token Required",…}}` |
//! | app token on `community/self` | `{"error":{"code":403,…,"messageCode":"GWM_0003"}}` |
//! | `generateToken` refusal | `{"error":{"code":400,"message":"Unable to generate token.","details":["Invalid username or password."]}}` |
//!
//! ## Controls
//!
//! - Time: the portal decides expiry with its own clock (a stopped
//!   [`ManualClock`](arcgis_auth_core::ManualClock) by default, or the one you
//!   share with [`FakePortalBuilder::clock`]). [`FakePortal::advance_clock`]
//!   and [`FakePortal::rewind_clock`] move the portal's time only (skew);
//!   advance a shared `ManualClock` to move everyone.
//! - Tokens: [`FakePortal::expire_access_tokens`],
//!   [`FakePortal::expire_all_tokens`], [`FakePortal::revoke_all_tokens`],
//!   and the log [`FakePortal::issued_tokens`].
//! - Failures: [`FakePortal::fail_next_token_calls`] (and
//!   [`FakePortal::fail_next_calls`] for any endpoint) with a [`Failure`]: 503,
//!   a dropped connection, an HTML page, an error inside HTTP 200, or a slow answer.
//! - Sign-in: [`FakePortal::set_signed_in_user`], [`FakePortal::sign_out`],
//!   [`FakePortal::deny_next_authorization`].
//! - Counters: [`FakePortal::calls`] → [`Calls::endpoint`], [`Calls::token`],
//!   [`Calls::server`], [`Calls::secrets_in_url`].
//!
//! ```
//! use std::time::Duration;
//! use arcgis_auth_testkit::{Endpoint, FakePortal, Failure};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let portal = FakePortal::start().await;
//! portal.fail_next_token_calls(2, Failure::ServiceUnavailable503);
//! portal.advance_clock(Duration::from_secs(31 * 60)); // every 30-minute token is now dead
//! assert_eq!(portal.calls().endpoint(Endpoint::Token), 0);
//! # }
//! ```
//!
//! Randomness (tokens, codes) comes from the `oauth2` crate's CSPRNG
//! (`CsrfToken::new_random_len`), already a dependency, rather than a new one.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(unreachable_pub, rust_2018_idioms)]

mod builder;
mod calls;
mod config;
mod error;
mod failure;
mod lifetimes;
mod portal;
mod routes;
mod state;
mod tokens;
mod wire;

pub use builder::FakePortalBuilder;
pub use calls::{Calls, Endpoint, Grant};
pub use config::{App, OOB_REDIRECT_URI, Server};
pub use error::{Error, ErrorKind};
pub use failure::Failure;
pub use portal::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, FakeServer,
    LOOPBACK_REDIRECT_URI, PASSWORD, PUBLIC_CLIENT_ID, SERVER_NAME, USERNAME,
};
pub use tokens::{IssuedToken, TokenKind};

pub use wiremock;
