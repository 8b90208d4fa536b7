//! The test binary as a second process: a test runs its own binary again,
//! filtered to itself, with an environment variable set; the test finds the
//! variable and plays the child's part instead.

use std::ffi::OsStr;
use std::process::{Child, Command, Stdio};

/// Runs `test` of this test binary in a new process with `var` set to
/// `value`, its standard output piped (to read what the child says) and its
/// standard error discarded.
pub(crate) fn spawn_self(test: &str, var: &str, value: impl AsRef<OsStr>) -> Child {
    let exe = std::env::current_exe().expect("the test binary's path");
    Command::new(exe)
        .args(["--exact", test, "--nocapture"])
        .env(var, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the test binary runs again")
}
