//! Lease bookkeeping shared by the backends that keep refresh locks as data
//! (memory and file): who holds the lock for which key, until when.

use std::collections::BTreeMap;
use std::time::Duration;

use arcgis_auth_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::id::random_id;
use crate::store::Lease;

/// The longest lease a refresh lock may be taken for.
pub(crate) const MAX_LEASE: Duration = Duration::from_secs(24 * 60 * 60);

/// Rejects a zero lease (it would never hold) and absurdly long ones (a dead
/// holder would block refreshes for that long).
pub(crate) fn validate_lease(lease: Duration) -> StoreResult<()> {
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(StoreError::new(
            StoreErrorKind::InvalidInput,
            "refresh lock leases must be longer than zero and at most 24 hours",
        ));
    }
    Ok(())
}

/// One held lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LeaseEntry {
    holder: String,
    expires_at: Timestamp,
}

/// The held locks of one store, keyed by session key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct LeaseTable {
    entries: BTreeMap<String, LeaseEntry>,
}

impl LeaseTable {
    /// Takes the lock for `key` unless a live lease holds it.
    pub(crate) fn try_acquire(
        &mut self,
        key: &str,
        lease: Duration,
        now: Timestamp,
    ) -> Option<Lease> {
        self.prune(now);
        if self.entries.contains_key(key) {
            return None;
        }
        let holder = random_id();
        self.entries.insert(
            key.to_owned(),
            LeaseEntry {
                holder: holder.clone(),
                expires_at: now.saturating_add(lease),
            },
        );
        Some(Lease {
            key: key.to_owned(),
            holder,
            duration: lease,
        })
    }

    /// Frees `lease` if it is still the live holder; a stale entry of the same
    /// holder is dropped too, but reported as `false` (the lease ran out).
    pub(crate) fn release(&mut self, lease: &Lease, now: Timestamp) -> bool {
        match self.entries.get(&lease.key) {
            Some(entry) if entry.holder == lease.holder => {
                let live = entry.expires_at > now;
                self.entries.remove(&lease.key);
                live
            }
            _ => false,
        }
    }

    /// Makes `lease` run out `lease.duration` from `now`, if it is still the
    /// live holder.
    pub(crate) fn extend(&mut self, lease: &Lease, now: Timestamp) -> bool {
        match self.entries.get_mut(&lease.key) {
            Some(entry) if entry.holder == lease.holder && entry.expires_at > now => {
                entry.expires_at = now.saturating_add(lease.duration);
                true
            }
            _ => false,
        }
    }

    /// Drops expired leases; returns whether anything changed.
    pub(crate) fn prune(&mut self, now: Timestamp) -> bool {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        before != self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_expiry_and_holder_checks() {
        let mut t = LeaseTable::default();
        let t0 = Timestamp::from_unix_millis(1_000);
        let lease = Duration::from_secs(10);
        let a = t.try_acquire("k", lease, t0).unwrap();
        assert!(t.try_acquire("k", lease, t0).is_none());
        assert!(t.try_acquire("other", lease, t0).is_some());

        let mut forged = a.clone();
        forged.holder = "someone-else".into();
        assert!(!t.release(&forged, t0));
        assert!(t.try_acquire("k", lease, t0).is_none());

        // Expiry frees the lock; the old holder can no longer release the new one.
        let t1 = t0 + lease;
        let b = t.try_acquire("k", lease, t1).unwrap();
        assert_ne!(a.holder, b.holder);
        assert!(!t.release(&a, t1));
        assert!(t.try_acquire("k", lease, t1).is_none());
        assert!(t.release(&b, t1));
        assert!(!t.release(&b, t1));
        assert!(t.try_acquire("k", lease, t1).is_some());
    }

    #[test]
    fn lease_bounds() {
        assert!(validate_lease(Duration::ZERO).is_err());
        assert!(validate_lease(MAX_LEASE + Duration::from_millis(1)).is_err());
        assert!(validate_lease(Duration::from_millis(1)).is_ok());
    }
}
