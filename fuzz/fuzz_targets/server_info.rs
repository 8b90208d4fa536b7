#![no_main]
//! Fuzz target `server_info`: see `checks/core.rs`.

#[path = "../checks/core.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::server_info(data));
