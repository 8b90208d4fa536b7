//! Fakes for testing code built on this crate (feature `test-util`): a
//! scripted [`TokenSource`], an app-credentials source over a bare
//! [`OAuthClient`], and the check that a request carries a credential.
//!
//! They are what this crate's own tests and benchmarks use. Nothing here is
//! meant for production: [`FakeSource`] hands out made-up tokens.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use arcgis_auth_core::ErrorKind;
//! use arcgis_auth_flows::Renewal;
//! use arcgis_auth_flows::test_util::{FakeSource, Step};
//!
//! // Signs in again; the first call fails with a 5xx, then tokens
//! // `AT-SECRET-2`, `AT-SECRET-3`, ... each valid for an hour.
//! let source = Arc::new(
//!     FakeSource::new(Renewal::SignInAgain)
//!         .with_lifetime(Duration::from_secs(3600))
//!         .script(&[Step::Fail(ErrorKind::Server)]),
//! );
//! assert_eq!(source.calls(), 0);
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arcgis_auth_core::{
    Error as CoreError, ErrorKind, ExposeSecret, OAuthClient, RefreshToken, Token,
};
use arcgis_auth_storage::SessionRecord;
use async_trait::async_trait;
use tokio::sync::Semaphore;
use url::Url;

use crate::error::FlowError;
use crate::source::{Grant, RenewRequest, Renewal, TokenSource};

/// What [`FakeSource`] answers on one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// A new token.
    Ok,
    /// A core error of this kind (`scripted failure <n>`).
    Fail(ErrorKind),
    /// A rate limit that asks to wait this long (`Retry-After`).
    RetryAfter(Duration),
    /// A bug in the source: it panics.
    Panic,
}

/// One call [`FakeSource`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Call {
    /// The grant the manager asked for.
    pub grant: Grant,
    /// The session's refresh token at the time (the secret, for assertions).
    pub refresh_token: Option<String>,
}

/// A [`TokenSource`] that counts its calls, follows a script of
/// [`Step`]s (then answers [`Step::Ok`] forever), and hands out numbered
/// tokens: `<prefix><n>` for the n-th call (prefix `AT-SECRET-` unless
/// [`with_token_prefix`](Self::with_token_prefix) says), for user `jdoe`
/// unless [`without_username`](Self::without_username), valid for
/// [`with_lifetime`](Self::with_lifetime) (30 minutes). On
/// [`Grant::Exchange`] the token carries a new refresh token `RT-SECRET-<n>`
/// valid for 14 days.
#[derive(Debug)]
pub struct FakeSource {
    renewal: Renewal,
    lifetime: Duration,
    delay: Duration,
    gate: Option<Arc<Semaphore>>,
    prefix: Cow<'static, str>,
    username: Option<String>,
    calls: AtomicUsize,
    script: Mutex<VecDeque<Step>>,
    seen: Mutex<Vec<Call>>,
}

impl FakeSource {
    /// A source whose sessions the manager renews as `renewal` says.
    pub fn new(renewal: Renewal) -> Self {
        FakeSource {
            renewal,
            lifetime: Duration::from_secs(30 * 60),
            delay: Duration::ZERO,
            gate: None,
            prefix: Cow::Borrowed("AT-SECRET-"),
            username: Some("jdoe".to_owned()),
            calls: AtomicUsize::new(0),
            script: Mutex::new(VecDeque::new()),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Takes `delay` (on Tokio's clock) to answer each call.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Waits for a permit of `gate` before answering each call (the test
    /// decides when renewals finish).
    pub fn with_gate(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Tokens valid for `lifetime` from the request's `now`.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Tokens named `<prefix><n>`.
    pub fn with_token_prefix(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Tokens without a username.
    pub fn without_username(mut self) -> Self {
        self.username = None;
        self
    }

    /// Answers the next calls with `steps`, then [`Step::Ok`] forever.
    pub fn script(self, steps: &[Step]) -> Self {
        lock(&self.script).extend(steps.iter().copied());
        self
    }

    /// How many times the source was asked to renew.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every call so far, in order.
    pub fn seen(&self) -> Vec<Call> {
        lock(&self.seen).clone()
    }
}

#[async_trait]
impl TokenSource for FakeSource {
    fn renewal(&self, _session: &SessionRecord) -> Renewal {
        self.renewal
    }

    #[allow(clippy::panic, reason = "Step::Panic scripts a source with a bug")]
    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&self.seen).push(Call {
            grant: request.grant(),
            refresh_token: request
                .session()
                .refresh_token
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
        });
        if let Some(gate) = &self.gate {
            // A closed gate lets every call through.
            let _permit = gate.acquire().await;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let step = lock(&self.script).pop_front().unwrap_or(Step::Ok);
        match step {
            Step::Fail(kind) => Err(CoreError::new(kind, format!("scripted failure {n}")).into()),
            Step::RetryAfter(wait) => Err(CoreError::new(ErrorKind::RateLimited, "slow down")
                .with_retry_after(wait)
                .into()),
            Step::Panic => panic!("scripted panic in the source"),
            Step::Ok => {
                let now = request.now();
                let token = Token::new(format!("{}{n}", self.prefix).into(), now + self.lifetime)
                    .with_username(self.username.clone());
                Ok(if request.grant() == Grant::Exchange {
                    token.with_refresh_token(Some(RefreshToken::new(
                        format!("RT-SECRET-{n}").into(),
                        now,
                        Some(now + Duration::from_secs(14 * 24 * 3600)),
                    )))
                } else {
                    token
                })
            }
        }
    }
}

/// App credentials over core's real `client_credentials` grant, through a
/// bare [`OAuthClient`] (with its client secret): renews every session by
/// signing in again, whoever it belongs to. For tests and benchmarks of the
/// wire; apps use [`AppSignIn`](crate::signin::AppSignIn).
#[derive(Debug, Clone)]
pub struct AppCredentials {
    client: OAuthClient,
}

impl AppCredentials {
    /// A source signing in with `client`.
    pub fn new(client: OAuthClient) -> Self {
        AppCredentials { client }
    }
}

#[async_trait]
impl TokenSource for AppCredentials {
    fn renewal(&self, _session: &SessionRecord) -> Renewal {
        Renewal::SignInAgain
    }

    async fn renew(&self, _request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        Ok(self.client.client_credentials(None).await?)
    }
}

/// Whether a request carries a credential: an `X-Esri-Authorization` or
/// `Authorization` header, or a `token` parameter in its URL or form body.
///
/// ```
/// use arcgis_auth_flows::test_util::carries_token;
///
/// let url = url::Url::parse("https://gis.example.com/arcgis/rest/info?f=json").unwrap();
/// let mut headers = http::HeaderMap::new();
/// assert!(!carries_token(&headers, &url, b""));
/// assert!(carries_token(&headers, &url, b"f=json&token=t0k"));
/// headers.insert("x-esri-authorization", "Bearer t0k".parse().unwrap());
/// assert!(carries_token(&headers, &url, b""));
/// ```
pub fn carries_token(headers: &http::HeaderMap, url: &Url, body: &[u8]) -> bool {
    headers.contains_key("x-esri-authorization")
        || headers.contains_key(http::header::AUTHORIZATION)
        || url.query_pairs().any(|(k, _)| k == "token")
        || url::form_urlencoded::parse(body).any(|(k, _)| k == "token")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
