//! No secret ever reaches a tracing field, whatever happens.
//!
//! A test binary of its own: tracing caches per call site whether anyone
//! listens, so tests running on other threads without a subscriber would
//! make this one miss events.
#![allow(clippy::unwrap_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "manager/support.rs"]
mod support;

#[path = "capture/mod.rs"]
mod capture;
use capture::Capture;

use std::sync::Arc;

use arcgis_auth_core::{ErrorKind, ManualClock};
use arcgis_auth_flows::Renewal;
use arcgis_auth_storage::test_util::{Fault, FaultyStore};
use arcgis_auth_storage::{MemoryStore, SessionStore};

use crate::support::*;

#[tokio::test(start_paused = true)]
async fn no_token_appears_in_any_span_or_event() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::new(START);
    let flaky = FaultyStore::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let store: Arc<dyn SessionStore> = Arc::new(flaky.clone());
    let source = Arc::new(FakeSource::new(Renewal::RefreshToken).script(&[
        Step::Fail(ErrorKind::Server),
        Step::Ok,
        Step::Fail(ErrorKind::InvalidClient),
        Step::Ok,
        Step::Fail(ErrorKind::RefreshTokenExpired),
    ]));
    let m = manager(source.clone(), store.clone(), &clock, exact_config());

    // Sign-in, exchange (with a transient retry), a failed early refresh,
    // a store outage, an invalidation, and the end of the session.
    m.set_session(user_record(
        "AT-SECRET-0",
        START + 30 * MINUTE,
        Some(START + 12 * HOUR),
    ))
    .await
    .unwrap();
    // Renewals in the refresh window run in the background: each step
    // waits for its renewal to land before the next one.
    clock.advance(26 * MINUTE);
    let t1 = m.token().await.unwrap();
    m.wait_for_renewal().await;
    clock.advance(26 * MINUTE);
    m.token().await.unwrap();
    m.wait_for_renewal().await;
    flaky.set(Fault::SavesFail, true);
    m.report_invalid(&m.token().await.unwrap());
    m.token().await.unwrap();
    m.wait_for_renewal().await;
    let _ = m.persist().await;
    flaky.set(Fault::SavesFail, false);
    m.report_invalid(&m.token().await.unwrap());
    let _ = m.token().await;
    m.wait_for_renewal().await;
    let _ = format!("{t1:?} {m:?}");
    assert_eq!(source.calls(), 5);

    let out = capture.text();
    // The capture works and covers what happened.
    for expected in [
        "arcgis_auth.renew",
        "token renewed",
        "retrying",
        "exchange",
        "sign in again",
        "could not save",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    for secret in ["AT-SECRET", "RT-SECRET"] {
        assert!(
            !out.contains(secret),
            "{secret} leaked into tracing output:\n{out}"
        );
    }
}
