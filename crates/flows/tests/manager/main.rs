//! The token manager's "must hold" guarantees, with injected time and counted requests.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns: panicking is the point

mod expiry;
mod failures;
mod in_flight;
mod invalidation;
mod persistence;
mod refresh_tokens;
mod single_flight;
mod support;
mod wire;
