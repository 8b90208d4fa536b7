//! A small web site that signs its visitors in with ArcGIS itself (the flows library, not the gateway), the way a real site does: the server-side authorization-code flow with PKCE.
//!
//! For a site that only needs its browser's ArcGIS requests made with the
//! user's token, `arcgis-auth-gateway`'s `[user_sign_in]` does all of this
//! without code; this module shows what it does underneath.
//!
//! It mirrors the ArcGIS "authorization code flow" sample (a sign-in button,
//! a callback page, "Welcome, {user}.", a sign-out button), but keeps every
//! secret on the server:
//!
//! | route | what happens |
//! |---|---|
//! | `GET /` | signed in: "Welcome, {full name}." from `community/self`, and a sign-out button; otherwise a sign-in button |
//! | `POST /signin` | a new random session id in an `HttpOnly` cookie; the pending sign-in (PKCE verifier, `state`) saved in the [`SessionStore`] under `web:pending:{id}`; a redirect to the portal's `oauth2/authorize` |
//! | `GET /callback` | the pending sign-in is taken out of the store (once), checked (`state`, age) and completed: code + verifier for tokens; the session is saved under `web:user:{new id}` and the browser gets the new id (a fresh id after sign-in, so an id known before cannot be used after) |
//! | `POST /signout` | the refresh token is revoked at the portal, the session is deleted from the store, the cookie is cleared |
//!
//! Sign-ins started and never finished are swept out of the store after
//! [`PENDING_LIFETIME`]; a session that can no longer be renewed is deleted
//! the next time its browser shows up.
//!
//! The browser only ever holds a random id. Tokens live in the store, where
//! every server of a fleet finds them (use a `RedisStore` there); each request
//! builds a [`TokenManager`] over the stored session, which refreshes it
//! when due.

pub mod cookie;
mod pages;
mod visitor;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use arcgis_auth_core::{AuthorizeOptions, ErrorKind, HttpClient, Portal, SecretString};
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::signin::{PendingSignIn, UserSignIn};
use arcgis_auth_flows::{FlowErrorKind, TokenManager};
use arcgis_auth_storage::{SaveMode, SessionKind, SessionRecord, SessionStore, StoreErrorKind};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use url::Url;

use crate::BoxError;

pub use visitor::{Page, Step, Visitor, demo_visit};

/// How long a started sign-in may wait for its callback.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// How often abandoned sign-ins are swept out of the store (at most).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The record field holding a pending sign-in.
const PENDING_FIELD: &str = "pending_sign_in";

/// What the site needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The portal users sign in to.
    pub portal: Portal,
    /// The app's client id; `{site}/callback` must be one of its redirect URIs.
    pub client_id: String,
    /// The app's client secret, for a confidential app (sent with the code
    /// exchange and refreshes, never stored).
    pub client_secret: Option<SecretString>,
    /// Where pending sign-ins and sessions live.
    pub store: Arc<dyn SessionStore>,
    /// The HTTP client for the portal.
    pub http: HttpClient,
    /// The site's address as browsers see it, when it is not the address it
    /// listens on (behind a proxy, over HTTPS). Default `http://{listen address}`.
    pub public_url: Option<Url>,
}

impl Settings {
    /// Settings for a public app (no client secret) served at its listen
    /// address, with a new HTTP client.
    pub fn new(
        portal: Portal,
        client_id: impl Into<String>,
        store: Arc<dyn SessionStore>,
    ) -> Result<Settings, BoxError> {
        Ok(Settings {
            portal,
            client_id: client_id.into(),
            client_secret: None,
            store,
            http: HttpClient::new()?,
            public_url: None,
        })
    }
}

/// The site, bound to its address and ready to serve.
#[derive(Debug)]
pub struct WebApp {
    listener: TcpListener,
    router: Router,
    url: Url,
}

struct AppState {
    /// When abandoned sign-ins were last swept out of the store (Unix ms).
    last_sweep: AtomicI64,
    sign_in: UserSignIn,
    store: Arc<dyn SessionStore>,
    http: HttpClient,
    portal: Portal,
    redirect_uri: String,
    secure: bool,
}

