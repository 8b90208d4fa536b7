//! The one error type of `arcgis-auth-flows`, with a kind to match on.
//!
//! [`FlowError`] wraps the errors of `arcgis-auth-core` (ArcGIS said no, the
//! network failed) and `arcgis-auth-storage` (the session store failed), and
//! adds the failures only the flows know about: the session has ended and the
//! user must sign in again, there is no session at all, a token cannot be
//! renewed. It is cheap to clone, because one failed refresh is handed to
//! every caller that was waiting for it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{Error as CoreError, ErrorKind};
use arcgis_auth_storage::{StoreError, StoreErrorKind};

/// What kind of failure a [`FlowError`] is. Match on this, not on messages.
///
/// ```
/// use arcgis_auth_core::ErrorKind;
/// use arcgis_auth_flows::{FlowError, FlowErrorKind};
///
/// let err = FlowError::from(arcgis_auth_core::Error::new(ErrorKind::Server, "HTTP 502"));
/// assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::Server));
/// assert!(err.is_transient());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FlowErrorKind {
    /// The session cannot be renewed any more: the refresh token expired or was
    /// revoked, the password of a `generateToken` session is not in memory, the
    /// user declined. The only cure is to sign in again.
    SignInRequired,
    /// There is no session under the manager's key: sign in first.
    NoSession,
    /// The token cannot be renewed at all (an API key, an implicit-grant token)
    /// and it expired or was rejected. Issue a new key or sign in again.
    NotRenewable,
    /// ArcGIS or the network failed; the core kind says how.
    ArcGis(ErrorKind),
    /// The session store failed; the store kind says how.
    Store(StoreErrorKind),
    /// Another process held the session's refresh lock for longer than the
    /// manager was configured to wait, and no fresh token appeared. Try again.
    LockTimeout,
    /// The renewal this call was waiting for stopped before it finished (its
    /// task was cancelled, e.g. because the runtime is shutting down). Try again.
    Interrupted,
    /// A configuration or input the flow cannot work with (for example a session
    /// record of a kind the strategy does not handle).
    InvalidInput,
    /// A [`ManagerConfig`](crate::ManagerConfig) whose parts contradict each
    /// other (a lock wait shorter than the renewal it waits for, say); the
    /// message says which and how to fix it. Nothing was started.
    InvalidConfig,
    /// The sign-in callback does not carry the `state` this sign-in sent: it is
    /// forged, or belongs to another (older) sign-in. Start the sign-in again.
    StateMismatch,
    /// No sign-in callback arrived in time (the loopback listener gave up
    /// waiting for the browser). Start the sign-in again.
    SignInTimedOut,
    /// A local I/O operation failed, such as binding the loopback listener's
    /// port. The message says which.
    Io,
    /// The ArcGIS Server is federated with another portal (its `owningSystemUrl`
    /// names a different portal): this session's tokens cannot be used there.
    /// Sign in to that portal, or use the server without a token.
    NotFederated,
    /// The [`TokenSource`](crate::TokenSource) panicked while renewing: a bug
    /// in the token source, not a failure of the portal or the network. The
    /// message carries the panic's own message; the next call tries again.
    SourcePanicked,
}

impl FlowErrorKind {
    /// Whether retrying later may succeed (network trouble, 5xx, rate limits,
    /// an unavailable store, a busy refresh lock).
    pub fn is_transient(self) -> bool {
        match self {
            FlowErrorKind::ArcGis(kind) => kind.is_transient(),
            FlowErrorKind::Store(kind) => kind == StoreErrorKind::Unavailable,
            FlowErrorKind::LockTimeout | FlowErrorKind::Interrupted => true,
            _ => false,
        }
    }

    /// Whether the only cure is for the user to sign in again.
    pub fn needs_sign_in(self) -> bool {
        matches!(
            self,
            FlowErrorKind::SignInRequired
                | FlowErrorKind::NoSession
                | FlowErrorKind::StateMismatch
                | FlowErrorKind::SignInTimedOut
        )
    }
}

