//! Replays a checked-in fuzz corpus through a target's check (used by the
//! `fuzz_corpus` tests of core and storage).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

/// Feeds every file of `fuzz/corpus/<target>/` to `check`; fails naming the
/// first file whose check panics, or when the corpus is missing or empty.
pub(crate) fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its check",
            path.display()
        );
        files += 1;
    }
    assert!(files > 0, "{target}: no corpus in {}", dir.display());
}
