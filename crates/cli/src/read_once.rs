//! Reading a profile's session once per command.
//!
//! A command reads the profile's session itself first (to check the portal,
//! to know whether an app's client secret is needed) and then opens a token
//! manager, which would read the same session from the store again on its
//! first call. [`ReadOnce`] hands the manager the reading the command made.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arcgis_auth_flows::async_trait;
use arcgis_auth_storage::{
    ChangeEvent, RefreshLock, SaveMode, SessionRecord, SessionStore, StoreResult, Version,
    Versioned,
};
use tokio::sync::broadcast;

/// A store that answers the first `load` of one key with a reading already
/// made (record and version), and passes everything else to the store
/// underneath.
///
/// This is the manager's first load moved a few moments earlier, nothing
/// more: the version is the one read, so a save made from it is still a
/// compare-and-swap that fails if another process wrote in between, and
/// every later load (after taking the refresh lock, while waiting for
/// another process's renewal) reads the store. A save or delete of the key
/// before that first load drops the reading, so it is never served stale.
pub(crate) struct ReadOnce {
    inner: Arc<dyn SessionStore>,
    key: String,
    reading: Mutex<Option<Versioned>>,
}

impl ReadOnce {
    /// `inner`, with `reading` as the answer to the first load of `key`.
    pub(crate) fn new(inner: Arc<dyn SessionStore>, key: String, reading: Versioned) -> Self {
        ReadOnce {
            inner,
            key,
            reading: Mutex::new(Some(reading)),
        }
    }

    /// The reading, if `key` is its key and it was not used (or dropped) yet.
    fn take(&self, key: &str) -> Option<Versioned> {
        if key != self.key {
            return None;
        }
        self.reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[async_trait]
impl SessionStore for ReadOnce {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        match self.take(key) {
            Some(reading) => Ok(Some(reading)),
            None => self.inner.load(key).await,
        }
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        mode: SaveMode,
    ) -> StoreResult<Version> {
        self.take(key);
        self.inner.save(key, record, mode).await
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        self.take(key);
        self.inner.delete(key, version).await
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        self.inner.list(prefix).await
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.subscribe()
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        self.inner.refresh_lock()
    }
}

impl fmt::Debug for ReadOnce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unused = self
            .reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        f.debug_struct("ReadOnce")
            .field("inner", &self.inner)
            .field("key", &self.key)
            .field("reading_unused", &unused)
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use arcgis_auth_core::{Portal, Timestamp, Token};
    use arcgis_auth_storage::test_util::{FaultyStore, Op};
    use arcgis_auth_storage::{MemoryStore, SessionKind};

    use super::*;

    /// An app session whose token is valid for an hour from the system clock.
    pub(crate) fn app_session(token: &str) -> SessionRecord {
        let mut record = SessionRecord::new(
            Portal::parse("https://gis.example.com/portal").unwrap(),
            SessionKind::App,
        );
        record.client_id = Some("app".to_owned());
        record.set_token(&Token::new(
            token.to_owned().into(),
            Timestamp::now() + Duration::from_secs(3600),
        ));
        record
    }

    fn token_of(v: &Option<Versioned>) -> Option<String> {
        use arcgis_auth_core::ExposeSecret;
        v.as_ref()
            .and_then(|v| v.record.access_token.as_ref())
            .map(|t| t.expose_secret().to_owned())
    }

    #[tokio::test]
    async fn the_first_load_of_the_key_is_the_reading_then_the_store_answers() {
        let counting = Arc::new(FaultyStore::new(MemoryStore::new()));
        let store: Arc<dyn SessionStore> = counting.clone();
        store
            .save("k", &app_session("one"), SaveMode::Create)
            .await
            .unwrap();
        let reading = store.load("k").await.unwrap().unwrap();
        let version = reading.version.clone();
        let read_once = ReadOnce::new(store.clone(), "k".to_owned(), reading);
        assert_eq!(counting.calls(Op::Load), 1);

        // Another key, and listing, go to the store.
        assert!(read_once.load("other").await.unwrap().is_none());
        assert_eq!(counting.calls(Op::Load), 2);
        // The key: the reading, without a read.
        let first = read_once.load("k").await.unwrap();
        assert_eq!(token_of(&first).as_deref(), Some("one"));
        assert_eq!(first.unwrap().version, version);
        assert_eq!(counting.calls(Op::Load), 2);
        // Then the store, which may have changed meanwhile.
        store
            .save("k", &app_session("two"), SaveMode::Update(version.clone()))
            .await
            .unwrap();
        let second = read_once.load("k").await.unwrap();
        assert_eq!(token_of(&second).as_deref(), Some("two"));
        assert_eq!(counting.calls(Op::Load), 3);
        // A save from the old reading is still a compare-and-swap.
        let stale = read_once
            .save("k", &app_session("three"), SaveMode::Update(version))
            .await;
        assert!(stale.is_err());
    }

    #[tokio::test]
    async fn a_write_before_the_first_load_drops_the_reading() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
        store
            .save("k", &app_session("one"), SaveMode::Create)
            .await
            .unwrap();
        let reading = store.load("k").await.unwrap().unwrap();
        let read_once = ReadOnce::new(store.clone(), "k".to_owned(), reading.clone());
        read_once
            .save("k", &app_session("two"), SaveMode::Update(reading.version))
            .await
            .unwrap();
        let loaded = read_once.load("k").await.unwrap();
        assert_eq!(token_of(&loaded).as_deref(), Some("two"));

        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
        store
            .save("k", &app_session("one"), SaveMode::Create)
            .await
            .unwrap();
        let reading = store.load("k").await.unwrap().unwrap();
        let read_once = ReadOnce::new(store.clone(), "k".to_owned(), reading);
        assert!(read_once.delete("k", None).await.unwrap());
        assert!(read_once.load("k").await.unwrap().is_none());
        assert!(!format!("{read_once:?}").contains("one"));
    }
}
