//! # arcgis-auth-storage
//!
//! Where signed-in ArcGIS sessions live between calls, restarts and machines.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod file;
mod id;
mod lease;
mod memory;
mod record;
mod store;
mod table;

pub use error::{StoreError, StoreErrorKind, StoreResult};
pub use file::FileStore;
pub use memory::MemoryStore;
pub use record::{FORMAT_VERSION, ServerTokenRecord, SessionKind, SessionRecord};
pub use store::{
    ChangeEvent, ChangeKind, Lease, RefreshLock, SaveMode, SessionStore, Version, Versioned,
    validate_key,
};
