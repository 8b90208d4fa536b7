//! The flows crate end to end against `arcgis-auth-testkit`'s fake portal:
//! real loopback sockets, a stateful portal that verifies everything, and one
//! `ManualClock` shared by the portal and the code under test (no sleeps).
//! Counters of the portal prove how many requests each step made; every
//! scenario also checks that no token shows in Debug output or in a URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code, unreachable_pub)]

mod api_key;
mod failures;
mod refusals;
mod renewal;
mod requests;
mod sign_out;
mod support;
mod user;
mod variants;
