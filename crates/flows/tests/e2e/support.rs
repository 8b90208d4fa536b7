//! The shared fixture: a testkit portal and the flows under test on ONE
//! `ManualClock`, so moving it moves both; helpers that play the user, call
//! the portal directly, and check that no secret leaks into any Debug text.

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{
    AuthorizeOptions, Clock, Expiration, ExposeSecret, HttpClient, ManualClock, SecretString,
    Timestamp, TokenBinding,
};
use arcgis_auth_flows::federation::Federation;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::profile::{RenewalSecrets, StoredSession};
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::{
    AppSignIn, Loopback, PasswordSignIn, PendingSignIn, SignedIn, UserSignIn,
};
use arcgis_auth_flows::{FlowError, ManagerConfig, RetryPolicy, TokenManager};
use arcgis_auth_storage::{MemoryStore, SessionRecord, SessionStore};
use arcgis_auth_testkit::{
    App, BrowserVisit, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal,
    FakePortalBuilder, LOOPBACK_REDIRECT_URI, OOB_REDIRECT_URI, PASSWORD, PUBLIC_CLIENT_ID,
    SERVER_NAME, Server, USERNAME,
};
use reqwest_middleware::ClientWithMiddleware;
use serde_json::Value;

pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(24 * 3600);

/// The session key every test uses.
pub const KEY: &str = "e2e:session";

/// A redirect URI with its own query, for the "own web server" flow.
pub const WEB_REDIRECT_URI: &str = "https://app.example.com/auth/callback?tenant=7";

/// A federated server of another portal, and a standalone one.
pub const FOREIGN: &str = "foreign";
pub const STANDALONE: &str = "standalone";

/// The portal, the clock it shares with the code under test, and a store.
pub struct Kit {
    pub portal: FakePortal,
    pub clock: ManualClock,
    pub http: HttpClient,
    pub store: Arc<dyn SessionStore>,
}

/// The default set of `FakePortal::start` plus a web app, a foreign and a
/// standalone server, all on `clock`.
pub fn builder(clock: &ManualClock) -> FakePortalBuilder {
    FakePortal::builder()
        .clock(clock.clone())
        .app(
            App::public(PUBLIC_CLIENT_ID)
                .redirect_uri(LOOPBACK_REDIRECT_URI)
                .redirect_uri(OOB_REDIRECT_URI),
        )
        .app(
            App::confidential(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET)
                .redirect_uri(LOOPBACK_REDIRECT_URI)
                .redirect_uri(WEB_REDIRECT_URI),
        )
        .user(USERNAME, PASSWORD)
        .signed_in_user(USERNAME)
        .server(Server::federated(SERVER_NAME))
        .server(Server::federated_with(
            FOREIGN,
            "https://other.example.com/portal",
        ))
        .server(Server::standalone(STANDALONE))
}

impl Kit {
    pub async fn start() -> Kit {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
        let portal = builder(&clock).start().await;
        Kit::with(portal, clock)
    }

    pub fn with(portal: FakePortal, clock: ManualClock) -> Kit {
        Kit {
            portal,
            clock,
            http: HttpClient::new().expect("HTTP client"),
            store: Arc::new(MemoryStore::default()),
        }
    }

