//! Replays a target's checked-in inputs through its check (used by the
//! `fuzz_corpus` tests of core and storage).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

/// Where a target's inputs live, under `fuzz/`: hand-written seeds, the
/// crashes the fuzzer found (kept forever, named for the bug), and the corpus
/// the fuzzer grew (minimised by `cargo xtask fuzz`).
const DIRS: [&str; 3] = ["seeds", "regressions", "corpus"];

/// Feeds every file of `fuzz/{seeds,regressions,corpus}/<target>/` to
/// `check`; fails naming the first file whose check panics, or when a target
/// has no seeds.
pub(crate) fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut seeds = 0;
    for dir in DIRS {
        let dir_path = fuzz.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir_path) else {
            continue; // no regressions (yet) for this target
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "{target}: {} fails its check",
                path.display()
            );
            if dir == "seeds" {
                seeds += 1;
            }
        }
    }
    assert!(seeds > 0, "{target}: no seeds in fuzz/seeds/{target}");
}
