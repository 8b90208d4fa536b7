//! Authenticated requests on the wire (wiremock and raw sockets on loopback, injected time):
//! where tokens go and never go, how they travel, the one retry after a
//! 498/499, federated and trusted servers, and the session helpers
//! (sign-out, `community/self`, `portals/self`, `validateAppAccess`).
//! Every test checks that no token ever appears in a URL.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too
#![allow(dead_code, unreachable_pub)]

mod chunked;
mod federation;
mod middleware;
mod session;
mod support;
