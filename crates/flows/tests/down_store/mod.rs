//! A store that is down, shared by the test binaries that need one
//! (`signin`, `requests`): every call fails as unavailable.

use std::sync::Arc;

use arcgis_auth_storage::{
    ChangeEvent, SaveMode, SessionRecord, SessionStore, StoreError, StoreResult, Version, Versioned,
};

/// A store that is down: every call fails as unavailable.
#[derive(Debug)]
pub(crate) struct DownStore(tokio::sync::broadcast::Sender<ChangeEvent>);

impl DownStore {
    /// A new down store, ready to be used as `Arc<dyn SessionStore>`.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(DownStore(tokio::sync::broadcast::channel(4).0))
    }
}

#[arcgis_auth_flows::async_trait]
impl SessionStore for DownStore {
    async fn load(&self, _key: &str) -> StoreResult<Option<Versioned>> {
        Err(StoreError::unavailable("the store is down"))
    }

    async fn save(&self, _: &str, _: &SessionRecord, _: SaveMode) -> StoreResult<Version> {
        Err(StoreError::unavailable("the store is down"))
    }

    async fn delete(&self, _key: &str, _version: Option<&Version>) -> StoreResult<bool> {
        Err(StoreError::unavailable("the store is down"))
    }

    async fn list(&self, _prefix: &str) -> StoreResult<Vec<String>> {
        Err(StoreError::unavailable("the store is down"))
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<ChangeEvent> {
        self.0.subscribe()
    }
}
