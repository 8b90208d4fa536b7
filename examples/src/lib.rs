//! Shared parts of the arcgis-auth examples and the tour.
//!
//! The examples themselves are the files next to this crate's `Cargo.toml`
//! (listed in `README.md`); this library holds what several of them share:
//!
//! - [`args`]: the few command-line options (`--portal`, `--client-id`, ...),
//! - [`target`]: the portal an example talks to: a real one named with
//!   `--portal`, or, by default, the testkit's fake portal started in-process,
//! - [`browser`]: the user's part of a sign-in (the testkit plays it; with a
//!   real portal the URL is opened in the browser and printed),
//! - [`show`]: describing tokens without showing any part of them,
//! - [`web`]: the axum web app of the `web_app` example, in a library so the
//!   browser test can start it in-process.
#![forbid(unsafe_code)]
#![warn(unreachable_pub, rust_2018_idioms)]

pub mod args;
pub mod browser;
pub mod show;
pub mod target;
pub mod web;

/// The error type of the examples: anything printable.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An example's exit status: success, or its error printed in plain words
/// (its `Display`, which says what to do next) and status 1.
pub fn exit_status(result: Result<(), BoxError>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
