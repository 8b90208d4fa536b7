//! The tour as a test, so `cargo test` runs it too (`cargo xtask ci` also
//! runs it as `cargo run --example tour`, the way the README says).

#[allow(dead_code)] // its `main`: the test calls `tour()` directly
#[path = "../tour.rs"]
mod tour;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tour_keeps_every_promise() {
    match tour::tour().await {
        Ok(checks) => assert!(checks >= 30, "only {checks} checks ran"),
        Err(e) => panic!("the tour failed: {e}"),
    }
}
