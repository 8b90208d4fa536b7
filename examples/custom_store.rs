//! Plugging your own session store into the token manager.
//!
//! A `SessionStore` is a small trait: load, compare-and-swap save, delete,
//! list, change events, and optionally a cross-process refresh lock. This
//! example writes a store *wrapper* that audits every operation (key,
//! operation, versions; never the record, which holds tokens) and plugs it
//! into a `TokenManager` for an app sign-in. You see what the manager asks
//! of a store: one save when the app signs in, nothing while the token is
//! cached, a load when a second manager (a restart, another server) starts,
//! and lock + load + save + unlock for a renewal.
//!
//! For a complete new backend (sessions in SQLite, with compare-and-swap in
//! a transaction and a lock table) see `crates/storage/examples/sqlite_store.rs`.
//! Both pass the storage crate's public conformance suite; this one runs it in
//! its test: `cargo test -p arcgis-auth-examples --example custom_store`.
//!
//! Run it (against the testkit's fake portal, or a real one with
//! `--portal URL --client-id ID` and the secret in `$ARCGIS_CLIENT_SECRET`):
//!
//! ```text
//! cargo run --example custom_store
//! ```

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arcgis_auth_core::HttpClient;
use arcgis_auth_examples::target::Target;
use arcgis_auth_examples::{BoxError, exit_status, show};
use arcgis_auth_flows::TokenManager;
use arcgis_auth_flows::signin::AppSignIn;
use arcgis_auth_storage::{
    ChangeEvent, Lease, MemoryStore, RefreshLock, SaveMode, SessionRecord, SessionStore,
    StoreResult, Version, Versioned,
};
use async_trait::async_trait;
use tokio::sync::broadcast;

/// Any store, with every operation written to an audit log (here: stdout).
///
/// Clones share the inner store and the counter.
#[derive(Clone)]
pub struct AuditedStore<S> {
    inner: S,
    operations: Arc<AtomicUsize>,
    quiet: Arc<AtomicBool>,
}

impl<S: SessionStore> AuditedStore<S> {
    /// Audits `inner`.
    pub fn new(inner: S) -> Self {
        AuditedStore {
            inner,
            operations: Arc::new(AtomicUsize::new(0)),
            quiet: Arc::new(AtomicBool::new(false)),
        }
    }

    /// How many operations went through.
    pub fn operations(&self) -> usize {
        self.operations.load(Ordering::SeqCst)
    }

    /// Stops printing (the count goes on).
    pub fn quiet(&self) {
        self.quiet.store(true, Ordering::SeqCst);
    }

