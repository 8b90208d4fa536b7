//! [`RedisStore`]: sessions in Redis, shared by a fleet of servers.
//!
//! Layout under the prefix `P` (default `arcgis-auth`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:session:<key>` | hash | `v`: the version (128 random bits, hex), `r`: the record JSON |
//! | `P:lock:<key>` | string | the refresh lock's holder id, with a `PX` expiry |
//! | `P:changes` | pub/sub channel | one JSON message per change |
//!
//! Saves and deletes are Lua scripts, so the version check, the write, the
//! expiry and the change message happen atomically on the server. A load is
//! one plain `HMGET` (a key of another type answers `WRONGTYPE`: corrupt).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arcgis_auth_core::Timestamp;
use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, RedisError, Script, TlsCertificates};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::id::random_id;
use crate::lease::validate_lease;
use crate::memory::EVENT_CAPACITY;
use crate::record::SessionRecord;
use crate::store::{
    ChangeEvent, ChangeKind, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned,
    validate_key,
};

/// The default key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "arcgis-auth";

/// Records whose refresh token expires later than this from now get no TTL.
const NO_TTL_BEYOND: Duration = Duration::from_secs(10 * 365 * 86_400);

// ARGV: mode, expected version, new version, record, expire-at ms ('' = none),
// channel, the change message up to its kind (see `RedisStore::save_message`).
const SAVE: &str = r#"
local t = redis.call('TYPE', KEYS[1]).ok
local cur = false
if t == 'hash' then
  cur = redis.call('HGET', KEYS[1], 'v')
  if not cur then return 'corrupt' end
elseif t ~= 'none' then
  return 'corrupt'
end
if ARGV[1] == 'create' then
  if cur then return 'conflict' end
elseif ARGV[1] == 'update' then
  if cur ~= ARGV[2] then return 'conflict' end
end
redis.call('HSET', KEYS[1], 'v', ARGV[3], 'r', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[5])
else
  redis.call('PERSIST', KEYS[1])
end
local kind = 'created'
if cur then kind = 'updated' end
redis.call('PUBLISH', ARGV[6], ARGV[7] .. kind .. '"}')
return kind
"#;

// ARGV: '1' if a version must match, the version, channel, message.
const DELETE: &str = r"
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'none' then
  if ARGV[1] == '1' then return 'conflict' end
  return 'missing'
