//! The one error type of `arcgis-auth-storage`, with a kind to match on.

use std::fmt;

/// What kind of failure a [`StoreError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// No session under that key (returned by operations that need one, e.g. an update).
    NotFound,
    /// Compare-and-swap failed: another writer saved or deleted the session since
    /// the version you read. Load again, re-apply your change, save again.
    Conflict,
    /// The stored data is not a session record this version understands (corrupt,
    /// truncated, foreign, or written by a newer format). It is left untouched.
    Corrupt,
    /// The backend cannot be reached or refused to work (Redis down, disk full,
    /// permission denied). Transient: retry later; in-memory sessions stay valid.
    Unavailable,
    /// The refresh lock is held by someone else, or a release named a lease
    /// that is no longer held.
    LockNotHeld,
    /// The backend does not offer this operation.
    Unsupported,
    /// The caller passed something unusable (an empty key, a key with forbidden characters).
    InvalidInput,
}

/// An error from a session store. Messages never contain a token or secret.
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// A new error of `kind`. The message must never contain a secret.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    /// A compare-and-swap conflict on `key`.
    pub fn conflict(key: &str) -> Self {
        StoreError::new(
            StoreErrorKind::Conflict,
            format!("session `{key}` was changed by another writer: load it again and retry"),
        )
    }

    /// A [`StoreErrorKind::Corrupt`] error: stored data this release cannot read.
    pub fn corrupt(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::Corrupt, message)
    }

    /// A [`StoreErrorKind::Unavailable`] error: the backend cannot be reached or refused to work.
    pub fn unavailable(message: impl Into<String>) -> Self {
        StoreError::new(StoreErrorKind::Unavailable, message)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, StoreErrorKind::Unavailable)
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `Result` with [`StoreError`].
pub type StoreResult<T> = std::result::Result<T, StoreError>;