impl WebApp {
    /// Listens on `addr` (port 0: any free port) and sets up the routes.
    pub async fn bind(addr: SocketAddr, settings: Settings) -> Result<WebApp, BoxError> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let url = match settings.public_url {
            Some(url) => url,
            None => Url::parse(&format!("http://{local}/"))?,
        };
        let redirect_uri = url.join("callback")?.to_string();
        let mut sign_in = UserSignIn::new(
            settings.portal.clone(),
            settings.client_id.clone(),
            settings.http.clone(),
        );
        if let Some(secret) = settings.client_secret {
            sign_in = sign_in.with_client_secret(secret);
        }
        let state = Arc::new(AppState {
            last_sweep: AtomicI64::new(0),
            sign_in,
            store: settings.store,
            http: settings.http,
            portal: settings.portal,
            redirect_uri,
            secure: url.scheme() == "https",
        });
        let router = Router::new()
            .route("/", get(home))
            .route("/signin", post(begin_sign_in))
            .route("/callback", get(callback))
            .route("/signout", post(sign_out))
            .with_state(state);
        Ok(WebApp {
            listener,
            router,
            url,
        })
    }

    /// The site's address, e.g. `http://127.0.0.1:41234/`.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The redirect URI the app must have registered: `{site}/callback`.
    pub fn redirect_uri(&self) -> String {
        self.url
            .join("callback")
            .map(String::from)
            .unwrap_or_default()
    }

    /// Serves until `shutdown` completes.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Serves in a background task until the task is aborted or the runtime stops.
    pub fn spawn(self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        tokio::spawn(async move { axum::serve(self.listener, self.router).await })
    }
}

fn pending_key(id: &str) -> String {
    format!("web:pending:{id}")
}

fn user_key(id: &str) -> String {
    format!("web:user:{id}")
}

impl AppState {
    /// The portal calls of the session stored for this browser.
    fn account(&self, id: &str) -> Result<Account, BoxError> {
        let manager = TokenManager::builder(self.sign_in.clone(), self.store.clone(), user_key(id))
            .build()?;
        Ok(Account::new(manager, self.http.clone()))
    }
}