    /// One audit line. The record is never logged: it holds tokens.
    fn log(&self, line: fmt::Arguments<'_>) {
        self.operations.fetch_add(1, Ordering::SeqCst);
        if !self.quiet.load(Ordering::SeqCst) {
            println!("     [store] {line}");
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for AuditedStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditedStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn mode(mode: &SaveMode) -> String {
    match mode {
        SaveMode::Create => "create".to_owned(),
        SaveMode::Update(v) => format!("update from version {v}"),
        SaveMode::Overwrite => "overwrite".to_owned(),
    }
}

fn outcome<T: fmt::Display>(result: &StoreResult<T>) -> String {
    match result {
        Ok(v) => v.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for AuditedStore<S> {
    async fn load(&self, key: &str) -> StoreResult<Option<Versioned>> {
        let result = self.inner.load(key).await;
        let found = match &result {
            Ok(Some(v)) => format!("version {}", v.version),
            Ok(None) => "nothing".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        self.log(format_args!("load {key:?} -> {found}"));
        result
    }

    async fn save(
        &self,
        key: &str,
        record: &SessionRecord,
        save: SaveMode,
    ) -> StoreResult<Version> {
        let what = mode(&save);
        let result = self.inner.save(key, record, save).await;
        self.log(format_args!(
            "save {key:?} ({what}) -> version {}",
            outcome(&result)
        ));
        result
    }

    async fn delete(&self, key: &str, version: Option<&Version>) -> StoreResult<bool> {
        let result = self.inner.delete(key, version).await;
        self.log(format_args!(
            "delete {key:?} -> deleted: {}",
            outcome(&result)
        ));
        result
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let result = self.inner.list(prefix).await;
        let n = result.as_ref().map(Vec::len).unwrap_or_default();
        self.log(format_args!("list {prefix:?} -> {n} keys"));
        result
    }

    fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.inner.subscribe()
    }

    fn refresh_lock(&self) -> Option<&dyn RefreshLock> {
        // Offer a lock only when the inner store has one, and audit it too.
        self.inner.refresh_lock().map(|_| self as &dyn RefreshLock)
    }
}

#[async_trait]
impl<S: SessionStore> RefreshLock for AuditedStore<S> {
    async fn try_acquire(&self, key: &str, lease: Duration) -> StoreResult<Option<Lease>> {
        let lock = self.inner.refresh_lock().ok_or_else(|| {
            arcgis_auth_storage::StoreError::new(
                arcgis_auth_storage::StoreErrorKind::Unsupported,
                "the inner store has no refresh lock",
            )
        })?;
        let result = lock.try_acquire(key, lease).await;
        let got = match &result {
            Ok(Some(_)) => "taken".to_owned(),
            Ok(None) => "held by someone else".to_owned(),
            Err(e) => format!("error: {e}"),
        };
        self.log(format_args!("refresh lock {key:?} -> {got}"));
        result
    }

    async fn release(&self, lease: &Lease) -> StoreResult<bool> {
        let result = match self.inner.refresh_lock() {
            Some(lock) => lock.release(lease).await,
            None => Ok(false),
        };
        self.log(format_args!(
            "refresh lock {:?} released -> {}",
            lease.key,
            outcome(&result)
        ));
        result
    }
}

const USAGE: &str =
    "custom_store: an audited session store plugged into the token manager\n\nOptions:";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let (args, target) = Target::from_cli(USAGE, &["client-id"], &[]).await?;
    let (client_id, secret) = target.app_credentials(&args)?;
    let store = AuditedStore::new(MemoryStore::new());
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());
    let app = AppSignIn::new(target.portal(), client_id, secret, HttpClient::new()?);

    println!("\n1. The app signs in; the manager saves the new session:");
    let manager = app
        .sign_in()
        .await?
        .into_manager(shared.clone(), "app:example")
        .await?;
    let token = manager.token().await?;
    println!(
        "   token: {}",
        show::access(&token, arcgis_auth_core::Timestamp::now())
    );

    println!("\n2. Asking again: served from memory, the store is not touched:");
    let before = store.operations();
    manager.token().await?;
    println!("   ({} store operations)", store.operations() - before);
    if store.operations() != before {
        return Err("a cached token should not touch the store".into());
    }

    println!(
        "\n3. A second manager (a restart, or another server) finds the session in the store:"
    );
    let second = TokenManager::builder(app.clone(), shared.clone(), "app:example").build()?;
    let same = second.token().await?;
    if !same.same_token(&token) {
        return Err("the second manager should serve the stored token".into());
    }
    println!("   it serves the same token, without signing in again");

    println!(
        "\n4. ArcGIS rejects the token (a 498): the manager renews it under the refresh lock:"
    );
    second.report_invalid(&same);
    let renewed = second.token().await?;
    if renewed.same_token(&same) {
        return Err("the renewal should give a new token".into());
    }
    println!(
        "   new token: {}",
        show::access(&renewed, arcgis_auth_core::Timestamp::now())
    );

    println!("\n5. Sign-out deletes the session:");
    shared.delete("app:example", None).await?;
    println!(
        "\n{} store operations in all; no record was ever printed.",
        store.operations()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrapper keeps the store contract: the storage crate's conformance suite.
    #[tokio::test(flavor = "multi_thread")]
    async fn passes_the_conformance_suite() {
        let store = AuditedStore::new(MemoryStore::new());
        store.quiet();
        arcgis_auth_storage::conformance::run_all(|| store.clone()).await;
        assert!(store.operations() > 100);
    }
}
