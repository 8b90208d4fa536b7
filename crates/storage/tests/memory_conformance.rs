//! The conformance suite against `MemoryStore`.

use arcgis_auth_storage::{MemoryStore, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_passes_the_conformance_suite() {
    let store = MemoryStore::new();
    conformance::run_all(move || store.clone()).await;
}
