#![no_main]
//! Fuzz target `session_record`: see `checks/storage.rs`.

#[path = "../checks/storage.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::session_record(data));