end
if t ~= 'hash' then return 'corrupt' end
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then return 'corrupt' end
if ARGV[1] == '1' and cur ~= ARGV[2] then return 'conflict' end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 'deleted'
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A session store in Redis, for fleets of servers sharing sessions.
///
/// - Compare-and-swap runs as a Lua script on the server, so any number of
///   processes can save concurrently without lost updates.
/// - The refresh lock is `SET <prefix>:lock:<key> <holder> NX PX <lease>`,
///   released by a script that deletes the key only if it still holds this
///   holder's id.
/// - A record expires (`PEXPIREAT`) a margin after its refresh token does
///   (by this machine's clock; see [`RedisStoreBuilder::ttl_margin`]), when
///   the portal said when that is; records without a known refresh token
///   expiry never expire.
/// - Change events cover this process's writes at once, and other processes'
///   writes through the `<prefix>:changes` pub/sub channel (unless turned off
///   with [`RedisStoreBuilder::remote_events`]); see below.
/// - Connection failures are [`StoreErrorKind::Unavailable`]; the connection
///   reconnects on its own.
///
/// Clones share the connection.
///
/// # TLS
///
/// A `rediss://` URL connects over TLS (rustls), as managed Redis services
/// (Azure Cache for Redis, AWS ElastiCache with in-transit encryption,
/// Upstash, ...) require. The server's certificate must be valid for the
/// URL's host and chain to one of the system's root certificates (read by
/// `rustls-native-certs`: on Linux the OpenSSL locations, which the
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` environment variables override). For a
/// private deployment whose certificate comes from your own CA, give that
/// CA's certificate with [`RedisStoreBuilder::ca_certificate_pem`]. There is
/// no way to skip verification: a certificate that does not verify fails
/// [`connect`](RedisStoreBuilder::connect) with
/// [`StoreErrorKind::Unavailable`] and a message saying so, and a
/// `rediss://…/#insecure` URL is refused with
/// [`StoreErrorKind::InvalidInput`]. TLS uses rustls's process-wide crypto
/// provider: if your program has not chosen one when the first `rediss://`
/// store connects, aws-lc-rs (the one reqwest uses) is installed as the
/// default, so choose yours at start-up if you want another.
///
/// ```no_run
/// use arcgis_auth_storage::RedisStore;
///
/// # async fn demo() -> Result<(), arcgis_auth_storage::StoreError> {
/// // A managed service: its certificate chains to a public root.
/// let managed = RedisStore::connect("rediss://:PASSWORD@my-cache.example.net:6380/0").await?;
///
/// // A private deployment, its certificate issued by your own CA.
/// let ca = std::fs::read("/etc/my-app/redis-ca.pem").expect("the CA certificate");
/// let private = RedisStore::builder("rediss://redis.internal:6379/0")
///     .ca_certificate_pem(ca)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// # Other processes' changes
///
/// The subscription to the change channel starts with the first call to
/// [`subscribe`](SessionStore::subscribe) on the store or any of its clones,
/// not at [`connect`](RedisStoreBuilder::connect): a store nobody subscribes
/// to holds no second connection and reads no change messages (not even the
/// echoes of its own saves). Once started, it runs on the Tokio runtime the
/// store was connected on until the last clone of the store is dropped, and
/// reconnects with backoff (100 ms doubling to 30 s) when it drops.
///
/// Pub/sub does not keep messages for a subscriber that is not connected.
/// So each time the subscription is confirmed, the first time and after
/// every reconnect, subscribers receive a [`ChangeKind::Resync`] event:
/// changes other processes made before it (while the subscription was being
/// made or was down) were not delivered and never will be, so re-read the
/// sessions you care about; changes made after it are delivered. The first
/// `Resync` comes shortly after the first `subscribe()` (which cannot wait
/// for it), so wait for it before relying on remote events. Writes made
/// through this store and its clones are delivered at once, whatever the
/// state of the subscription.
///
/// ```no_run
/// use arcgis_auth_storage::{RedisStore, SessionStore};
///
/// # async fn demo() -> Result<(), arcgis_auth_storage::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/0")
///     .prefix("my-app")
///     .connect()
///     .await?;
/// let keys = store.list("users/").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    prefix: String,
    channel: String,
    /// Identifies this store's own change messages on the channel.
    origin: String,
    ttl_margin: Duration,
    events: broadcast::Sender<ChangeEvent>,
    /// What the change listener needs; `None` with `remote_events(false)`.
    remote: Option<Remote>,
    /// The change listener, started by the first `subscribe()`.
    listener: OnceLock<JoinHandle<()>>,
    save: Script,
    delete: Script,
    release: Script,
}

/// What it takes to start the change listener later, from a synchronous
/// `subscribe()` that may run outside any runtime.
struct Remote {
    client: Client,
    runtime: Handle,
}

impl Inner {
    /// Starts the change listener unless it runs already (or remote events
    /// are off). Concurrent callers start one listener between them.
    fn start_listener(&self) {
        let Some(remote) = &self.remote else {
            return;
        };
        self.listener.get_or_init(|| {
            // The listener holds no reference to `Inner`, so dropping the
            // last store clone runs `Drop` below, which stops it.
            remote.runtime.spawn(listen(
                remote.client.clone(),
                self.channel.clone(),
                echo_prefix(&self.origin),
                self.events.clone(),
            ))
        });
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
    }
}

