//! Fault injection at the token endpoint: the testkit portal answers the next
//! 1, 3 or 20 token requests with a 503 outage page, a dropped connection, an
//! answer slower than the client's timeout, an HTML maintenance page (HTTP
//! 200), an ArcGIS error inside HTTP 200, or garbage bytes; then it recovers.
//!
//! For every fault and count, with one caller and with 20 concurrent callers:
//! every caller gets either a fresh token or the fault's typed error; one
//! caller's call makes exactly `1 + max_retries` requests for a transient
//! fault and one for the others (garbage bytes are not retried), and ends
//! within its backoff ceilings and timeouts (plus slack for a loaded
//! machine); nothing is poisoned; the first call after the portal recovers
//! succeeds; and however many callers wait, the portal sees exactly the
//! injected failures plus one successful request (the single flight holds
//! under failure). Time is real here (real sockets and a real client timeout
//! cannot run on tokio's paused clock); the exact backoff pauses are pinned
//! under paused time in `manager/failures.rs`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use arcgis_auth_core::{
    Clock, ErrorKind, ExposeSecret, HttpClient, ManualClock, OAuthClient, Token,
};
use arcgis_auth_flows::test_util::AppCredentials;
use arcgis_auth_flows::{FlowErrorKind, ManagerConfig, TokenManager};
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
use arcgis_auth_testkit::wiremock::matchers::{method, path_regex};
use arcgis_auth_testkit::wiremock::{Mock, ResponseTemplate};
use arcgis_auth_testkit::{
    App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Failure, FakePortal,
};

/// The client's whole-request timeout; `Failure::Slow` answers after 4×.
const CLIENT_TIMEOUT: Duration = Duration::from_millis(250);
const CALLERS: usize = 20;

/// The faults, each with the error callers must see and whether the manager
/// retries it.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Unavailable503,
    ConnectionReset,
    SlowPastTimeout,
    HtmlOutagePage,
    ErrorIn200,
    GarbageBytes,
}

impl Fault {
    const ALL: [Fault; 6] = [
        Fault::Unavailable503,
        Fault::ConnectionReset,
        Fault::SlowPastTimeout,
        Fault::HtmlOutagePage,
        Fault::ErrorIn200,
        Fault::GarbageBytes,
    ];

    /// The error kind callers get while the fault lasts.
    fn kind(self) -> ErrorKind {
        match self {
            // An HTML page where JSON belongs is an outage: transient.
            Fault::Unavailable503 | Fault::ErrorIn200 | Fault::HtmlOutagePage => ErrorKind::Server,
            Fault::ConnectionReset | Fault::SlowPastTimeout => ErrorKind::Transport,
            Fault::GarbageBytes => ErrorKind::UnparseableResponse,
        }
    }

    async fn inject(self, portal: &FakePortal, n: usize) {
        let failure = match self {
            Fault::Unavailable503 => Failure::ServiceUnavailable503,
            Fault::ConnectionReset => Failure::ConnectionReset,
            Fault::SlowPastTimeout => Failure::Slow(CLIENT_TIMEOUT * 4),
            Fault::HtmlOutagePage => Failure::HtmlPage,
            Fault::ErrorIn200 => Failure::ErrorIn200,
            Fault::GarbageBytes => {
                // Not among the testkit's failures: a mock in front of the
                // portal's responder (priority 2), answering n times.
                Mock::given(method("POST"))
                    .and(path_regex("/oauth2/token$"))
                    .respond_with(
                        ResponseTemplate::new(200)
                            .insert_header("content-type", "application/json")
                            .set_body_bytes(b"\x00\xff{\"access_tok\x9f\xfe garbage ]]".to_vec()),
                    )
                    .with_priority(1)
                    .up_to_n_times(n as u64)
                    .mount(portal.mock_server())
                    .await;
                return;
            }
        };
        portal.fail_next_token_calls(n, failure);
    }
}

fn config() -> ManagerConfig {
    let mut config = ManagerConfig::default();
    config.jitter = 0.0;
    config.retry.max_retries = 3;
    config.retry.initial_backoff = Duration::from_millis(10);
    config.retry.max_backoff = Duration::from_millis(40);
    config
}

struct Setup {
    portal: FakePortal,
    manager: TokenManager,
}

