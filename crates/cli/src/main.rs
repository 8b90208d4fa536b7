#![doc = include_str!("../README.md")]
//!
//! # How the binary is built
//!
//! The binary is thin: every command is a few calls into
//! `arcgis-auth-flows` ([`Profiles`](arcgis_auth_flows::profile::Profiles),
//! the sign-in strategies, the token manager, the request middleware and
//! [`Account::sign_out`](arcgis_auth_flows::account::Account::sign_out)) that
//! a Rust program can make the same way. What lives here is the command line
//! itself: parsing, reading secrets, printing, and exit statuses, plus one
//! store adapter that lets a command's token manager start from the session
//! the command already read, so each command reads the store once.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(unreachable_pub, rust_2018_idioms)]

mod cli;
mod commands;
mod exit;
mod output;
mod read_once;
mod secrets;
mod store;
mod web_tier;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;

fn main() -> ExitCode {
    install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version print to stdout and exit 0; usage errors
            // print to stderr and exit 2.
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(exit::USAGE));
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            output::error(format_args!("cannot start the async runtime ({e})"));
            return ExitCode::from(exit::OTHER);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::error(&err);
            ExitCode::from(err.code())
        }
    }
}

/// A panic prints one line and exits 1: no panic message (it could quote
/// anything) and no backtrace ever reach the user.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        output::error(format_args!(
            "internal error{place}: this is a bug; please report it with the command you ran"
        ));
        std::process::exit(i32::from(exit::OTHER));
    }));
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Set in the child process that panics.
    const CHILD: &str = "ARCGIS_AUTH_TEST_PANIC_HOOK_CHILD";

    /// The panic itself, run only in the child process that
    /// [`a_panic_is_one_line_on_stderr_and_status_1`] starts (it ends its
    /// process, so it cannot run next to other tests).
    #[test]
    #[ignore = "run in a child process by a_panic_is_one_line_on_stderr_and_status_1"]
    fn panic_in_a_child_process() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        install_panic_hook();
        let payload = "token=SECRET-IN-A-PANIC";
        panic!("something went wrong with {payload}");
    }

    #[test]
    fn a_panic_is_one_line_on_stderr_and_status_1() {
        // This test binary, asked to run only the panicking test: a real
        // process whose panic goes through the real hook.
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::panic_in_a_child_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // 1, not libtest's 101 for a failed test: the hook ended the process.
        assert_eq!(out.status.code(), Some(i32::from(exit::OTHER)), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("arcgis-auth: internal error at ")
                && stderr.contains("main.rs:")
                && stderr
                    .trim_end()
                    .ends_with("this is a bug; please report it with the command you ran"),
            "{stderr}"
        );
        for leak in ["SECRET-IN-A-PANIC", "token=", "panicked", "backtrace"] {
            assert!(!stderr.contains(leak), "{leak}: {stderr}");
        }
    }
}