    pub fn arc_clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }

    /// The public app's user sign-in, on the shared clock.
    pub fn user_sign_in(&self) -> UserSignIn {
        UserSignIn::new(self.portal.portal(), PUBLIC_CLIENT_ID, self.http.clone())
            .with_clock(self.arc_clock())
    }

    /// Signs the user in with PKCE through a loopback listener while the
    /// test plays the browser; the refresh token lives two days (so its last
    /// day comes soon). Returns the sign-in, the browser's visit and the
    /// pending sign-in.
    pub async fn sign_in_with_listener(
        &self,
    ) -> (SignedIn<UserSignIn>, BrowserVisit, PendingSignIn) {
        let options = AuthorizeOptions::new().expiration(Expiration::minutes(2 * 24 * 60));
        let (signed_in, visit, pending) = self.loopback_sign_in(&options).await;
        (signed_in.unwrap(), visit, pending)
    }

    /// [`UserSignIn::sign_in_with_loopback`] of the public app while the test
    /// plays the browser (the portal approves, or denies when told to).
    /// Returns the outcome, the browser's visit and the pending sign-in.
    pub async fn loopback_sign_in(
        &self,
        options: &AuthorizeOptions,
    ) -> (
        Result<SignedIn<UserSignIn>, FlowError>,
        BrowserVisit,
        PendingSignIn,
    ) {
        let sign_in = self.user_sign_in();
        let loopback = Loopback::new().timeout(Duration::from_secs(10));
        let (opened, url) = tokio::sync::oneshot::channel::<PendingSignIn>();
        let (signed_in, (visit, pending)) = tokio::join!(
            sign_in.sign_in_with_loopback(&loopback, options, move |pending| {
                let _ = opened.send(pending.clone());
            }),
            async {
                let pending = url.await.expect("the sign-in page is opened");
                let visit = self.portal.play_browser(pending.url().as_str()).await;
                (visit.unwrap(), pending)
            },
        );
        (signed_in, visit, pending)
    }

    /// Signs the user in with PKCE the short way (the test plays the
    /// browser, the redirect is read rather than delivered to a listener).
    pub async fn signed_in_user(&self) -> SignedIn<UserSignIn> {
        let sign_in = self.user_sign_in();
        let pending = sign_in
            .begin(LOOPBACK_REDIRECT_URI, &AuthorizeOptions::new())
            .unwrap();
        let callback = self
            .portal
            .authorize_redirect(pending.url().as_str())
            .await
            .unwrap();
        sign_in.complete(&pending, callback.as_str()).await.unwrap()
    }

    /// The confidential app's credentials, on the shared clock.
    /// `generateToken` sign-in at the portal, bound to the request's IP, on the kit's clock.
    pub fn password_sign_in(&self) -> PasswordSignIn {
        PasswordSignIn::new(
            self.portal.portal(),
            self.http.clone(),
            TokenBinding::RequestIp,
        )
        .with_clock(self.arc_clock())
    }

    pub fn app_sign_in(&self) -> AppSignIn {
        AppSignIn::new(
            self.portal.portal(),
            CONFIDENTIAL_CLIENT_ID,
            CONFIDENTIAL_CLIENT_SECRET.to_owned().into(),
            self.http.clone(),
        )
        .with_clock(self.arc_clock())
    }

    /// An app manager over the kit's store, signed in with `app`.
    pub async fn app_manager(&self, app: AppSignIn) -> TokenManager {
        app.sign_in()
            .await
            .unwrap()
            .into_manager_with(self.store.clone(), KEY, config())
            .await
            .unwrap()
    }

    /// A manager that knows nothing but `store` (a restart, another
    /// process): it renews what the stored record allows, without secrets.
    pub fn manager_from_store(&self, store: Arc<dyn SessionStore>) -> TokenManager {
        TokenManager::builder(
            StoredSession::new(self.http.clone(), RenewalSecrets::new())
                .with_clock(self.arc_clock()),
            store,
            KEY,
        )
        .clock(self.arc_clock())
        .config(config())
        .build()
        .unwrap()
    }

    /// A client with the middleware for `manager`'s session, and its federation.
    pub fn client(&self, manager: &TokenManager) -> (ClientWithMiddleware, Federation) {
        let federation = Federation::new(
            manager.clone(),
            TokenRouting::new(self.portal.portal()),
            self.http.clone(),
        );
        let client = ArcGisAuth::from_federation(federation.clone())
            .into_client()
            .unwrap();
        (client, federation)
    }

    /// A secured service on the federated server [`SERVER_NAME`].
    pub fn service_url(&self) -> String {
        self.portal
            .server(SERVER_NAME)
            .unwrap()
            .service_url("Hosted/Parcels/FeatureServer")
    }

    /// A user manager over the kit's store.
    pub async fn user_manager(&self) -> TokenManager {
        self.signed_in_user()
            .await
            .into_manager_with(self.store.clone(), KEY, config())
            .await
            .unwrap()
    }

    /// The session as stored.
    pub async fn stored(&self) -> Option<SessionRecord> {
        self.store.load(KEY).await.unwrap().map(|v| v.record)
    }

    /// A `refresh_token` grant sent straight to the portal, bypassing flows:
    /// the portal's own answer (a token, or an error in an HTTP 200 body).
    pub async fn direct_refresh(&self, refresh_token: &SecretString) -> Value {
        let sent = reqwest::Client::new()
            .post(self.portal.url("oauth2/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", PUBLIC_CLIENT_ID),
                ("refresh_token", refresh_token.expose_secret()),
                ("f", "json"),
            ])
            .send()
            .await;
        json_of(sent).await
    }

    /// Every secret the portal handed out or knows: no Debug text may show one.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self
            .portal
            .issued_tokens()
            .into_iter()
            .map(|t| t.token.expose_secret().to_owned())
            .collect();
        secrets.push(PASSWORD.to_owned());
        secrets.push(CONFIDENTIAL_CLIENT_SECRET.to_owned());
        secrets
    }

    /// Fails when `text` (Debug or Display output) contains any secret.
    #[track_caller]
    pub fn assert_no_secret(&self, text: &str) {
        for secret in self.secrets() {
            assert!(
                !text.contains(&secret),
                "a secret leaked into this text: {text}"
            );
        }
    }
}

