//! What the manager remembers between calls.

use std::sync::atomic::{AtomicBool, Ordering};

use arcgis_auth_core::{Timestamp, Token};
use arcgis_auth_storage::{SessionRecord, Version};

use crate::access::AccessToken;
use crate::error::FlowError;

/// The token the cached path serves, with when to stop serving it blindly.
#[derive(Debug)]
pub(super) struct Cached {
    pub(super) token: AccessToken,
    /// When the token is due for renewal (lead time and jitter applied;
    /// its expiry for tokens that are never renewed).
    pub(super) refresh_at: Timestamp,
    /// When the cached path stops serving without looking: `refresh_at`, or
    /// earlier when an unsaved change should be retried, or later (up to the
    /// expiry) after a failed early renewal.
    pub(super) check_at: Timestamp,
    /// The store epoch (see `Inner::store_epoch`) this was made at: served
    /// only while it is still the current one.
    pub(super) epoch: u64,
    /// Set by `report_invalid`.
    invalid: AtomicBool,
}

impl Cached {
    pub(super) fn new(
        token: AccessToken,
        refresh_at: Timestamp,
        check_at: Timestamp,
        epoch: u64,
    ) -> Self {
        Cached {
            token,
            refresh_at,
            check_at,
            epoch,
            invalid: AtomicBool::new(false),
        }
    }

    pub(super) fn is_invalid(&self) -> bool {
        self.invalid.load(Ordering::Acquire)
    }

    /// Marks the token invalid; true for the first caller only.
    pub(super) fn mark_invalid(&self) -> bool {
        !self.invalid.swap(true, Ordering::AcqRel)
    }
}

/// A change the store has not accepted yet.
#[derive(Debug, Clone)]
pub(super) enum Pending {
    /// A renewed token: on a conflict it is applied on top of whatever is stored.
    Token(Box<Token>),
    /// A new sign-in: written as a whole.
    Session,
}

/// The session as the manager knows it. Only the running renewal (and
/// `set_session`/`persist`) touch it, under the session mutex.
#[derive(Debug, Default)]
pub(super) struct SessionState {
    /// The record last read, saved, or adopted.
    pub(super) record: Option<SessionRecord>,
    /// Its version in the store (`None`: never saved, or not in the store).
    pub(super) version: Option<Version>,
    /// What the store has not accepted yet.
    pub(super) pending: Option<Pending>,
    /// When set, the record's session cannot be renewed any more (sign in
    /// again); the source is not called again until a different session
    /// appears in the store or is set.
    pub(super) ended: Option<FlowError>,
    /// When the last failed save happened (to space out retries).
    pub(super) save_failed_at: Option<Timestamp>,
}
