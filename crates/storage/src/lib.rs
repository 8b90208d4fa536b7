//! # arcgis-auth-storage
//!
//! Where signed-in ArcGIS sessions live between calls, restarts and machines.
//!
//! A session is a [`SessionRecord`]: portal, kind, client id, username, access
//! token and refresh token with their expiry, the redirect URI the refresh
//! grant needs, federated-server tokens. Never a password or a client secret.
//! Records live in a [`SessionStore`], a key-value store whose saves are
//! **compare-and-swap**: a save names the version it read ([`SaveMode::Update`])
//! or that nothing may exist yet ([`SaveMode::Create`]), and fails with
//! [`StoreErrorKind::Conflict`] when another writer got there first. Stores
//! also offer a [`RefreshLock`], so that any number of processes sharing a
//! store refresh a session once, and [change events](SessionStore::subscribe).
//!
//! | store | for | shared by | refresh lock | events from other processes |
//! |---|---|---|---|---|
//! | [`MemoryStore`] | tests, single-process apps | tasks of one process | yes | n/a |
//! | [`FileStore`] | desktop and command-line apps | processes on one machine | yes (wall-clock leases) | yes (polling the file, 1 s by default, from the first `subscribe()`, with a [resync](ChangeKind::Resync) after its first look) |
//! | `RedisStore` (feature `redis`) | fleets of servers | everyone who reaches the server | yes (`SET NX PX`) | yes (pub/sub, from the first `subscribe()`, with a [resync](ChangeKind::Resync) after each reconnect) |
//!
//! Another backend is a trait implementation away: see [Writing a
//! backend](#writing-a-backend) below. Every backend here passes the public
//! conformance suite (feature `conformance`), and so can yours.
//!
//! ## Saving without losing updates
//!
//! ```
//! use arcgis_auth_core::Portal;
//! use arcgis_auth_storage::{
//!     FileStore, SaveMode, SessionKind, SessionRecord, SessionStore, StoreErrorKind,
//! };
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = FileStore::new(dir.path().join("sessions.json"))?;
//! let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
//! record.username = Some("jdoe".into());
//! store.save("jdoe", &record, SaveMode::Create).await?;
//!
//! // Read, change, save back, retrying when someone else saved in between.
//! loop {
//!     let current = store.load("jdoe").await?.expect("saved above");
//!     let mut record = current.record;
//!     record.client_id = Some("my-app".into());
//!     match store.save("jdoe", &record, SaveMode::Update(current.version)).await {
//!         Ok(_) => break,
//!         Err(e) if e.kind() == StoreErrorKind::Conflict => continue,
//!         Err(e) => return Err(e),
//!     }
//! }
//! # Ok(())
//! # }).unwrap();
//! ```
//!
//! ## Refreshing once across processes
//!
//! ```
//! use std::time::Duration;
//! use arcgis_auth_storage::{MemoryStore, SessionStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let lock = store.refresh_lock().expect("the memory store has one");
//! match lock.try_acquire("jdoe", Duration::from_secs(30)).await? {
//!     Some(lease) => {
//!         // We refresh: call the portal, save the new tokens, then let go.
//!         lock.release(&lease).await?;
//!     }
//!     None => {
//!         // Someone else is refreshing: wait for the change event (or a
//!         // moment), then load the session they saved.
//!     }
//! }
//! # Ok::<_, arcgis_auth_storage::StoreError>(())
//! # }).unwrap();
//! ```
//!
//! ## Cargo features
//!
//! - `redis`: `RedisStore`, on the `redis` crate with tokio; `redis://` URLs,
//!   and `rediss://` ones over TLS (rustls with aws-lc-rs, as reqwest uses;
//!   the server's certificate verified against the system's roots, plus a
//!   private CA's PEM bundle given with
//!   `RedisStoreBuilder::root_certificates`; never unverified).
//! - `conformance`: the `conformance` module, async checks any
//!   [`SessionStore`] must pass, for backend authors' tests.
//! - `test-util`: the `test_util` module, for tests: a loopback
//!   `redis-server` started (and killed) by the test, and a store wrapper
//!   that injects faults and counts calls. Std only: it adds no dependency.
//!
//! ## Running the Redis tests
//!
//! `cargo test -p arcgis-auth-storage --all-features` runs them against a
//! `redis-server` it starts on a free loopback port (Debian package
//! `redis-server`), or against the server named by
//! `ARCGIS_AUTH_TEST_REDIS_URL` (keys under a random prefix; nothing is
//! flushed). Without either they are skipped with a loud notice, except under
//! `CI=true`, where they fail. The TLS tests always start their own
//! TLS-only `redis-server`, with certificates made by the `openssl` command
//! line (Debian package `openssl`). The harness is public, for other crates'
//! tests: `test_util::RedisServer` (feature `test-util`).
//!
#![doc = include_str!("../docs/writing-a-backend.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod error;
mod feed;
mod file;
mod id;
mod lease;
mod memory;
mod record;
#[cfg(feature = "redis")]
mod redis;
mod store;
mod table;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::{DEFAULT_REDIS_PREFIX, RedisStore, RedisStoreBuilder};
pub use error::{StoreError, StoreErrorKind, StoreResult};
pub use feed::ChangeFeed;
pub use file::{FileStore, FileStoreBuilder};
pub use memory::MemoryStore;
pub use record::{
    FORMAT_VERSION, ServerTokenRecord, SessionKind, SessionRecord, WebTierCredentialId,
};
pub use store::{
    ChangeEvent, ChangeKind, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned,
    validate_key,
};