/// An error from `arcgis-auth-flows`.
///
/// Cheap to clone (the error is shared), `Send + Sync`, and its message says
/// what to do next. Messages never contain a token, password or secret.
///
/// ```
/// use arcgis_auth_flows::{FlowError, FlowErrorKind};
///
/// let err = FlowError::new(
///     FlowErrorKind::SignInRequired,
///     "refresh token expired: sign in again",
/// );
/// assert!(err.kind().needs_sign_in());
/// assert_eq!(err.to_string(), "refresh token expired: sign in again");
/// ```
#[derive(Clone)]
pub struct FlowError {
    inner: Arc<Inner>,
}

struct Inner {
    kind: FlowErrorKind,
    message: String,
    arcgis_kind: Option<ErrorKind>,
    retry_after: Option<Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// Whether `message` already says what `source` says (an error converted
    /// from core or storage keeps its message): then [`source`] skips it and
    /// answers the cause's own cause, so a printed chain says each thing once.
    ///
    /// [`source`]: std::error::Error::source
    message_has_source: bool,
}

impl FlowError {
    /// A new error of `kind` with a message saying what happened and what to do.
    /// The message must never contain a secret.
    pub fn new(kind: FlowErrorKind, message: impl Into<String>) -> Self {
        Self::build(kind, message.into(), None, None)
    }

    /// A new error of `kind` caused by `source`, which
    /// [`source`](std::error::Error::source) returns. The message says what
    /// failed and what to do, without repeating `source`'s own message (a
    /// printed chain, `{:#}` with anyhow, shows both).
    pub fn with_source(
        kind: FlowErrorKind,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self::build(kind, message.into(), None, Some(source.into()))
    }

    fn build(
        kind: FlowErrorKind,
        message: String,
        arcgis_kind: Option<ErrorKind>,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        let arcgis_kind = arcgis_kind.or(match kind {
            FlowErrorKind::ArcGis(k) => Some(k),
            _ => None,
        });
        FlowError {
            inner: Arc::new(Inner {
                kind,
                message,
                arcgis_kind,
                retry_after: None,
                source,
                message_has_source: false,
            }),
        }
    }

    /// Marks the message as already saying what the source says.
    fn saying_its_source(mut self) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.message_has_source = true;
        }
        self
    }

    /// An error of `kind` whose `message` already says what `cause` says
    /// (`source()` then answers the cause's own cause, not the cause again).
    pub(crate) fn repeating(
        kind: FlowErrorKind,
        message: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::build(kind, message.into(), None, Some(Box::new(cause))).saying_its_source()
    }

    fn retrying_after(mut self, retry_after: Option<Duration>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.retry_after = retry_after;
        }
        self
    }

    /// A "sign in again" error caused by a core error (a 498 from the token
    /// endpoint, a revoked refresh token), keeping the core kind for
    /// [`FlowError::arcgis_kind`].
    pub(crate) fn sign_in_required(message: impl Into<String>, cause: FlowError) -> Self {
        let arcgis_kind = cause.arcgis_kind();
        Self::build(
            FlowErrorKind::SignInRequired,
            message.into(),
            arcgis_kind,
            Some(Box::new(cause)),
        )
    }

    /// An error of `kind` caused by a core error, keeping its kind for
    /// [`FlowError::arcgis_kind`] (e.g. an API key rejected with a 498).
    pub(crate) fn from_core(
        kind: FlowErrorKind,
        message: impl Into<String>,
        cause: CoreError,
    ) -> Self {
        let arcgis_kind = Some(cause.kind());
        Self::build(kind, message.into(), arcgis_kind, Some(Box::new(cause)))
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> FlowErrorKind {
        self.inner.kind
    }

    /// The ArcGIS/core kind behind this error, when ArcGIS or the network
    /// caused it (also for [`FlowErrorKind::SignInRequired`] errors that a
    /// 498 from the token endpoint caused).
    pub fn arcgis_kind(&self) -> Option<ErrorKind> {
        self.inner.arcgis_kind
    }

    /// How long ArcGIS asked us to wait before trying again (`Retry-After` on
    /// a rate limit or 503), when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The human-readable message (also what `Display` prints).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Whether retrying later may succeed; see [`FlowErrorKind::is_transient`].
    pub fn is_transient(&self) -> bool {
        self.inner.kind.is_transient()
    }
}

