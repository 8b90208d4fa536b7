//! Replays the checked-in `session_record` fuzz inputs (`fuzz/seeds/`,
//! `fuzz/regressions/`, `fuzz/corpus/`) through the fuzz target's own check
//! (`fuzz/checks/storage.rs`) in CI, and pins what the fuzzer found.
#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/checks/storage.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

use arcgis_auth_storage::SessionRecord;

#[test]
fn session_record_corpus() {
    replay::replay("session_record", checks::session_record);
}

/// Found by the fuzzer: serde_json's default float parser read a float in an
/// unknown field one bit off, so a record read and written back changed it.
/// Fixed by the `float_roundtrip` feature (root Cargo.toml).
#[test]
fn a_float_in_an_unknown_field_is_written_back_exactly() {
    let json = r#"{"format":1,"portal":"https://www.arcgis.com/sharing/rest","kind":"user","from_a_newer_release":3.4000007222222233e45}"#;
    let record = SessionRecord::from_json(json).unwrap();
    let written = record.to_json().unwrap();
    let value: serde_json::Value = serde_json::from_str(&written).unwrap();
    let exact: f64 = "3.4000007222222233e45".parse().unwrap();
    assert_eq!(
        value["from_a_newer_release"].as_f64().map(f64::to_bits),
        Some(exact.to_bits()),
        "{written}"
    );
    assert_eq!(
        SessionRecord::from_json(&written)
            .unwrap()
            .to_json()
            .unwrap(),
        written
    );
}
