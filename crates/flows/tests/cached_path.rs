//! The cached path of `TokenManager::token` allocates nothing.
//!
//! (Its speed is a benchmark's business; this pins the allocation claim.)
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, Portal, Timestamp, Token};
use arcgis_auth_flows::{
    FlowError, FlowErrorKind, RenewRequest, Renewal, TokenManager, TokenSource, async_trait,
};
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};

#[derive(Debug)]
struct Unused;

#[async_trait]
impl TokenSource for Unused {
    fn renewal(&self, _: &SessionRecord) -> Renewal {
        Renewal::SignInAgain
    }
    async fn renew(&self, _: &RenewRequest<'_>) -> Result<Token, FlowError> {
        panic!("the cached path must not renew");
    }
}

fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut f = pin!(f);
    f.as_mut().poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn the_cached_path_does_not_allocate() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder(Unused, store, "app").build().unwrap();
    let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
    record.set_token(&Token::new(
        "cached-token".into(),
        Timestamp::now() + Duration::from_secs(3600),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(manager.set_session(record)).unwrap();

    // Warm up (arc-swap registers this thread on its first load).
    for _ in 0..10 {
        assert!(poll_once(manager.token()).is_ready());
    }

    let info = allocation_counter::measure(|| {
        for _ in 0..10_000 {
            let Poll::Ready(Ok(token)) = poll_once(manager.token()) else {
                panic!("the cached token must be served at once");
            };
            std::hint::black_box(&token);
        }
    });
    assert_eq!(info.count_total, 0, "the cached path allocated: {info:?}");

    // The counter does count.
    let info = allocation_counter::measure(|| {
        std::hint::black_box(vec![1u8; 16]);
    });
    assert!(info.count_total > 0);

    let Poll::Ready(Ok(token)) = poll_once(manager.token()) else {
        panic!("served");
    };
    assert_eq!(token.secret().expose_secret(), "cached-token");
}

#[test]
fn renewing_outside_a_tokio_runtime_is_a_typed_error() {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder(Unused, store, "app").build().unwrap();
    let Poll::Ready(Err(err)) = poll_once(manager.token()) else {
        panic!("expected an immediate error");
    };
    assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}
