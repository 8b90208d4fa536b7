//! The `SessionStore` contract: compare-and-swap saves, a refresh lock, change events.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::StoreResult;
use crate::record::SessionRecord;

/// An opaque version of a stored record, returned by every load and save.
///
/// Backends choose the representation (a counter, an ETag, a random id); callers
/// only hand it back in [`SaveMode::Update`] or [`SessionStore::delete`].
///
/// Every successful save produces a version the key has never had before, even
/// after the record was deleted and created again, so a stale version can never
/// match a newer record by accident (no ABA).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// A version from the backend's own representation.
    pub fn new(v: impl Into<String>) -> Self {
        Version(v.into())
    }

    /// The backend's representation.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record together with the version it was read at.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The record.
    pub record: SessionRecord,
    /// Its version: pass it to [`SaveMode::Update`] to save a change.
    pub version: Version,
}

/// How a save treats what is already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveMode {
    /// Save only if no record exists under the key; otherwise
    /// [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict).
    Create,
    /// Save only if the stored record is still at this version; otherwise
    /// [`StoreErrorKind::Conflict`](crate::StoreErrorKind::Conflict) (also when it was deleted).
    Update(Version),
    /// Save unconditionally (a fresh sign-in replacing whatever was there).
    Overwrite,
}

impl SaveMode {
    /// Whether this save may go ahead when the stored record is at `current`
    /// (`None`: no record). Backends apply it inside their atomic step.
    ///
    /// ```
    /// use arcgis_auth_storage::{SaveMode, Version};
    ///
    /// let v1 = Version::new("1");
    /// assert!(SaveMode::Create.permits(None));
    /// assert!(!SaveMode::Create.permits(Some(&v1)));
    /// assert!(SaveMode::Update(v1.clone()).permits(Some(&v1)));
    /// assert!(!SaveMode::Update(v1.clone()).permits(Some(&Version::new("2"))));
    /// assert!(!SaveMode::Update(v1).permits(None));
    /// assert!(SaveMode::Overwrite.permits(None));
    /// ```
    pub fn permits(&self, current: Option<&Version>) -> bool {
        match (self, current) {
            (SaveMode::Create, None) | (SaveMode::Overwrite, _) => true,
            (SaveMode::Update(expected), Some(current)) => expected == current,
            (SaveMode::Create, Some(_)) | (SaveMode::Update(_), None) => false,
        }
    }
}

/// What happened to a stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A record was created where none was.
    Created,
    /// An existing record was replaced (a refresh, a new sign-in).
    Updated,
    /// The record was deleted (sign-out).
    Deleted,
    /// Changes may have been missed: re-read every session you care about.
    ///
    /// Sent by backends whose feed of other processes' changes can be
    /// interrupted (the Redis store's pub/sub subscription, the file store's
    /// watcher of its file), each time that feed is (re)established: changes
    /// made before the event, while the feed was being set up or was down,
    /// were not delivered; changes made after it are. It concerns every key:
    /// its [`key`](ChangeEvent::key) is empty and its
    /// [`version`](ChangeEvent::version) is `None` (see
    /// [`ChangeEvent::concerns`]). Backends with no such feed (memory) never
    /// send it.
    Resync,
}

/// A change to a stored session, delivered to [`SessionStore::subscribe`]rs.
/// It carries the key and the new version, never the record's secrets.
///
/// ```
/// use arcgis_auth_storage::{ChangeEvent, ChangeKind};
///
/// // What a subscriber interested in one session does with an event.
/// fn must_reload(event: &ChangeEvent, mine: &str) -> bool {
///     event.concerns(mine)
/// }
/// let resync = ChangeEvent::resync();
/// assert_eq!(resync.kind, ChangeKind::Resync);
/// assert!(must_reload(&resync, "jdoe"));
/// let other = ChangeEvent { key: "asmith".into(), kind: ChangeKind::Deleted, version: None };
/// assert!(!must_reload(&other, "jdoe"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The session key (empty for [`ChangeKind::Resync`], which concerns
    /// every key).
    pub key: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The version after the change (`None` after a delete and for
    /// [`ChangeKind::Resync`]).
    pub version: Option<Version>,
}

