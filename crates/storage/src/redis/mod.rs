//! [`RedisStore`]: sessions in Redis, shared by a fleet of servers.
//!
//! Layout under the prefix `P` (default `arcgis-auth`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:session:<key>` | hash | `v`: the version (128 random bits, hex), `r`: the record JSON |
//! | `P:lock:<key>` | string | the refresh lock's holder id, with a `PX` expiry |
//! | `P:changes` | pub/sub channel | one JSON message per change |
//!
//! Saves and deletes are Lua scripts, so the version check, the write, the
//! expiry and the change message happen atomically on the server. A load is
//! one plain `HGETALL` (a key of another type answers `WRONGTYPE`: corrupt).
//!
//! | module | holds |
//! |---|---|
//! | `builder` | [`RedisStoreBuilder`]: settings, and connecting |
//! | `store` | [`RedisStore`] and its `SessionStore` and `RefreshLock` implementations |
//! | `scripts` | the Lua scripts of saves, deletes and lock releases |
//! | `messages` | the JSON change messages on the pub/sub channel |
//! | `listener` | the pub/sub listener that turns other processes' messages into events |
//! | `tls` | `rediss://` clients: root certificates, the crypto provider, TLS failures |
//! | `error` | Redis errors as [`StoreError`](crate::StoreError)s |

mod builder;
mod error;
mod listener;
mod messages;
mod scripts;
mod store;
mod tls;

pub use builder::{DEFAULT_REDIS_PREFIX, RedisStoreBuilder};
pub use store::RedisStore;