/// An HTML answer that no cache keeps (it is about one user's session).
fn html(status: StatusCode, body: String) -> Response {
    (status, [(CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

fn problem(status: StatusCode, message: impl AsRef<str>) -> Response {
    html(status, pages::problem(message.as_ref()))
}

fn see_other(location: &str, cookie: Option<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, location.to_owned())]).into_response();
    if let Some(value) = cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

async fn home(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let signed_out = || {
        html(
            StatusCode::OK,
            pages::signed_out(app.portal.sharing_root().as_str()),
        )
    };
    let Some(id) = cookie::session_id(&headers) else {
        return signed_out();
    };
    let account = match app.account(&id) {
        Ok(account) => account,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match account.user().await {
        Ok(user) => {
            let name = user.full_name.as_deref().unwrap_or(&user.username);
            html(StatusCode::OK, pages::signed_in(name, &user.username))
        }
        // No session under this id (never signed in, signed out, or the
        // refresh token ran out): show the sign-in button, forget the cookie.
        Err(e) if e.kind().needs_sign_in() => {
            // A session that can no longer be renewed is of no use: drop it.
            if let Err(e) = app.store.delete(&user_key(&id), None).await {
                eprintln!("could not delete an ended session: {e}");
            }
            let mut response = signed_out();
            if let Ok(value) = cookie::clear(app.secure).parse() {
                response.headers_mut().insert(SET_COOKIE, value);
            }
            response
        }
        Err(e) => problem(
            StatusCode::BAD_GATEWAY,
            format!("Could not read your ArcGIS profile: {e}"),
        ),
    }
}

async fn begin_sign_in(State(app): State<Arc<AppState>>) -> Response {
    sweep_soon(&app);
    match start(&app).await {
        Ok((id, location)) => see_other(&location, Some(cookie::set(&id, app.secure))),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Could not start the sign-in: {e}"),
        ),
    }
}

/// Saves a new pending sign-in under a new session id; returns the id and the portal URL.
async fn start(app: &AppState) -> Result<(String, String), BoxError> {
    let id = cookie::new_session_id()?;
    let pending = app
        .sign_in
        .begin(&app.redirect_uri, &AuthorizeOptions::new())?;
    let mut record = SessionRecord::new(app.portal.clone(), SessionKind::User);
    record.client_id = Some(pending.client_id().to_owned());
    record
        .extra
        .insert(PENDING_FIELD.to_owned(), serde_json::to_value(&pending)?);
    app.store
        .save(&pending_key(&id), &record, SaveMode::Create)
        .await?;
    Ok((id, pending.url().to_string()))
}

/// Starts a sweep of abandoned sign-ins in the background, unless one ran
/// less than [`SWEEP_EVERY`] ago.
fn sweep_soon(app: &Arc<AppState>) {
    let now = app.sign_in.client().clock().now().as_unix_millis();
    let last = app.last_sweep.load(Ordering::Relaxed);
    let every = i64::try_from(SWEEP_EVERY.as_millis()).unwrap_or(i64::MAX);
    if now.saturating_sub(last) < every
        || app
            .last_sweep
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let app = Arc::clone(app);
    tokio::spawn(async move {
        if let Err(e) = sweep(&app).await {
            eprintln!("sweeping abandoned sign-ins failed: {e}");
        }
    });
}

/// Deletes the pending sign-ins older than [`PENDING_LIFETIME`]: browsers
/// that went to the portal and never came back.
async fn sweep(app: &AppState) -> Result<(), BoxError> {
    let now = app.sign_in.client().clock().now();
    for key in app.store.list("web:pending:").await? {
        let Some(stored) = app.store.load(&key).await? else {
            continue;
        };
        let created = stored
            .record
            .extra
            .get(PENDING_FIELD)
            .and_then(|v| serde_json::from_value::<PendingSignIn>(v.clone()).ok())
            .map(|p| p.created_at());
        let stale = created.is_none_or(|t| now.saturating_duration_since(t) > PENDING_LIFETIME);
        if stale {
            // A conflict means it changed meanwhile: leave it for next time.
            let _ = app.store.delete(&key, Some(&stored.version)).await;
        }
    }
    Ok(())
}

/// Takes the pending sign-in of session `id` out of the store: it can be used once.
async fn take_pending(app: &AppState, id: &str) -> Result<Option<PendingSignIn>, BoxError> {
    let key = pending_key(id);
    let Some(stored) = app.store.load(&key).await? else {
        return Ok(None);
    };
    match app.store.delete(&key, Some(&stored.version)).await {
        Ok(true) => {}
        // Another request (a double-clicked link, a replay) took it first.
        Ok(false) => return Ok(None),
        Err(e) if e.kind() == StoreErrorKind::Conflict => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let Some(value) = stored.record.extra.get(PENDING_FIELD) else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_value(value.clone())?))
}

async fn callback(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    const START_AGAIN: &str = "No sign-in is in progress in this browser (it was finished, \
        abandoned, or cookies are blocked). Start again.";
    let Some(id) = cookie::session_id(&headers) else {
        return problem(StatusCode::BAD_REQUEST, START_AGAIN);
    };
    let pending = match take_pending(&app, &id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return problem(StatusCode::BAD_REQUEST, START_AGAIN),
        Err(e) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Could not read the sign-in in progress: {e}"),
            );
        }
    };
    let age = app
        .sign_in
        .client()
        .clock()
        .now()
        .saturating_duration_since(pending.created_at());
    if age > PENDING_LIFETIME {
        return problem(
            StatusCode::BAD_REQUEST,
            "The sign-in took too long. Start again.",
        );
    }
    let signed_in = match app
        .sign_in
        .complete(&pending, query.as_deref().unwrap_or(""))
        .await
    {
        Ok(signed_in) => signed_in,
        Err(e) if e.kind() == FlowErrorKind::StateMismatch => {
            return problem(
                StatusCode::BAD_REQUEST,
                "This answer from the portal does not belong to the sign-in this browser \
                 started. Start again.",
            );
        }
        Err(e) if e.arcgis_kind() == Some(ErrorKind::AccessDenied) => {
            return problem(StatusCode::OK, "You declined the sign-in.");
        }
        Err(e) => {
            return problem(StatusCode::BAD_GATEWAY, format!("The sign-in failed: {e}"));
        }
    };
    match finish(&app, signed_in).await {
        Ok(new_id) => see_other("/", Some(cookie::set(&new_id, app.secure))),
        Err(e) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Signed in, but the session could not be saved: {e}"),
        ),
    }
}

/// Saves the new session under a fresh id (and not the one from before the
/// sign-in), and returns that id.
async fn finish(
    app: &AppState,
    signed_in: arcgis_auth_flows::signin::SignedIn<UserSignIn>,
) -> Result<String, BoxError> {
    let id = cookie::new_session_id()?;
    let manager = signed_in
        .into_manager(app.store.clone(), user_key(&id))
        .await?;
    manager.persist().await?;
    Ok(id)
}

async fn sign_out(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie::session_id(&headers) {
        match app.account(&id) {
            Ok(account) => {
                let report = account.sign_out().await;
                if let Err(e) = &report.revoked {
                    eprintln!("sign-out: revoking the refresh token failed: {e}");
                }
                if let Err(e) = &report.deleted {
                    eprintln!("sign-out: deleting the session failed: {e}");
                }
            }
            Err(e) => eprintln!("sign-out: {e}"),
        }
    }
    see_other("/", Some(cookie::clear(app.secure)))
}