impl ChangeEvent {
    /// A [`ChangeKind::Resync`] event: empty key, no version.
    pub fn resync() -> Self {
        ChangeEvent {
            key: String::new(),
            kind: ChangeKind::Resync,
            version: None,
        }
    }

    /// Whether a subscriber that cares about the session under `key` should
    /// look at the store again: the event is about `key`, or it is a
    /// [`ChangeKind::Resync`].
    pub fn concerns(&self, key: &str) -> bool {
        self.kind == ChangeKind::Resync || self.key == key
    }
}

/// A held refresh lock. Hand it back to [`RefreshLock::release`]; if the holder
/// dies instead, the lock frees itself when the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The session key the lock is for.
    pub key: String,
    /// A random value identifying this holder: only it can release the lock.
    pub holder: String,
    /// How long the lock was taken for.
    pub duration: Duration,
}

/// A cross-process lock per session, so one process refreshes and the others
/// wait and re-read the store.
#[async_trait]
pub trait RefreshLock: Send + Sync + fmt::Debug {
    /// Tries to take the lock for `key` for `lease`. Returns `Ok(None)` at once
    /// when someone else holds it; never waits.
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>>;

    /// Releases `lease`. Returns `Ok(false)` when the lease had already run out
    /// (and someone else may hold the lock now); the other holder is never disturbed.
    async fn release(&self, lease: &Lease) -> StoreResult<bool>;

    /// Extends `lease`, while it is still live, to run out `lease.duration`
    /// from now (a holder's heartbeat during a long renewal). Returns
    /// `Ok(false)` when the lease had already run out or is not the holder's
    /// (the lock may be someone else's now: it is never taken over), or when
    /// the backend cannot extend leases, which is what this default does.
    async fn extend(&self, lease: &Lease) -> StoreResult<bool> {
        let _ = lease;
        Ok(false)
    }
}

/// Where sessions live: a key-value store of [`SessionRecord`]s with
/// compare-and-swap saves.
///
/// Keys are non-empty UTF-8 strings of at most 512 bytes without control
/// characters; backends reject others with
/// [`StoreErrorKind::InvalidInput`](crate::StoreErrorKind::InvalidInput).
///
/// Implementations must be safe to share between tasks; run the conformance
/// suite (module `conformance`, behind the cargo feature `conformance`) to check one.
#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// The record under `key` and its version, or `None`.
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>>;

    /// Saves `record` under `key` according to `mode` and returns the new version.
    async fn save(&self, key: &str, record: &SessionRecord, mode: SaveMode)
    -> StoreResult<Version>;

    /// Deletes the record under `key`. With `Some(version)`, only if it is still
    /// at that version (otherwise a conflict). Returns whether a record was deleted.
    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool>;

    /// The keys that start with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>>;

    /// Change events for this store. Every backend delivers the changes made
    /// through this handle and its clones; backends that can see other
    /// processes' writes (Redis, file) deliver those too. Where that feed of other
    /// processes' writes can miss some (it is being set up, or reconnecting),
    /// the backend sends a [`ChangeKind::Resync`] once it is live again. A
    /// receiver that falls behind sees `RecvError::Lagged`. After either,
    /// re-load what you care about.
    ///
    /// It must not block and must work outside a Tokio runtime (a token
    /// manager subscribes when it is built, which may be anywhere).
    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent>;

    /// The cross-process refresh lock, when this backend offers one. `None`
    /// means callers can only single-flight refreshes within their own process.
    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        None
    }
}

/// Checks a key against the rules in [`SessionStore`]'s docs.
pub fn validate_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > 512 || key.chars().any(char::is_control) {
        return Err(crate::StoreError::new(
            crate::StoreErrorKind::InvalidInput,
            "session keys must be 1 to 512 bytes of text without control characters",
        ));
    }
    Ok(())
}
