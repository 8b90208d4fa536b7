//! The manager driving core's real `refresh_token` / `exchange_refresh_token`
//! grants against a wiremock portal on loopback, counting real requests.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{
    ErrorKind, ExposeSecret, HttpClient, ManualClock, OAuthClient, Portal, RefreshToken, Timestamp,
    Token,
};
use arcgis_auth_flows::{
    FlowError, FlowErrorKind, Grant, RenewRequest, Renewal, TokenManager, TokenSource, async_trait,
};
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionRecord, SessionStore};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    DAY, HOUR, MINUTE, START, all_callers_get, exact_config, seed, stored, token_of, user_record,
};

const TOKEN_PATH: &str = "/portal/sharing/rest/oauth2/token";

/// A minimal user-session source over core's `OAuthClient`.
#[derive(Debug)]
struct OAuthRefresh {
    client: OAuthClient,
}

#[async_trait]
impl TokenSource for OAuthRefresh {
    fn renewal(&self, _: &SessionRecord) -> Renewal {
        Renewal::RefreshToken
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        let session = request.session();
        let secret = session.refresh_token.clone().ok_or_else(|| {
            FlowError::new(
                FlowErrorKind::SignInRequired,
                "no refresh token: sign in again",
            )
        })?;
        let rt = RefreshToken::new(
            secret,
            session
                .refresh_token_issued_at
                .unwrap_or(Timestamp::UNIX_EPOCH),
            session.refresh_token_expires_at,
        );
        Ok(match request.grant() {
            Grant::Exchange => {
                let redirect = session.redirect_uri.as_deref().unwrap_or_default();
                self.client.exchange_refresh_token(&rt, redirect).await?
            }
            _ => self.client.refresh(&rt).await?,
        })
    }
}

struct WirePortal {
    server: MockServer,
    clock: ManualClock,
    store: Arc<dyn SessionStore>,
}

impl WirePortal {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let clock = ManualClock::new(START);
        let store: Arc<dyn SessionStore> =
            Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        WirePortal {
            server,
            clock,
            store,
        }
    }

    fn manager(&self) -> TokenManager {
        let portal = Portal::parse(&format!("{}/portal/sharing/rest", self.server.uri())).unwrap();
        let http = HttpClient::from_builder(reqwest::Client::builder().no_proxy()).unwrap();
        let client =
            OAuthClient::new(portal, "client-id", http).with_clock(Arc::new(self.clock.clone()));
        TokenManager::builder(OAuthRefresh { client }, self.store.clone(), "user:jdoe")
            .clock(Arc::new(self.clock.clone()))
            .config(exact_config())
            .build()
            .unwrap()
    }

    async fn seed_expired(&self, rt_expires: Timestamp) {
        let mut record = user_record("WIRE-ACCESS-0", START - MINUTE, Some(rt_expires));
        record.kind = SessionKind::User;
        record.refresh_token = Some("WIRE-REFRESH-0".into());
        seed(&*self.store, &record).await;
    }

    async fn answer(&self, grant: &str, response: ResponseTemplate, times: Option<u64>) {
        let mock = Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .and(body_string_contains(format!("grant_type={grant}")))
            .respond_with(response);
        let mock = match times {
            Some(n) => mock.up_to_n_times(n),
            None => mock,
        };
        mock.mount(&self.server).await;
    }

    /// Drops the mock server outside tokio's cooperative budget. wiremock
    /// verifies its mocks on drop with a nested `block_on`; if the test task
    /// has used up its budget (awaiting thousands of callers does), tokio's
    /// locks inside that verification keep answering "yield" and the drop
    /// spins forever.
    async fn finish(self) {
        tokio::task::unconstrained(async move { drop(self) }).await;
    }

    async fn requests(&self) -> usize {
        self.server.received_requests().await.unwrap().len()
    }
}

fn ok(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_string(body)
        .set_delay(Duration::from_millis(200))
}