/// A portal sharing the manager's clock, and a manager holding an app
/// session whose token has just expired.
async fn setup() -> Setup {
    let clock = ManualClock::new(arcgis_auth_core::Timestamp::from_unix_millis(
        1_700_000_000_000,
    ));
    let portal = FakePortal::builder()
        .app(App::confidential(
            CONFIDENTIAL_CLIENT_ID,
            CONFIDENTIAL_CLIENT_SECRET,
        ))
        .clock(clock.clone())
        .start()
        .await;
    let http = HttpClient::from_builder(
        reqwest::Client::builder()
            .no_proxy()
            .timeout(CLIENT_TIMEOUT),
    )
    .unwrap();
    let client = OAuthClient::new(portal.portal(), CONFIDENTIAL_CLIENT_ID, http)
        .with_client_secret(CONFIDENTIAL_CLIENT_SECRET.into())
        .with_clock(Arc::new(clock.clone()));
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
    let manager = TokenManager::builder(AppCredentials::new(client), store, "app:faults")
        .clock(Arc::new(clock.clone()))
        .config(config())
        .build()
        .unwrap();
    let mut record = SessionRecord::new(portal.portal(), SessionKind::App);
    record.client_id = Some(CONFIDENTIAL_CLIENT_ID.into());
    record.set_token(&Token::new(
        "EXPIRED-APP-TOKEN".into(),
        clock.now() - Duration::from_secs(1),
    ));
    manager.set_session(record).await.unwrap();
    Setup { portal, manager }
}

/// Token requests the portal has received (failed ones included).
async fn token_requests(portal: &FakePortal) -> usize {
    portal
        .received_requests()
        .await
        .iter()
        .filter(|r| r.url.path().ends_with("/oauth2/token"))
        .count()
}

/// Runs `fault` for `n` consecutive token requests with `callers` concurrent
/// callers per call, and checks everything the module docs promise.
///
/// With one caller the accounting is exact: each failed call makes
/// `1 + max_retries` requests for a transient fault and one otherwise, and the
/// call after the last failure succeeds. With many callers, those that arrive
/// after a failed renewal finished start the next one (nothing is poisoned),
/// so only the totals are exact.
async fn survive(fault: Fault, n: usize, callers: usize) {
    let Setup { portal, manager } = setup().await;
    fault.inject(&portal, n).await;
    let retry = &manager.config().retry;
    let attempts_per_call = 1 + retry.max_retries as usize;
    let transient = fault.kind().is_transient();
    // The longest one renewal may take: every attempt timing out, every
    // backoff at its ceiling (plus slack for a loaded machine).
    let ceilings: Duration = (1..=retry.max_retries).map(|r| retry.ceiling(r)).sum();
    let bound = ceilings + CLIENT_TIMEOUT * attempts_per_call as u32 + Duration::from_secs(5);

    let mut failed_calls = 0;
    loop {
        let before = token_requests(&portal).await;
        let started = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let m = manager.clone();
                tokio::spawn(async move { m.token().await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        let took = started.elapsed();
        let made = token_requests(&portal).await - before;
        // (With many callers, a round after one where latecomers already
        // renewed is served from the cache: no request at all.)
        assert!(
            made >= 1 || callers > 1,
            "{fault:?}×{n}: an expired session must be renewed"
        );

        // Every caller gets a fresh token or the typed error.
        for result in &results {
            match result {
                Ok(token) => assert_ne!(token.secret().expose_secret(), "EXPIRED-APP-TOKEN"),
                Err(err) => {
                    assert_eq!(
                        err.kind(),
                        FlowErrorKind::ArcGis(fault.kind()),
                        "{fault:?}×{n}: {err}"
                    );
                    assert_eq!(err.is_transient(), transient);
                    assert!(!err.to_string().contains(CONFIDENTIAL_CLIENT_SECRET));
                }
            }
        }
        let failed = results.iter().any(Result::is_err);
        if callers == 1 {
            assert!(
                took <= bound,
                "{fault:?}×{n}: a call took {took:?} (bound {bound:?})"
            );
            if failed {
                let expected = if transient { attempts_per_call } else { 1 };
                assert_eq!(made, expected, "{fault:?}×{n}: requests in one failed call");
            } else {
                assert!(made <= attempts_per_call, "{fault:?}×{n}: {made} requests");
            }
        }
        if !failed {
            break;
        }
        failed_calls += 1;
        assert!(failed_calls <= n, "{fault:?}×{n}: never recovered");
    }
    if callers == 1 {
        let expected_failed_calls = if transient { n / attempts_per_call } else { n };
        assert_eq!(failed_calls, expected_failed_calls, "{fault:?}×{n}");
    }
    // Every injected failure was met once, then exactly one request succeeded,
    // however many callers were waiting.
    assert_eq!(
        token_requests(&portal).await,
        n + 1,
        "{fault:?}×{n}×{callers}"
    );

    // Recovered for good: the next calls are served from the cache.
    let cached = manager.token().await.unwrap();
    assert_eq!(
        cached.secret().expose_secret(),
        manager.token().await.unwrap().secret().expose_secret()
    );
    assert_eq!(token_requests(&portal).await, n + 1);
}

async fn survive_all(n: usize) {
    for fault in Fault::ALL {
        survive(fault, n, 1).await;
        survive(fault, n, CALLERS).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_token_request_of_every_kind() {
    survive_all(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_failed_token_requests_of_every_kind() {
    survive_all(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_failed_token_requests_of_every_kind() {
    survive_all(20).await;
}
