//! Test support (feature `test-util`): a loopback Redis server and a
//! fault-injecting store, for this workspace's tests and for backend
//! authors' own.
//!
//! - [`RedisServer`]: the server named by [`REDIS_URL_VAR`], or a private
//!   `redis-server` on a free loopback port, killed on drop; under
//!   `CI=true` a test that cannot get one fails rather than skips.
//!   [`TlsRedisServer`] is a private TLS-only one with certificates made by
//!   the `openssl` command line.
//!
//! Everything here is std and this crate only: the feature adds no
//! dependency. It starts processes and panics on purpose (under `CI=true`),
//! so keep it to tests: enable it in `[dev-dependencies]`.

mod redis_server;

pub use redis_server::{REDIS_URL_VAR, RedisServer, TlsRedisServer};
