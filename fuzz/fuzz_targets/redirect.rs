#![no_main]
//! Fuzz target `redirect`: see `checks/core.rs`.

#[path = "../checks/core.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::redirect(data));
