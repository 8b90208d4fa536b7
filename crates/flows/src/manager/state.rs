//! What the manager remembers between calls.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use arcgis_auth_core::{Timestamp, Token};
use arcgis_auth_storage::{ChangeEvent, SessionRecord, Version};

use super::changes::Watcher;
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

/// Everything behind the manager's one mutex, which is held for a few
/// instructions at a time and never across I/O.
#[derive(Debug, Default)]
pub(super) struct Shared {
    /// The session as the manager knows it. The running flight works on a
    /// copy and puts it back when it lands, unless `generation` moved on.
    pub(super) st: SessionState,
    /// Bumped when the session is replaced or forgotten (`set_session`,
    /// `clear`, a deletion elsewhere): a flight started before lands nowhere.
    pub(super) generation: u64,
    /// The manager's own saves, so that their change events are not taken
    /// for another writer's.
    pub(super) saves: OwnSaves,
    /// The task that follows the store's change events (see `changes`).
    pub(super) watcher: Watcher,
}

/// How many versions of its own saves the manager remembers.
const OWN_VERSIONS: usize = 8;

/// The manager's saves in progress, the versions its saves produced lately,
/// and the change events seen while a save was in progress (whether they are
/// its own is known when the save returns).
#[derive(Debug, Default)]
pub(super) struct OwnSaves {
    pub(super) in_progress: usize,
    recent: VecDeque<Version>,
    pub(super) deferred: Vec<ChangeEvent>,
}

impl OwnSaves {
    /// Remembers `version` as one the manager wrote.
    pub(super) fn record(&mut self, version: &Version) {
        if self.recent.len() == OWN_VERSIONS {
            self.recent.pop_front();
        }
        self.recent.push_back(version.clone());
    }

    /// Whether the manager wrote `version`.
    pub(super) fn is_own(&self, version: &Version) -> bool {
        self.recent.contains(version)
    }
}

/// The session as the manager knows it.
#[derive(Debug, Default, Clone)]
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
    /// Why the last save failed (what `persist` and `set_session` report).
    pub(super) save_error: Option<FlowError>,
    /// The store epoch (see `Inner::store_epoch`) read before the store was
    /// last read or written for this state: what is served from it is
    /// served only while that epoch is current.
    pub(super) epoch: u64,
    /// The generation (see [`Shared::generation`]) this state belongs to.
    pub(super) generation: u64,
}

impl SessionState {
    /// Forgets the session (it was deleted from the store), staying in the
    /// same generation.
    pub(super) fn forget(&mut self) {
        *self = SessionState {
            epoch: self.epoch,
            generation: self.generation,
            ..SessionState::default()
        };
    }
}
