//! Shared test helpers.

pub(crate) mod redis_server;
