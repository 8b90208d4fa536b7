//! Test support (feature `test-util`): a loopback Redis server and a
//! fault-injecting store, for this workspace's tests and for backend
//! authors' own.
//!
//! - [`RedisServer`]: the server named by [`REDIS_URL_VAR`], or a private
//!   `redis-server` on a free loopback port, killed on drop; under
//!   `CI=true` a test that cannot get one fails rather than skips.
//!   [`TlsRedisServer`] is a private TLS-only one with certificates made by
//!   the `openssl` command line.
//! - [`FaultyStore`]: a store around another that fails or breaks the store
//!   contract when told to ([`Fault`]), holds saves at a gate, and counts the
//!   calls that reach the store underneath ([`Op`]).
//!
//! Everything here is std and this crate only: the feature adds no
//! dependency. It starts processes and panics on purpose (under `CI=true`),
//! so keep it to tests: enable it in `[dev-dependencies]`.

mod faulty_store;
mod redis_server;

pub use faulty_store::{Fault, FaultyStore, Op};
pub use redis_server::{REDIS_URL_VAR, RedisServer, TlsRedisServer};
