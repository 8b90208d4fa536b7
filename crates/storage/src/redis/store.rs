//! [`RedisStore`]: the store, its keys, and its `SessionStore` and
//! `RefreshLock` implementations.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::Timestamp;
use async_trait::async_trait;
use redis::RedisError;
use redis::aio::ConnectionManager;
use tokio::sync::broadcast;

use super::error::{corrupt, redis_error};
use super::listener::Listener;
use super::messages::{delete_message, save_message};
use super::scripts::Scripts;
use crate::error::{StoreError, StoreResult};
use crate::feed::ChangeFeed;
use crate::id::random_id;
use crate::lease::validate_lease;
use crate::record::SessionRecord;
use crate::store::{
    ChangeEvent, ChangeKind, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned,
    validate_key,
};

/// Records whose refresh token expires later than this from now get no TTL.
const NO_TTL_BEYOND: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A session store in Redis, for fleets of servers sharing sessions.
///
/// - Compare-and-swap runs as a Lua script on the server, so any number of
///   processes can save concurrently without lost updates.
/// - The refresh lock is `SET <prefix>:lock:<key> <holder> NX PX <lease>`,
///   released by a script that deletes the key only if it still holds this
///   holder's id.
/// - A record expires (`PEXPIREAT`) a margin after its refresh token does
///   (by this machine's clock; see [`RedisStoreBuilder::ttl_margin`](crate::RedisStoreBuilder::ttl_margin)), when
///   the portal said when that is; records without a known refresh token
///   expiry never expire.
/// - Change events cover this process's writes at once, and other processes'
///   writes through the `<prefix>:changes` pub/sub channel (unless turned off
///   with [`RedisStoreBuilder::remote_events`](crate::RedisStoreBuilder::remote_events)); see below.
/// - Connection failures are [`StoreErrorKind::Unavailable`](crate::StoreErrorKind::Unavailable); the connection
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
/// CA's PEM bundle with [`RedisStoreBuilder::root_certificates`](crate::RedisStoreBuilder::root_certificates):
/// its certificates are trusted on top of the system's roots. There is
/// no way to skip verification: a certificate that does not verify fails
/// [`connect`](crate::RedisStoreBuilder::connect) with
/// [`StoreErrorKind::Unavailable`](crate::StoreErrorKind::Unavailable) and a message saying so, and a
/// `rediss://…/#insecure` URL is refused with
/// [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput). TLS uses rustls's process-wide crypto
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
/// let ca = std::fs::read("/etc/my-app/redis-ca.pem").expect("the CA's PEM bundle");
/// let private = RedisStore::builder("rediss://redis.internal:6379/0")
///     .root_certificates(ca)
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
///
/// # Other processes' changes
///
/// The subscription to the change channel starts with the first call to
/// [`subscribe`](SessionStore::subscribe) on the store or any of its clones,
/// not at [`connect`](crate::RedisStoreBuilder::connect): a store nobody subscribes
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
    pub(super) inner: Arc<Inner>,
}

/// What the clones of a store share.
pub(super) struct Inner {
    pub(super) conn: ConnectionManager,
    pub(super) prefix: String,
    pub(super) channel: String,
    /// Identifies this store's own change messages on the channel.
    pub(super) origin: String,
    pub(super) ttl_margin: Duration,
    pub(super) events: ChangeFeed,
    /// Other processes' changes, followed from the first `subscribe()`.
    pub(super) listener: Listener,
    pub(super) scripts: Scripts,
}

impl RedisStore {
    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The store's connection to Redis (a clone: it is shared, and
    /// reconnects by itself), for commands of your own next to the sessions,
    /// such as a rate limit shared by a fleet: the connection, its timeouts
    /// and its TLS settings are the store's. Its type is the `redis` crate's
    /// (major version 1): depend on that same major to use it. Keep your
    /// keys under [`prefix`](Self::prefix), outside `P:session:`, `P:lock:`
    /// and `P:changes`.
    pub fn connection(&self) -> ConnectionManager {
        self.inner.conn.clone()
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

    fn publish(&self, event: ChangeEvent) {
        self.inner.events.publish(event);
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("remote_events", &self.inner.listener.is_on())
            .field("listening", &self.inner.listener.is_running())
            .finish_non_exhaustive()
    }
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
            .scripts
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
            .scripts
            .delete
            .key(self.session_key(key))
            .arg(if version.is_some() { "1" } else { "0" })
            .arg(version.map(Version::as_str).unwrap_or_default())
            .arg(&self.inner.channel)
            .arg(delete_message(&self.inner.origin, key))
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
        self.inner
            .listener
            .start(&self.inner.channel, &self.inner.origin, &self.inner.events);
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
            .scripts
            .release
            .key(self.lock_key(&lease.key))
            .arg(&lease.holder)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| redis_error("release the refresh lock", e))?;
        Ok(deleted == 1)
    }

    async fn extend(&self, lease: &Lease) -> StoreResult<bool> {
        validate_key(&lease.key)?;
        let millis = u64::try_from(lease.duration.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let extended: i64 = self
            .inner
            .scripts
            .extend
            .key(self.lock_key(&lease.key))
            .arg(&lease.holder)
            .arg(millis)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| redis_error("extend the refresh lock", e))?;
        Ok(extended == 1)
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
}
