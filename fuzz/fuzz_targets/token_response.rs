#![no_main]
//! Fuzz target `token_response`: see `checks/core.rs`.

#[path = "../checks/core.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::token_response(data));