const REFRESHED: &str = r#"{"access_token":"WIRE-ACCESS-1","expires_in":1800}"#;

/// Real callers through real managers, counting real requests.
async fn callers_make_one_request(managers: usize, callers: usize) {
    let p = WirePortal::start().await;
    p.seed_expired(START + 10 * DAY).await;
    p.answer("refresh_token", ok(REFRESHED), None).await;
    let managers: Vec<_> = (0..managers).map(|_| p.manager()).collect();
    all_callers_get(&managers, callers, "WIRE-ACCESS-1").await;
    let requests = p.server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body = String::from_utf8(requests[0].body.clone()).unwrap();
    assert!(body.contains("refresh_token=WIRE-REFRESH-0"), "{body}");
    let saved = stored(&*p.store).await;
    assert_eq!(
        saved.access_token.as_ref().unwrap().expose_secret(),
        "WIRE-ACCESS-1"
    );
    assert_eq!(saved.expires_at, Some(START + 30 * MINUTE));
    p.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_callers_make_one_real_refresh_token_request() {
    callers_make_one_request(1, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_over_one_store_make_one_real_request() {
    callers_make_one_request(2, 1_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_page_is_retried_and_a_498_ends_the_session() {
    let p = WirePortal::start().await;
    p.seed_expired(START + 10 * DAY).await;
    // First an HTML outage page (HTTP 502), then success.
    let outage = ResponseTemplate::new(502)
        .insert_header("content-type", "text/html")
        .set_body_string("<html><body>Bad gateway</body></html>");
    p.answer("refresh_token", outage, Some(1)).await;
    p.answer("refresh_token", ok(REFRESHED), None).await;
    let manager = p.manager();
    assert_eq!(token_of(&manager).await, "WIRE-ACCESS-1");
    assert_eq!(p.requests().await, 2);

    // The refresh token dies: ArcGIS answers 498 inside an HTTP 200.
    p.server.reset().await;
    let dead = r#"{"error":{"code":498,"error":"invalid_request","error_description":"refresh_token expired","message":"refresh_token expired","details":[]}}"#;
    p.answer("refresh_token", ok(dead), None).await;
    p.clock.advance(31 * MINUTE);
    let err = manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::RefreshTokenExpired));
    assert!(manager.token().await.is_err());
    assert_eq!(
        p.requests().await,
        1,
        "a 498 from the token endpoint is never retried"
    );
    p.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_exchange_rotates_and_saves_the_refresh_token() {
    let p = WirePortal::start().await;
    p.seed_expired(START + 12 * HOUR).await;
    let exchanged = r#"{"access_token":"WIRE-ACCESS-1","expires_in":1800,"refresh_token":"WIRE-REFRESH-1","refresh_token_expires_in":1209600}"#;
    p.answer("exchange_refresh_token", ok(exchanged), None)
        .await;
    let refreshed = r#"{"access_token":"WIRE-ACCESS-2","expires_in":1800}"#;
    p.answer("refresh_token", ok(refreshed), None).await;
    let manager = p.manager();
    assert_eq!(token_of(&manager).await, "WIRE-ACCESS-1");
    let saved = stored(&*p.store).await;
    assert_eq!(
        saved.refresh_token.as_ref().unwrap().expose_secret(),
        "WIRE-REFRESH-1"
    );
    assert_eq!(saved.refresh_token_expires_at, Some(START + 14 * DAY));

    p.clock.advance(31 * MINUTE);
    assert_eq!(token_of(&manager).await, "WIRE-ACCESS-2");
    let requests = p.server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let second = String::from_utf8(requests[1].body.clone()).unwrap();
    assert!(second.contains("grant_type=refresh_token"), "{second}");
    assert!(
        second.contains("refresh_token=WIRE-REFRESH-1"),
        "the old refresh token is never used again: {second}"
    );
    p.finish().await;
}
