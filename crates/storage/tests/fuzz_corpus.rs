//! Replays the checked-in `session_record` fuzz corpus (`fuzz/corpus/`)
//! through the fuzz target's own check (`fuzz/checks/storage.rs`) in CI.

#[path = "../../../fuzz/checks/storage.rs"]
mod checks;
#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

#[test]
fn session_record_corpus() {
    replay::replay("session_record", checks::session_record);
}
