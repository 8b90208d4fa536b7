//! Integration tests: the real `arcgis-auth` binary against the testkit's
//! fake portal, over loopback.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod browser;
mod commands;
mod concurrency;
mod exit_codes;
mod help;
mod kerberos;
mod redis_tls;
mod support;
mod web_tier;
