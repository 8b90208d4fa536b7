//! # arcgis-auth-flows
//!
//! Turns ArcGIS credentials into a steady supply of valid tokens.
//!
//! - [`TokenManager`] answers "give me a valid token" for any number of
//!   concurrent callers: early renewal with jitter, one renewal at a time per
//!   session (within a process, and across processes through the store's
//!   refresh lock), retries of transient failures, failures that never poison,
//!   refresh-token rotation saved with compare-and-swap before use, and
//!   persistence to any [`SessionStore`](arcgis_auth_storage::SessionStore).
//!   The [token manager guide](guide::token_manager) explains how.
//! - [`TokenSource`] is the contract every sign-in strategy implements to
//!   renew a session; the manager decides when and which [`Grant`].
//! - [`FlowError`] is the crate's one error type; match on
//!   [`FlowError::kind`].
//! - The [`signin`] module holds every way to sign in (user sign-in with
//!   PKCE, app credentials, `generateToken`, API keys, implicit-grant
//!   callbacks); each returns a [`SignedIn`](signin::SignedIn) that becomes a
//!   manager in one call. The [`guide`] module has a page per way to sign in.
//! - The [`middleware`] module puts the token on your requests, only where it
//!   belongs, and recovers from 498s: [`middleware::ArcGisAuth`] is a
//!   `reqwest-middleware` middleware. Its guide, "where your token goes", is
//!   the module's page. [`routing`] holds the rules, [`federation`] the
//!   federated servers and their tokens.
//! - The [`account`] module answers "who is signed in?" (`community/self`,
//!   `portals/self`), checks app access, and signs out.
//! - With the `test-util` feature, `test_util` holds fakes for testing code
//!   built on this crate: a scripted [`TokenSource`] and a check that a
//!   request carries a credential.
//!
//! # Design
//!
//! Policy and wire are kept apart, as `tower` keeps services and layers
//! apart: a [`TokenSource`] makes exactly one request when asked (it knows
//! the credentials and the endpoint), and the [`TokenManager`] owns every
//! decision around it (when, which grant, retries, locking, persistence).
//! So each strategy is small and testable on its own, and the hard
//! concurrency guarantees are written — and tested — once, against a fake
//! source, for all of them.
//!
//! - The cached token sits behind an `arc-swap` pointer: serving it is one
//!   atomic load and a reference-count increment, with no lock and no
//!   allocation, so `token()` can be called on every request.
//! - A renewal runs in its own Tokio task, joined by every caller that needs
//!   it; a caller that gives up does not cancel it for the others, and its
//!   result (success or error) is handed to all of them, then forgotten.
//! - Expiry is decided by an injected [`Clock`](arcgis_auth_core::Clock);
//!   waiting (backoff, lock polling) uses Tokio's clock, so tests run under
//!   `tokio::time::pause()` and move the injected clock instead of sleeping.
//!
//! # Example
//!
//! A manager over an in-memory store, with a tiny source that "signs in
//! again" (a stand-in for app credentials), on a clock the example moves:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//!
//! use arcgis_auth_core::{Clock, ExposeSecret, ManualClock, Portal, Timestamp, Token};
//! use arcgis_auth_flows::{FlowError, Renewal, RenewRequest, TokenManager, TokenSource};
//! use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
//!
//! #[derive(Debug, Default)]
//! struct CountingSource(AtomicUsize);
//!
//! #[arcgis_auth_flows::async_trait]
//! impl TokenSource for CountingSource {
//!     fn renewal(&self, _session: &SessionRecord) -> Renewal {
//!         Renewal::SignInAgain
//!     }
//!
//!     async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
//!         let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
//!         let expires = request.now() + Duration::from_secs(7200);
//!         Ok(Token::new(format!("token-{n}").into(), expires))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), FlowError> {
//! let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
//! let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
//! let source = Arc::new(CountingSource::default());
//! let manager = TokenManager::builder(source.clone(), store.clone(), "app:demo")
//!     .clock(Arc::new(clock.clone()))
//!     .build()?;
//!
//! // A fresh sign-in: the manager saves it and serves it.
//! let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
//! record.set_token(&Token::new("token-0".into(), clock.now() + Duration::from_secs(7200)));
//! manager.set_session(record).await?;
//! assert_eq!(manager.token().await?.secret().expose_secret(), "token-0");
//!
//! // Two hours later the token has expired: one renewal, whoever asks.
//! clock.advance(Duration::from_secs(7200));
//! let (a, b) = tokio::join!(manager.token(), manager.token());
//! assert_eq!(a?.secret().expose_secret(), "token-1");
//! assert_eq!(b?.secret().expose_secret(), "token-1");
//! assert_eq!(source.0.load(Ordering::SeqCst), 1);
//!
//! // The renewed session is in the store: another manager (a restart,
//! // another server) picks it up without renewing.
//! let other = TokenManager::builder(source.clone(), store, "app:demo")
//!     .clock(Arc::new(clock.clone()))
//!     .build()?;
//! assert_eq!(other.token().await?.secret().expose_secret(), "token-1");
//! assert_eq!(source.0.load(Ordering::SeqCst), 1);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod access;
mod config;
mod error;
pub mod guide;
mod jitter;
mod manager;
pub mod profile;
pub mod signin;
mod single_flight;
mod source;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

pub use access::AccessToken;
pub use async_trait::async_trait;
pub use config::{ManagerConfig, RetryPolicy};
pub use error::{FlowError, FlowErrorKind, Result};
pub use manager::{TokenManager, TokenManagerBuilder};
pub use source::{Grant, RenewReason, RenewRequest, Renewal, TokenSource};

pub mod account;
pub mod federation;
pub mod middleware;
pub mod routing;
