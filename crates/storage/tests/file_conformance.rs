//! The conformance suite against `FileStore`: handles from separate
//! `FileStore::new` calls on one file stand in for separate processes.

use arcgis_auth_storage::{FileStore, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profiles").join("sessions.json");
    conformance::run_all(move || FileStore::new(&path).unwrap()).await;
}
