//! The sign-in strategies, against a wiremock portal on loopback, with
//! injected time: every strategy's happy path and error paths, the loopback
//! listener end to end, and no secret in any `Debug` output or log line.

mod api_key;
mod app;
mod implicit;
mod loopback;
mod password;
mod support;
mod user;
