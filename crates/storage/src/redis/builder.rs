//! [`RedisStoreBuilder`]: a [`RedisStore`]'s settings, and connecting.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::ConnectionAddr;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::Handle;

use super::error::redis_error;
use super::listener::Listener;
use super::scripts::Scripts;
use super::store::{Inner, RedisStore};
use super::tls::open_client;
use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::feed::ChangeFeed;
use crate::id::random_id;

/// The default key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "arcgis-auth";

/// Settings for a [`RedisStore`]; made by [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    ttl_margin: Duration,
    remote_events: bool,
    /// A PEM bundle, trusted on top of the system's roots.
    root_certificates: Option<Vec<u8>>,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("ttl_margin", &self.ttl_margin)
            .field("remote_events", &self.remote_events)
            .field("root_certificates", &self.root_certificates.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// Trusts the CA certificates of the PEM bundle `pem_bundle` (one or
    /// more `-----BEGIN CERTIFICATE-----` blocks, e.g. the contents of a
    /// `ca.pem` file) for a `rediss://` URL, on top of the system's roots:
    /// for a deployment whose server certificate a private CA issued. As
    /// with [`HttpClient::with_root_certificates`] for a portal, verification
    /// is never turned off: the server's certificate must still chain to a
    /// trusted root and name the URL's host.
    ///
    /// [`connect`](Self::connect) fails with [`StoreErrorKind::InvalidInput`]
    /// when the bundle is not valid PEM, holds no certificate or holds one
    /// that does not parse, and when the URL is a plain `redis://` one (use
    /// `rediss://` to connect over TLS). Its messages never quote the bundle.
    ///
    /// [`HttpClient::with_root_certificates`]: https://docs.rs/arcgis-auth-core/latest/arcgis_auth_core/struct.HttpClient.html#method.with_root_certificates
    pub fn root_certificates(mut self, pem_bundle: impl Into<Vec<u8>>) -> Self {
        self.root_certificates = Some(pem_bundle.into());
        self
    }

    /// Puts every key under `prefix` (default [`DEFAULT_REDIS_PREFIX`]). Stores with
    /// different prefixes on one server do not see each other.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long to wait for a connection (default 5 s).
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long to wait for an answer (default 5 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long a record outlives its refresh token's expiry (default 10 min):
    /// long enough for clocks to disagree and for the app to read who to ask
    /// to sign in again.
    pub fn ttl_margin(mut self, margin: Duration) -> Self {
        self.ttl_margin = margin;
        self
    }

    /// Whether to deliver other processes' changes (default `true`). The
    /// store then subscribes to its change channel on the first call to
    /// [`subscribe`](crate::SessionStore::subscribe) (see [`RedisStore`]). Without
    /// it, change events cover this process's writes only, and no
    /// [`ChangeKind::Resync`](crate::ChangeKind::Resync) is ever sent.
    pub fn remote_events(mut self, on: bool) -> Self {
        self.remote_events = on;
        self
    }

    /// Connects. The change channel is subscribed to later, on the first
    /// call to [`subscribe`](crate::SessionStore::subscribe), on the Tokio runtime
    /// this runs on.
    ///
    /// Fails with [`StoreErrorKind::InvalidInput`] for a malformed URL, an
    /// empty prefix or an unusable PEM bundle (see
    /// [`root_certificates`](Self::root_certificates)), and
    /// [`StoreErrorKind::Unavailable`] when Redis cannot be reached or, over
    /// TLS, its certificate does not verify.
    pub async fn connect(self) -> StoreResult<RedisStore> {
        if self.prefix.is_empty() || self.prefix.chars().any(char::is_control) {
            return Err(StoreError::new(
                StoreErrorKind::InvalidInput,
                "the Redis key prefix must be non-empty text without control characters",
            ));
        }
        let client = open_client(&self.url, self.root_certificates.as_deref())?;
        let tls = matches!(
            client.get_connection_info().addr(),
            ConnectionAddr::TcpTls { .. }
        );
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(2);
        let conn = tokio::time::timeout(
            self.connection_timeout.saturating_mul(2),
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await
        .map_err(|_| {
            StoreError::unavailable(if tls {
                // A plain-text port never answers a TLS hello: it waits for more.
                "connecting to Redis over TLS timed out: check that it runs and that the port \
                 speaks TLS (rediss:// needs a TLS port; use redis:// for a plain one)"
            } else {
                "connecting to Redis timed out: check that it runs"
            })
        })?
        .map_err(|e| redis_error("connect", e))?;

        let channel = format!("{}:changes", self.prefix);
        let listener = if self.remote_events {
            // The connection manager above needs Tokio, so this is on a runtime.
            let runtime = Handle::try_current().map_err(|_| {
                StoreError::new(
                    StoreErrorKind::InvalidInput,
                    "RedisStore must be connected from within a Tokio runtime",
                )
            })?;
            Listener::new(client, runtime)
        } else {
            Listener::off()
        };

        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                prefix: self.prefix,
                channel,
                origin: random_id(),
                ttl_margin: self.ttl_margin,
                events: ChangeFeed::new(),
                listener,
                scripts: Scripts::new(),
            }),
        })
    }
}

impl RedisStore {
    /// Settings for a store at `url`: `redis://[user:password@]host[:port][/db]`,
    /// or `rediss://…` for TLS (see [TLS](RedisStore#tls)).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            connection_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            ttl_margin: Duration::from_secs(600),
            remote_events: true,
            root_certificates: None,
        }
    }

    /// Connects to `url` with the default settings.
    pub async fn connect(url: impl Into<String>) -> StoreResult<Self> {
        Self::builder(url).connect().await
    }
}