impl From<CoreError> for FlowError {
    /// Core errors keep their kind as [`FlowErrorKind::ArcGis`], except a
    /// sign-in redirect's state mismatch ([`FlowErrorKind::StateMismatch`]) and
    /// those whose only cure is to sign in again (a 498 from the token endpoint, a declined
    /// sign-in), which become [`FlowErrorKind::SignInRequired`].
    fn from(err: CoreError) -> Self {
        let core_kind = err.kind();
        let kind = if core_kind == ErrorKind::StateMismatch {
            FlowErrorKind::StateMismatch
        } else if core_kind.needs_sign_in() {
            FlowErrorKind::SignInRequired
        } else {
            FlowErrorKind::ArcGis(core_kind)
        };
        let message = err.message().to_owned();
        let retry_after = err.retry_after();
        Self::build(kind, message, Some(core_kind), Some(Box::new(err)))
            .retrying_after(retry_after)
            .saying_its_source()
    }
}

impl From<StoreError> for FlowError {
    fn from(err: StoreError) -> Self {
        let kind = FlowErrorKind::Store(err.kind());
        let message = format!("session store: {}", err.message());
        Self::build(kind, message, None, Some(Box::new(err))).saying_its_source()
    }
}

impl fmt::Debug for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowError")
            .field("kind", &self.inner.kind)
            .field("message", &self.inner.message)
            .field("arcgis_kind", &self.inner.arcgis_kind)
            .field("retry_after", &self.inner.retry_after)
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for FlowError {
    /// The cause, when the message does not already say it; for an error
    /// converted from a core or store error (whose message this one repeats),
    /// that error's own cause.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let cause = self
            .inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))?;
        if self.inner.message_has_source {
            cause.source()
        } else {
            Some(cause)
        }
    }
}

/// `Result` with this crate's [`FlowError`].
pub type Result<T, E = FlowError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_kind_or_become_sign_in() {
        let e = FlowError::from(CoreError::new(ErrorKind::RefreshTokenExpired, "expired"));
        assert_eq!(e.kind(), FlowErrorKind::SignInRequired);
        assert_eq!(e.arcgis_kind(), Some(ErrorKind::RefreshTokenExpired));
        assert!(!e.is_transient());

        let e = FlowError::from(CoreError::new(ErrorKind::InvalidClient, "bad client"));
        assert_eq!(e.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidClient));
        assert!(!e.is_transient());
        // The core error's message is this one's; its cause is this one's source.
        assert_eq!(e.to_string(), "bad client");
        assert!(std::error::Error::source(&e).is_none());
        let io = std::io::Error::other("connection reset");
        let e = FlowError::from(CoreError::new(ErrorKind::Transport, "no answer").with_source(io));
        let source = std::error::Error::source(&e).expect("the core error's cause");
        assert_eq!(source.to_string(), "connection reset");
    }

    #[test]
    fn store_errors_are_wrapped() {
        let e = FlowError::from(StoreError::new(StoreErrorKind::Unavailable, "redis down"));
        assert_eq!(e.kind(), FlowErrorKind::Store(StoreErrorKind::Unavailable));
        assert!(e.is_transient());
        assert!(e.to_string().contains("redis down"));
    }

    #[test]
    fn errors_are_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + std::error::Error + 'static>() {}
        check::<FlowError>();
    }
}
