//! Replays every checked-in fuzz input (`fuzz/seeds/`, `fuzz/regressions/`,
//! `fuzz/corpus/`) through the same checks the fuzz targets run
//! (`fuzz/checks/core.rs`), so CI keeps every input the fuzzer found
//! interesting, and every crash it ever found, passing without a nightly
//! toolchain. `cargo xtask fuzz` grows the corpora.

#[path = "../../../fuzz/checks/core.rs"]
mod checks;

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

use replay::replay;

#[test]
fn token_response_corpus() {
    replay("token_response", checks::token_response);
}

#[test]
fn generate_token_response_corpus() {
    replay("generate_token_response", checks::generate_token_response);
}

#[test]
fn error_body_corpus() {
    replay("error_body", checks::error_body);
}

#[test]
fn redirect_corpus() {
    replay("redirect", checks::redirect);
}

#[test]
fn urls_corpus() {
    replay("urls", checks::urls);
}

#[test]
fn server_info_corpus() {
    replay("server_info", checks::server_info);
}
