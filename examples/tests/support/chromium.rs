//! Headless Chromium under chromedriver, started the way this machine needs
//! it, for the tests that drive a real browser.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`cargo xtask ci`
//! installs them when missing; `CHROME_BIN` and `CHROMEDRIVER` point
//! elsewhere). Without them a test prints a loud notice and skips, except
//! under `CI=true`, where it fails: CI must never pass without having run it.

use std::future::Future;
use std::sync::Arc;

use super::webdriver::{Driver, Error, Session, find_program};

/// Whether the tests run under CI (`CI=true` or `CI=1`).
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fails under CI; otherwise says loudly that `what` did not run, why, and
/// what to do (`fix`).
pub(crate) fn skip_or_fail(what: &str, why: &str, fix: &str) {
    if in_ci() {
        panic!("CI=true and {what} cannot run: {why}; {fix}");
    }
    eprintln!(
        "\n\
         ************************************************************************\n\
         SKIPPED: {what} did not run:\n  {why}\n\
         To run it: {fix}.\n\
         ************************************************************************\n"
    );
}

/// [`skip_or_fail`] for a missing or broken Chromium.
pub(crate) fn cannot_run(what: &str, why: &str) {
    skip_or_fail(
        what,
        why,
        "install Chromium and its driver (Debian: apt-get install chromium chromium-driver,\n\
         or run `cargo xtask ci`, which does), or set CHROME_BIN and CHROMEDRIVER",
    );
}

/// Chromium's flags on this machine (headless, no sandbox, nothing that
/// reaches the internet: no host name resolves, so only IP literals such
/// as the tests' `127.0.0.1` can be reached), with a fresh profile directory.
fn args(profile: &std::path::Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-proxy-server",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Starts chromedriver and a headless Chromium, runs `walk` with the
/// browser in its own task (so a failed step still closes the browser:
/// killing chromedriver alone would leave Chromium running), then quits.
/// A missing browser skips (with [`cannot_run`]) outside CI; `walk`'s
/// failure or panic fails the test.
pub(crate) async fn with_browser<F, Fut>(what: &str, walk: F)
where
    F: FnOnce(Arc<Session>) -> Fut,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let chromium = find_program(
        "CHROME_BIN",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "/usr/bin/chromium",
        ],
    );
    let chromedriver = find_program("CHROMEDRIVER", &["chromedriver", "/usr/bin/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        cannot_run(what, "chromium or chromedriver not found");
        return;
    };
    let driver = match Driver::start(&chromedriver).await {
        Ok(driver) => driver,
        Err(e) => {
            cannot_run(what, &format!("chromedriver did not start: {e}"));
            return;
        }
    };
    let profile = tempfile::tempdir().expect("a profile directory");
    let browser = match driver.session(&chromium, &args(profile.path())).await {
        Ok(session) => Arc::new(session),
        Err(e) => {
            cannot_run(what, &format!("Chromium did not start: {e}"));
            return;
        }
    };
    let outcome = tokio::spawn(walk(Arc::clone(&browser))).await;
    let quit = browser.quit().await;
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        Ok(Err(e)) => panic!("{e}"),
        Ok(Ok(())) => quit.expect("the browser quits"),
    }
}