/// The manager's config for the suite: exact timing (no jitter) and
/// millisecond backoff, so retries cost no real time worth mentioning.
pub fn config() -> ManagerConfig {
    let mut config = ManagerConfig::default();
    config.jitter = 0.0;
    config.jitter_seed = Some(7);
    let mut retry = RetryPolicy::default();
    retry.initial_backoff = Duration::from_millis(2);
    retry.max_backoff = Duration::from_millis(10);
    config.retry = retry;
    config.lock_poll = Duration::from_millis(5);
    config
}

/// The error object of an ArcGIS answer (`{"error":{...}}`).
pub fn arcgis_error(answer: &Value) -> (i64, String) {
    let error = &answer["error"];
    let code = error["code"].as_i64().unwrap_or_default();
    let text = error["error_description"]
        .as_str()
        .or(error["message"].as_str())
        .unwrap_or_default()
        .to_owned();
    (code, text)
}

/// GETs `url` with `f=json` and reads the JSON answer.
pub async fn get_json(client: &ClientWithMiddleware, url: &str) -> Value {
    json_of(client.get(format!("{url}?f=json")).send().await).await
}

/// GETs `url` with `f=json` expecting the middleware to fail: its error,
/// and the typed [`FlowError`](arcgis_auth_flows::FlowError) inside.
pub async fn get_error(
    client: &ClientWithMiddleware,
    url: &str,
) -> (reqwest_middleware::Error, arcgis_auth_flows::FlowError) {
    let err = client
        .get(format!("{url}?f=json"))
        .send()
        .await
        .unwrap_err();
    let flow = arcgis_auth_flows::middleware::flow_error(&err)
        .expect("an error of the middleware")
        .clone();
    (err, flow)
}

/// The JSON answer of a request through any client (with or without the middleware).
pub async fn json_of<E: std::fmt::Debug>(sent: Result<reqwest::Response, E>) -> Value {
    sent.unwrap().json().await.unwrap()
}

/// Whether a request carried any credential (header, or a `token` field).
pub fn carries_token(request: &arcgis_auth_testkit::wiremock::Request) -> bool {
    arcgis_auth_flows::test_util::carries_token(&request.headers, &request.url, &request.body)
}

/// Drops the kit outside tokio's cooperative budget: wiremock checks its
/// expectations on drop with a nested `block_on`, which can spin when the
/// test task has used up its budget (after many awaits).
pub async fn finish(kit: Kit) {
    tokio::task::unconstrained(async move { drop(kit) }).await;
}