/// Settings for a [`RedisStore`]; made by [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    ttl_margin: Duration,
    remote_events: bool,
    /// PEM; trusted instead of the system's roots.
    ca_certificate: Option<Vec<u8>>,
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
            .field("ca_certificate", &self.ca_certificate.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// Trusts the CA certificate(s) in `pem` (one or more `-----BEGIN
    /// CERTIFICATE-----` blocks, e.g. the contents of a `ca.pem` file) for a
    /// `rediss://` URL, for a private deployment whose server certificate
    /// your own CA issued.
    ///
    /// These certificates are trusted *instead of* the system's roots, not
    /// in addition to them: the store then accepts only servers whose
    /// certificate chains to one of them (and names the URL's host). To
    /// trust both, put the system bundle and your CA in one PEM.
    ///
    /// [`connect`](Self::connect) fails with [`StoreErrorKind::InvalidInput`]
    /// when `pem` holds no certificate or one that does not parse, and when
    /// the URL is a plain `redis://` one (use `rediss://` to connect over
    /// TLS).
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certificate = Some(pem.into());
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
    /// [`subscribe`](SessionStore::subscribe) (see [`RedisStore`]). Without
    /// it, change events cover this process's writes only, and no
    /// [`ChangeKind::Resync`] is ever sent.
    pub fn remote_events(mut self, on: bool) -> Self {
        self.remote_events = on;
        self
    }

    /// Connects. The change channel is subscribed to later, on the first
    /// call to [`subscribe`](SessionStore::subscribe), on the Tokio runtime
    /// this runs on.
    ///
    /// Fails with [`StoreErrorKind::InvalidInput`] for a malformed URL, an
    /// empty prefix or an unusable CA certificate (see
    /// [`ca_certificate_pem`](Self::ca_certificate_pem)), and
    /// [`StoreErrorKind::Unavailable`] when Redis cannot be reached or, over
    /// TLS, its certificate does not verify.
    pub async fn connect(self) -> StoreResult<RedisStore> {
        if self.prefix.is_empty() || self.prefix.chars().any(char::is_control) {
            return Err(StoreError::new(
                StoreErrorKind::InvalidInput,
                "the Redis key prefix must be non-empty text without control characters",
            ));
        }
        let client = open_client(&self.url, self.ca_certificate)?;
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
        let origin = random_id();
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let remote = if self.remote_events {
            // The connection manager above needs Tokio, so this is on a runtime.
            let runtime = Handle::try_current().map_err(|_| {
                StoreError::new(
                    StoreErrorKind::InvalidInput,
                    "RedisStore must be connected from within a Tokio runtime",
                )
            })?;
            Some(Remote { client, runtime })
        } else {
            None
        };

        Ok(RedisStore {
            inner: Arc::new(Inner {
                conn,
                prefix: self.prefix,
                channel,
                origin,
                ttl_margin: self.ttl_margin,
                events,
                remote,
                listener: OnceLock::new(),
                save: Script::new(SAVE),
                delete: Script::new(DELETE),
                release: Script::new(RELEASE),
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
            ca_certificate: None,
        }
    }

    /// Connects to `url` with the default settings.
    pub async fn connect(url: impl Into<String>) -> StoreResult<Self> {
        Self::builder(url).connect().await
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis key a session is stored under.
    pub fn session_key(&self, key: &str) -> String {
        format!("{}:session:{key}", self.inner.prefix)
    }

    /// The Redis key of a session's refresh lock.
    pub fn lock_key(&self, key: &str) -> String {
        format!("{}:lock:{key}", self.inner.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// When a record should expire: a margin after its refresh token, or never.
    fn expire_at(&self, record: &SessionRecord) -> Option<Timestamp> {
        let refresh_expiry = record.refresh_token_expires_at?;
        let now = Timestamp::now();
        let horizon = now.saturating_add(NO_TTL_BEYOND);
        // Never before the access token expires, and never in the past (the
        // record would vanish as it is written).
        let base = refresh_expiry
            .max(record.expires_at.unwrap_or(Timestamp::UNIX_EPOCH))
            .max(now);
        if base > horizon {
            return None;
        }
        Some(base.saturating_add(self.inner.ttl_margin))
    }

    /// The change message of a delete.
    fn delete_message(&self, key: &str) -> String {
        serde_json::to_string(&Message {
            origin: self.inner.origin.clone(),
            key: key.to_owned(),
            version: None,
            kind: "deleted".to_owned(),
        })
        .unwrap_or_default()
    }

    fn publish(&self, event: ChangeEvent) {
        let _ = self.inner.events.send(event);
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("remote_events", &self.inner.remote.is_some())
            .field("listening", &self.inner.listener.get().is_some())
            .finish_non_exhaustive()
    }
}

/// The change message of a save, cut just before the kind's value
/// (`…,"c":"`): the save script appends `created"}` or `updated"}`, as only
/// it knows which happened. One message built per save, not one per outcome.
fn save_message(origin: &str, key: &str, version: &Version) -> String {
    let mut message = serde_json::to_string(&Message {
        origin: origin.to_owned(),
        key: key.to_owned(),
        version: Some(version.as_str().to_owned()),
        kind: String::new(),
    })
    .unwrap_or_default();
    // `kind` is serialised last, so the message ends with `"c":""}`.
    message.truncate(message.len().saturating_sub(2));
    message
}

/// How every change message of the store with this `origin` begins: the
/// origin is serialised first, and is hex (nothing to escape). The listener
/// skips its own store's echoes by this prefix, without parsing them.
fn echo_prefix(origin: &str) -> Vec<u8> {
    format!(r#"{{"o":"{origin}","#).into_bytes()
}

/// A change message on the channel.
#[derive(Serialize, Deserialize)]
struct Message {
    #[serde(rename = "o")]
    origin: String,
    #[serde(rename = "k")]
    key: String,
    #[serde(rename = "v")]
    version: Option<String>,
    // Last, so `RedisStore::save_message` can leave it for the save script.
    #[serde(rename = "c")]
    kind: String,
}

impl Message {
    fn into_event(self) -> Option<ChangeEvent> {
        let kind = match self.kind.as_str() {
            "created" => ChangeKind::Created,
            "updated" => ChangeKind::Updated,
            "deleted" => ChangeKind::Deleted,
            _ => return None,
        };
        Some(ChangeEvent {
            key: self.key,
            kind,
            version: self.version.map(Version::new),
        })
    }
}

/// Forwards other processes' change messages to `events`, reconnecting with
/// backoff when the subscription drops, and sends a `Resync` each time the
/// subscription is confirmed. Runs until the store is dropped.
async fn listen(
    client: Client,
    channel: String,
    echo_prefix: Vec<u8>,
    events: broadcast::Sender<ChangeEvent>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    tracing::debug!("subscribed to Redis change messages; sending a resync");
                    // Whatever was published before this point was missed.
                    let _ = events.send(ChangeEvent::resync());
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let payload = msg.get_payload_bytes();
                        if payload.starts_with(&echo_prefix) {
                            continue; // Our own write, already delivered.
                        }
                        let Ok(message) = serde_json::from_slice::<Message>(payload) else {
                            tracing::debug!("ignoring a malformed Redis change message");
                            continue;
                        };
                        if let Some(event) = message.into_event() {
                            let _ = events.send(event);
                        }
                    }
                    tracing::warn!("Redis change subscription dropped; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(error = %e.category(), "cannot subscribe to Redis change messages")
                }
            },
            Err(e) => {
                tracing::warn!(error = %e.category(), "cannot connect to Redis for change messages")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// How to fix a malformed URL (the parse error itself can quote the URL, and
/// so its password).
const URL_HELP: &str = "the Redis URL is not valid: use redis://[user:password@]host[:port][/db], \
                        or rediss://... for TLS";

/// A client for `url`, over TLS for `rediss://`, trusting `ca_certificate`
/// (PEM) instead of the system's roots when given.
fn open_client(url: &str, ca_certificate: Option<Vec<u8>>) -> StoreResult<Client> {
    let invalid = |message: &str| StoreError::new(StoreErrorKind::InvalidInput, message);
    let client = Client::open(url).map_err(|_| invalid(URL_HELP))?;
    let tls = match client.get_connection_info().addr() {
        ConnectionAddr::TcpTls { insecure, .. } => {
            if *insecure {
                return Err(invalid(
                    "the Redis URL ends in #insecure, which would skip checking the server's \
                     certificate: remove it, and if the server's certificate comes from your own \
                     CA, trust that CA with RedisStoreBuilder::ca_certificate_pem",
                ));
            }
            true
        }
        _ => false,
    };
    match (tls, ca_certificate) {
        (false, None) => Ok(client),
        (false, Some(_)) => Err(invalid(
            "a CA certificate was given for a plain redis:// URL: use rediss:// to connect over TLS",
        )),
        (true, ca_certificate) => {
            use_aws_lc_rs_unless_chosen();
            let Some(pem) = ca_certificate else {
                return Ok(client);
            };
            check_ca_pem(&pem)?;
            Client::build_with_tls(
                url,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|_| {
                invalid("the CA certificate for Redis is not usable: give a PEM CA certificate")
            })
        }
    }
}

/// Checks that `pem` holds at least one certificate and that each parses
/// (an empty trust store would refuse every server, with a less clear error).
fn check_ca_pem(pem: &[u8]) -> StoreResult<()> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidInput,
                format!("the CA certificate for Redis is not valid PEM ({e}): give a PEM file"),
            )
        })?;
        roots.add(cert).map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidInput,
                format!("the CA certificate for Redis cannot be used as a trust anchor ({e})"),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(StoreError::new(
            StoreErrorKind::InvalidInput,
            "the CA certificate for Redis holds no certificate: give the PEM text, with its \
             -----BEGIN CERTIFICATE----- line",
        ));
    }
    Ok(())
}

/// The `redis` crate builds its TLS settings on rustls's process-wide
/// crypto provider. rustls picks one by itself when exactly one is compiled
/// in (aws-lc-rs, as reqwest uses), and panics when the build has both and
/// the program chose none: so choose aws-lc-rs then, as reqwest does.
fn use_aws_lc_rs_unless_chosen() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: its choice stands.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The rustls error inside `e`, if a TLS handshake or record failed.
fn tls_error(e: &RedisError) -> Option<&rustls::Error> {
    use std::error::Error;
    use std::sync::Arc;

    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(mut err) = next {
        // `RedisError::source()` is the `Arc` it keeps the error in.
        if let Some(inner) = err.downcast_ref::<Arc<dyn Error + Send + Sync>>() {
            err = &**inner;
        }
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // tokio-rustls wraps rustls errors in an `io::Error`, whose
        // `source()` skips the wrapped error itself.
        if let Some(tls) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

/// Maps a TLS failure to what to do about it.
fn tls_store_error(what: &str, tls: &rustls::Error) -> StoreError {
    match tls {
        rustls::Error::InvalidCertificate(_) => StoreError::unavailable(format!(
            "cannot {what}: the Redis server's TLS certificate was refused ({tls}): if its CA is \
             your own, trust it with RedisStoreBuilder::ca_certificate_pem (or add it to the \
             system's roots); check that the URL names the host the certificate is for"
        )),
        _ => StoreError::unavailable(format!(
            "cannot {what}: the TLS handshake with Redis failed ({tls}): check that the port \
             speaks TLS (rediss:// needs a TLS port; use redis:// for a plain one)"
        )),
    }
}

/// Maps a Redis error. Server replies and conversion errors can quote data, so
/// only their category travels, never their text.
fn redis_error(what: &str, e: RedisError) -> StoreError {
    if let Some(tls) = tls_error(&e) {
        let error = tls_store_error(what, tls);
        return error.with_source(e);
    }
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        return StoreError::unavailable(format!(
            "cannot {what}: Redis is unreachable ({}); retry later",
            e.category()
        ))
        .with_source(e);
    }
    let code = e.code().map(|c| format!(", {c}")).unwrap_or_default();
    StoreError::unavailable(format!(
        "cannot {what}: Redis refused ({}{code}); check the server and its permissions",
        e.category()
    ))
}

fn corrupt(key: &str) -> StoreError {
    StoreError::corrupt(format!(
        "the Redis key of session `{key}` holds something that is not a session written by \
         arcgis-auth: it was left untouched; delete it or choose another prefix"
    ))
}

/// Escapes Redis glob characters so `s` matches literally in `SCAN MATCH`.
fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        validate_key(key)?;
        // One plain command, no script: a missing key answers no fields, a
        // key of another type `WRONGTYPE`. (Not `HMGET`: it cannot tell a
        // missing key from a foreign hash without our fields.)
        let reply: Result<Vec<Vec<u8>>, RedisError> = redis::cmd("HGETALL")
            .arg(self.session_key(key))
            .query_async(&mut self.conn())
            .await;
        match reply {
            Ok(fields) if fields.is_empty() => Ok(None),
            Ok(fields) => {
                let (mut version, mut record) = (None, None);
                for pair in fields.chunks_exact(2) {
                    if let [name, value] = pair {
                        match name.as_slice() {
                            b"v" => version = Some(value),
                            b"r" => record = Some(value),
                            _ => {}
                        }
                    }
                }
                let (Some(version), Some(record)) = (version, record) else {
                    return Err(corrupt(key));
                };
                let version = std::str::from_utf8(version).map_err(|_| corrupt(key))?;
                let record = SessionRecord::from_slice(record).map_err(|e| {
                    StoreError::corrupt(format!("session `{key}` in Redis: {}", e.message()))
                })?;
                Ok(Some(Versioned {
                    record,
                    version: Version::new(version),
                }))
            }
            Err(e) if e.code() == Some("WRONGTYPE") => Err(corrupt(key)),
            Err(e) => Err(redis_error("load a session", e)),
        }
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        validate_key(key)?;
        let json = record.to_json()?;
        let version = Version::new(random_id());
        let (mode_arg, expected) = match &mode {
            SaveMode::Create => ("create", ""),
            SaveMode::Update(v) => ("update", v.as_str()),
            SaveMode::Overwrite => ("overwrite", ""),
        };
        let expire_at = self
            .expire_at(record)
            .map(|t| t.as_unix_millis().to_string())
            .unwrap_or_default();
        let outcome: String = self
            .inner
            .save
            .key(self.session_key(key))
            .arg(mode_arg)
            .arg(expected)
            .arg(version.as_str())
            .arg(json)
            .arg(expire_at)
            .arg(&self.inner.channel)
            .arg(save_message(&self.inner.origin, key, &version))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| redis_error("save a session", e))?;
        let kind = match outcome.as_str() {
            "created" => ChangeKind::Created,
            "updated" => ChangeKind::Updated,
            "conflict" => return Err(StoreError::conflict(key)),
            _ => return Err(corrupt(key)),
        };
        self.publish(ChangeEvent {
            key: key.to_owned(),
            kind,
            version: Some(version.clone()),
        });
        Ok(version)
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        validate_key(key)?;
        let outcome: String = self
            .inner
            .delete
            .key(self.session_key(key))
            .arg(if version.is_some() { "1" } else { "0" })
            .arg(version.map(Version::as_str).unwrap_or_default())
            .arg(&self.inner.channel)
            .arg(self.delete_message(key))
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| redis_error("delete a session", e))?;
        match outcome.as_str() {
            "deleted" => {
                self.publish(ChangeEvent {
                    key: key.to_owned(),
                    kind: ChangeKind::Deleted,
                    version: None,
                });
                Ok(true)
            }
            "missing" => Ok(false),
            "conflict" => Err(StoreError::conflict(key)),
            _ => Err(corrupt(key)),
        }
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let root = self.session_key("");
        let pattern = format!("{}{}*", escape_glob(&root), escape_glob(prefix));
        let mut conn = self.conn();
        let mut keys = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("list sessions", e))?;
            for raw in batch {
                // Keys that are not UTF-8 were not written by this crate.
                if let Some(key) = String::from_utf8(raw)
                    .ok()
                    .and_then(|k| k.strip_prefix(&root).map(str::to_owned))
                    .filter(|k| k.starts_with(prefix))
                {
                    keys.insert(key);
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        Ok(keys.into_iter().collect())
    }

    /// Change events; the first call starts the subscription to other
    /// processes' changes (see [`RedisStore`]), announced by a
    /// [`ChangeKind::Resync`] once confirmed.
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        // Receiver first, so it gets the first `Resync` of the listener.
        let receiver = self.inner.events.subscribe();
        self.inner.start_listener();
        receiver
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        Some(self)
    }
}

