//! `refresh_token` by default, `exchange_refresh_token` near the end, rotation saved before use.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, Timestamp};
use arcgis_auth_flows::{Grant, Renewal};
use arcgis_auth_storage::SessionStore;
use arcgis_auth_storage::test_util::{FaultyStore, Op};
use tokio::sync::Semaphore;

use crate::support::*;

async fn grant_for(rt_issued: Timestamp, rt_expires: Option<Timestamp>) -> Grant {
    let mut record = user_record("AT-SECRET-0", START - MINUTE, rt_expires);
    record.refresh_token_issued_at = Some(rt_issued);
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(record)).await;
    fx.manager().token().await.unwrap();
    fx.source.seen()[0].grant
}

#[tokio::test(start_paused = true)]
async fn the_grant_depends_on_how_close_the_refresh_token_is_to_its_end() {
    // Plenty of time left: plain refresh.
    assert_eq!(
        grant_for(START - DAY, Some(START + 10 * DAY)).await,
        Grant::Refresh
    );
    // Within the 24 h window: exchange.
    assert_eq!(
        grant_for(START - 13 * DAY, Some(START + 23 * HOUR)).await,
        Grant::Exchange
    );
    assert_eq!(
        grant_for(START - 13 * DAY, Some(START + 25 * HOUR)).await,
        Grant::Refresh
    );
    // No expiry from the portal: by age (7 days by default).
    assert_eq!(grant_for(START - DAY, None).await, Grant::Refresh);
    assert_eq!(grant_for(START - 8 * DAY, None).await, Grant::Exchange);
}

/// A session whose refresh token expires within the exchange window.
fn near_end() -> arcgis_auth_storage::SessionRecord {
    user_record("AT-SECRET-0", START - MINUTE, Some(START + 12 * HOUR))
}

#[tokio::test(start_paused = true)]
async fn the_exchange_rotates_the_refresh_token_and_the_old_one_is_never_used_again() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(near_end())).await;
    let m = fx.manager();
    assert_eq!(token_of(&m).await, "AT-SECRET-1");
    let calls = fx.source.seen();
    assert_eq!(calls[0].grant, Grant::Exchange);
    assert_eq!(calls[0].refresh_token.as_deref(), Some("RT-SECRET-0"));
    let saved = stored(&*fx.store).await;
    assert_eq!(
        secret(&saved),
        ("AT-SECRET-1".into(), Some("RT-SECRET-1".into()))
    );
    assert_eq!(saved.refresh_token_expires_at, Some(START + 14 * DAY));

    // Later renewals (in this manager and in a rebuilt one) use the new refresh
    // token with a plain refresh, and keep it.
    for i in 2..5 {
        fx.clock.advance(HOUR);
        assert_eq!(token_of(&m).await, format!("AT-SECRET-{i}"));
    }
    fx.clock.advance(HOUR);
    token_of(&fx.manager()).await;
    let calls = fx.source.seen();
    assert_eq!(calls.len(), 5);
    for call in &calls[1..] {
        assert_eq!(call.grant, Grant::Refresh);
        assert_eq!(call.refresh_token.as_deref(), Some("RT-SECRET-1"));
    }
    assert_eq!(
        secret(&stored(&*fx.store).await).1.as_deref(),
        Some("RT-SECRET-1")
    );
}

#[tokio::test(start_paused = true)]
async fn the_rotated_refresh_token_is_saved_before_the_new_token_is_handed_out() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(near_end())).await;
    let gate = Arc::new(Semaphore::new(0));
    let flaky = FaultyStore::new(fx.memory.clone()).with_save_gate(gate.clone());
    let m = manager(
        fx.source.clone(),
        Arc::new(flaky.clone()),
        &fx.clock,
        exact_config(),
    );

    let caller = tokio::spawn({
        let m = m.clone();
        async move { m.token().await }
    });
    // The exchange has been made, the save is held: nobody gets the token yet.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fx.source.calls(), 1);
    assert!(!caller.is_finished());
    assert!(m.cached().is_none());
    assert_eq!(flaky.calls(Op::Save), 0);

    gate.add_permits(100);
    let token = caller.await.unwrap().unwrap();
    assert_eq!(token.secret().expose_secret(), "AT-SECRET-1");
    assert_eq!(flaky.calls(Op::Save), 1);
    assert_eq!(
        secret(&stored(&*fx.store).await).1.as_deref(),
        Some("RT-SECRET-1")
    );
}

/// Plays another process that rotates the refresh token while our request
/// is in flight: the first call stores the rotated session and fails like a
/// dead refresh token; later calls succeed.
#[derive(Debug)]
struct RotatedMeanwhile {
    store: Arc<dyn SessionStore>,
    calls: std::sync::Mutex<Vec<Option<String>>>,
}

#[arcgis_auth_flows::async_trait]
impl arcgis_auth_flows::TokenSource for RotatedMeanwhile {
    fn renewal(&self, _: &arcgis_auth_storage::SessionRecord) -> Renewal {
        Renewal::RefreshToken
    }

    async fn renew(
        &self,
        request: &arcgis_auth_flows::RenewRequest<'_>,
    ) -> Result<arcgis_auth_core::Token, arcgis_auth_flows::FlowError> {
        let used = request
            .session()
            .refresh_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned());
        let first = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(used);
            calls.len() == 1
        };
        if first {
            let mut other = user_record(
                "AT-SECRET-OTHER",
                request.now() - MINUTE,
                Some(START + 14 * DAY),
            );
            other.refresh_token = Some("RT-OTHER".into());
            seed(&*self.store, &other).await;
            return Err(arcgis_auth_core::Error::new(
                arcgis_auth_core::ErrorKind::InvalidGrant,
                "invalid refresh_token",
            )
            .into());
        }
        Ok(arcgis_auth_core::Token::new(
            "AT-SECRET-NEXT".into(),
            request.now() + 30 * MINUTE,
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_rotated_by_another_process_is_picked_up_instead_of_ending_the_session() {
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(expired_user())).await;
    let (clock, store) = (fx.clock.clone(), fx.store.clone());
    let source = Arc::new(RotatedMeanwhile {
        store: store.clone(),
        calls: std::sync::Mutex::new(Vec::new()),
    });
    let m = arcgis_auth_flows::TokenManager::builder(source.clone(), store.clone(), "user:jdoe")
        .clock(Arc::new(clock.clone()))
        .config(exact_config())
        .build()
        .unwrap();

    let token = m.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "AT-SECRET-NEXT");
    let calls = source.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [Some("RT-SECRET-0".to_owned()), Some("RT-OTHER".to_owned())]
    );
    let saved = stored(&*store).await;
    assert_eq!(
        secret(&saved),
        ("AT-SECRET-NEXT".into(), Some("RT-OTHER".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_redirect_uri_the_refresh_token_is_refreshed_not_exchanged() {
    let mut record = near_end();
    record.redirect_uri = None;
    let fx = Fixture::new(FakeSource::new(Renewal::RefreshToken), Some(record)).await;
    fx.manager().token().await.unwrap();
    assert_eq!(fx.source.seen()[0].grant, Grant::Refresh);
}
