//! The compare-and-swap rules on a plain map, shared by the backends that hold
//! their records in one place (memory, and the file document).
//!
//! Versions are drawn from one counter per table and never reused, so a version
//! read before a delete can never match the record created after it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::store::{ChangeEvent, ChangeKind, SaveMode, Version};

/// One stored record and its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry<R> {
    pub(crate) version: u64,
    pub(crate) record: R,
}

/// Records by key, with the counter versions come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Table<R> {
    /// The next version to hand out.
    pub(crate) next_version: u64,
    /// The records.
    pub(crate) sessions: BTreeMap<String, Entry<R>>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Table {
            next_version: 1,
            sessions: BTreeMap::new(),
        }
    }
}

fn version_of(v: u64) -> Version {
    Version::new(v.to_string())
}

impl<R> Table<R> {
    /// The entry under `key` with its version.
    pub(crate) fn get(&self, key: &str) -> Option<(&R, Version)> {
        self.sessions
            .get(key)
            .map(|e| (&e.record, version_of(e.version)))
    }

    /// Applies a save under the compare-and-swap rules and returns the event to publish.
    pub(crate) fn save(
        &mut self,
        key: &str,
        record: R,
        mode: &SaveMode,
    ) -> StoreResult<ChangeEvent> {
        let current = self.sessions.get(key).map(|e| version_of(e.version));
        if !mode.permits(current.as_ref()) {
            return Err(StoreError::conflict(key));
        }
        let version = self.next_version;
        self.next_version = version.checked_add(1).ok_or_else(|| {
            StoreError::corrupt("the store's version counter is exhausted: start a new store")
        })?;
        self.sessions
            .insert(key.to_owned(), Entry { version, record });
        Ok(ChangeEvent {
            key: key.to_owned(),
            kind: if current.is_some() {
                ChangeKind::Updated
            } else {
                ChangeKind::Created
            },
            version: Some(version_of(version)),
        })
    }

    /// Applies a delete; `Ok(None)` when there was nothing to delete.
    pub(crate) fn delete(
        &mut self,
        key: &str,
        expected: Option<&Version>,
    ) -> StoreResult<Option<ChangeEvent>> {
        let Some(current) = self.sessions.get(key).map(|e| version_of(e.version)) else {
            return match expected {
                // The caller read a version that is gone now: someone else deleted it.
                Some(_) => Err(StoreError::conflict(key)),
                None => Ok(None),
            };
        };
        if let Some(expected) = expected
            && *expected != current
        {
            return Err(StoreError::conflict(key));
        }
        self.sessions.remove(key);
        Ok(Some(ChangeEvent {
            key: key.to_owned(),
            kind: ChangeKind::Deleted,
            version: None,
        }))
    }

    /// Makes sure the counter is past every stored version (a hand-edited or
    /// merged file could otherwise hand out a version some record already has).
    pub(crate) fn repair_counter(&mut self) -> StoreResult<()> {
        if let Some(max) = self.sessions.values().map(|e| e.version).max() {
            let floor = max.checked_add(1).ok_or_else(|| {
                StoreError::corrupt("the store's version counter is exhausted: start a new store")
            })?;
            self.next_version = self.next_version.max(floor);
        }
        Ok(())
    }

    /// The keys starting with `prefix`, sorted.
    pub(crate) fn list(&self, prefix: &str) -> Vec<String> {
        self.sessions
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreErrorKind;

    #[test]
    fn cas_rules_and_no_aba() {
        let mut t = Table::<u8>::default();
        let e = t.save("k", 1, &SaveMode::Create).unwrap();
        assert_eq!(e.kind, ChangeKind::Created);
        let v1 = e.version.unwrap();
        assert_eq!(
            t.save("k", 2, &SaveMode::Create).unwrap_err().kind(),
            StoreErrorKind::Conflict
        );
        let v2 = t
            .save("k", 2, &SaveMode::Update(v1.clone()))
            .unwrap()
            .version
            .unwrap();
        assert_eq!(
            t.save("k", 3, &SaveMode::Update(v1.clone()))
                .unwrap_err()
                .kind(),
            StoreErrorKind::Conflict
        );
        assert!(t.delete("k", Some(&v2)).unwrap().is_some());
        let v3 = t.save("k", 4, &SaveMode::Create).unwrap().version.unwrap();
        assert_ne!(v3, v1);
        assert_ne!(v3, v2);
        assert!(t.save("k", 5, &SaveMode::Update(v2)).is_err());
        assert!(
            t.save("k", 5, &SaveMode::Update(Version::new("junk")))
                .is_err()
        );
        assert_eq!(t.get("k").unwrap().0, &4);
    }

    #[test]
    fn list_is_prefix_bounded_and_sorted() {
        let mut t = Table::<u8>::default();
        for k in ["b", "a/2", "a/1", "ab", "a"] {
            t.save(k, 0, &SaveMode::Overwrite).unwrap();
        }
        assert_eq!(t.list("a/"), ["a/1", "a/2"]);
        assert_eq!(t.list("a"), ["a", "a/1", "a/2", "ab"]);
        assert_eq!(t.list(""), ["a", "a/1", "a/2", "ab", "b"]);
        assert!(t.list("c").is_empty());
    }
}
