//! # arcgis-auth-storage
//!
//! Where signed-in ArcGIS sessions live between calls, restarts and machines.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod error;
mod file;
mod id;
mod lease;
mod memory;
mod record;
#[cfg(feature = "redis")]
mod redis_store;
mod store;
mod table;

pub use error::{StoreError, StoreErrorKind, StoreResult};
pub use file::FileStore;
pub use memory::MemoryStore;
pub use record::{FORMAT_VERSION, ServerTokenRecord, SessionKind, SessionRecord};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_store::{DEFAULT_PREFIX as DEFAULT_REDIS_PREFIX, RedisStore, RedisStoreBuilder};
pub use store::{
    ChangeEvent, ChangeKind, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned,
    validate_key,
};
