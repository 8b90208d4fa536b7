#![no_main]
//! Fuzz target `error_body`: see `checks/core.rs`.

#[path = "../checks/core.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::error_body(data));
