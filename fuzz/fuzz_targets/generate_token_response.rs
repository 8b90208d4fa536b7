#![no_main]
//! Fuzz target `generate_token_response`: see `checks/core.rs`.

#[path = "../checks/core.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::generate_token_response(data));