#[async_trait]
impl RefreshLock for RedisStore {
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>> {
        validate_key(key)?;
        validate_lease(lease)?;
        let holder = random_id();
        let millis = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = redis::cmd("SET")
            .arg(self.lock_key(key))
            .arg(&holder)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut self.conn())
            .await
            .map_err(|e| redis_error("take the refresh lock", e))?;
        Ok(set.map(|_| Lease {
            key: key.to_owned(),
            holder,
            duration: lease,
        }))
    }

    async fn release(&self, lease: &Lease) -> StoreResult<bool> {
        validate_key(&lease.key)?;
        let deleted: i64 = self
            .inner
            .release
            .key(self.lock_key(&lease.key))
            .arg(&lease.holder)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| redis_error("release the refresh lock", e))?;
        Ok(deleted == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(
            escape_glob("a*b?c[d]e\\f^g-h"),
            "a\\*b\\?c\\[d\\]e\\\\f^g-h"
        );
        assert_eq!(escape_glob("plain/ü"), "plain/ü");
    }

    #[test]
    fn messages_round_trip_and_unknown_kinds_are_ignored() {
        let m = Message {
            origin: "o".into(),
            key: "k".into(),
            kind: "updated".into(),
            version: Some("v".into()),
        };
        let back: Message = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        let e = back.into_event().unwrap();
        assert_eq!(e.kind, ChangeKind::Updated);
        assert_eq!(e.version, Some(Version::new("v")));
        let odd = Message {
            origin: "o".into(),
            key: "k".into(),
            kind: "exploded".into(),
            version: None,
        };
        assert!(odd.into_event().is_none());
    }

    #[test]
    fn own_messages_start_with_the_echo_prefix_and_others_do_not() {
        let me = random_id();
        let prefix = echo_prefix(&me);
        let save = format!("{}updated\"}}", save_message(&me, "k", &Version::new("v")));
        let delete = serde_json::to_string(&Message {
            origin: me.clone(),
            key: "k".into(),
            version: None,
            kind: "deleted".into(),
        })
        .unwrap();
        for own in [&save, &delete] {
            assert!(own.as_bytes().starts_with(&prefix), "{own}");
        }
        // Another store's origin, even one sharing a prefix with ours.
        for other in [random_id(), me[..me.len() - 1].to_owned()] {
            let theirs = format!(
                "{}created\"}}",
                save_message(&other, "k", &Version::new("v"))
            );
            assert!(!theirs.as_bytes().starts_with(&prefix), "{theirs}");
        }
    }

    #[test]
    fn save_message_completed_as_the_script_does_is_a_message() {
        let prefix = save_message("me", "a\"key", &Version::new("v1"));
        for kind in ["created", "updated"] {
            let full = format!("{prefix}{kind}\"}}");
            let m: Message = serde_json::from_str(&full).unwrap();
            assert_eq!((m.origin.as_str(), m.key.as_str()), ("me", "a\"key"));
            assert_eq!(m.kind, kind);
            assert_eq!(m.version.as_deref(), Some("v1"));
        }
    }
}
