//! What the `session_record` fuzz target checks. Shared with
//! `crates/storage/tests/fuzz_corpus.rs`, which replays the checked-in corpus
//! through it in CI.
#![allow(dead_code, clippy::unwrap_used)]

use arcgis_auth_storage::{SessionRecord, StoreErrorKind};

/// Stored session records: anything is a record or a typed `Corrupt` error
/// (never quoting the input); an accepted record writes out and reads back
/// to the same bytes.
pub(crate) fn session_record(data: &[u8]) {
    match SessionRecord::from_slice(data) {
        Ok(record) => {
            let json = record.to_json().unwrap();
            let again = SessionRecord::from_json(&json).unwrap();
            assert_eq!(again.to_json().unwrap(), json);
        }
        Err(e) => {
            assert_eq!(e.kind(), StoreErrorKind::Corrupt);
            if let Ok(text) = std::str::from_utf8(data) {
                // A quoted input would show up as a long run of it in the message.
                if text.len() >= 16 {
                    assert!(!e.to_string().contains(text), "the error quotes its input");
                }
            }
        }
    }
}
