//! The gateway itself: its shared state, the axum `Router`, and the endpoints besides the proxy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arcgis_auth_core::{Clock, CoarseSystemClock, ExposeSecret, HttpClient};
use arcgis_auth_storage::{FileStore, MemoryStore, RedisStore, SessionStore};
use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;
use ipnet::IpNet;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Notify;

use crate::config::{Config, StoreSpec};
use crate::credentials::Credentials;
use crate::error::{GatewayError, GatewayErrorKind};
use crate::metrics::Metrics;
use crate::origins::{AllowedOrigins, Caller};
use crate::proxy;
use crate::ratelimit::{Decision, Limiter, Limits, RateLimit, client_ip};
use crate::reply;
use crate::routes::RouteTable;
use crate::shared_limit::SharedLimiter;
use crate::upstream::Upstream;
use crate::users::{self, UserSessions};

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) routes: RouteTable,
    pub(crate) origins: AllowedOrigins,
    pub(crate) credentials: Credentials,
    pub(crate) vendable: HashMap<String, bool>,
    pub(crate) store: Arc<dyn SessionStore>,
    pub(crate) upstream: Upstream,
    pub(crate) proxy_paths: Vec<String>,
    pub(crate) limiter: Arc<Limits>,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) token_rate_limit: RateLimit,
    pub(crate) metrics: Arc<Metrics>,
    /// `[user_sign_in]`: the users signed in through the gateway.
    pub(crate) users: Option<Arc<UserSessions>>,
    draining: Arc<AtomicBool>,
}

impl Shared {
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Counts one request of the client `parts` came from against `limit`
    /// under `scope`; `Some(429)` when it is over.
    pub(crate) async fn over_limit(
        &self,
        scope: &str,
        limit: RateLimit,
        parts: &http::request::Parts,
    ) -> Option<Response> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let client = client_ip(peer, &parts.headers, &self.trusted_proxies)
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        match self
            .limiter
            .check(&format!("{scope}|{client}"), limit)
            .await
        {
            Decision::Allowed => None,
            Decision::Limited { retry_after } => {
                tracing::info!(scope, client = %client, "rate limited");
                self.metrics.rate_limited(scope);
                Some(reply::too_many(
                    retry_after.as_millis().div_ceil(1000) as u64
                ))
            }
        }
    }
}

/// A configured gateway: hand [`router`](Gateway::router) to `axum::serve`, or
/// mount it in your own server. Cloning is cheap (the state is shared).
#[derive(Clone)]
pub struct Gateway {
    live: Arc<Live>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("proxy_paths", &self.live.current().proxy_paths)
            .field("draining", &self.is_draining())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Gateway`] from a [`Config`], with the store, clock and HTTP
/// clients it would open itself unless given.
pub struct GatewayBuilder {
    config: Config,
    store: Option<Arc<dyn SessionStore>>,
    /// The Redis store rate limits are shared in, if any.
    redis: Option<RedisStore>,
    clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Uses `store` for sessions instead of the one the configuration
    /// names. Rate limits are then counted in this process: for a fleet,
    /// give a Redis store with [`redis_store`](Self::redis_store).
    pub fn store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = Some(store);
        self.redis = None;
        self
    }

    /// Uses `store` for sessions and rate limits, shared with every gateway
    /// on the same Redis (and prefix), instead of the store the
    /// configuration names (what `store = "redis://…"` does).
    pub fn redis_store(mut self, store: RedisStore) -> Self {
        self.store = Some(Arc::new(store.clone()));
        self.redis = Some(store);
        self
    }

    /// Uses `clock` to judge token expiry and rate limits (default: the system's).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Opens the store (unless given) and builds the HTTP clients.
    ///
    /// Errors: [`GatewayErrorKind::Store`] when the store cannot be opened,
    /// [`GatewayErrorKind::Io`] for an unreadable CA bundle,
    /// [`GatewayErrorKind::Http`] when no HTTP client can be built.
    pub async fn build(self) -> Result<Gateway, GatewayError> {
        let config = self.config;
        let (store, redis) = match self.store {
            Some(s) => (s, self.redis),
            None => open_store(&config.store).await?,
        };
        let clock: Arc<dyn Clock> = self
            .clock
            .unwrap_or_else(|| Arc::new(CoarseSystemClock::new()));
        let metrics = Arc::new(Metrics::default());
        let local = Limiter::new(Arc::clone(&clock));
        let limiter = match redis {
            Some(redis) => Limits::Shared(SharedLimiter::new(
                redis.connection(),
                redis.prefix(),
                local,
                Arc::clone(&metrics),
            )),
            None => Limits::Local(local),
        };
        let common = Common {
            store,
            limiter: Arc::new(limiter),
            clock,
            metrics,
            draining: Arc::new(AtomicBool::new(false)),
        };
        let shared = Shared::build(&config, &common, None)?;
        Ok(Gateway {
            live: Arc::new(Live {
                current: RwLock::new(Arc::new(shared)),
                config: std::sync::Mutex::new(config),
                common,
                in_flight: InFlight::default(),
                reloading: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

/// What stays the same across reloads: the store, the clock, the counts.
struct Common {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    limiter: Arc<Limits>,
    metrics: Arc<Metrics>,
    draining: Arc<AtomicBool>,
}

/// The gateway across reloads: the configuration in force, swapped whole.
pub(crate) struct Live {
    current: RwLock<Arc<Shared>>,
    /// The configuration `current` was built from.
    config: std::sync::Mutex<Config>,
    common: Common,
    pub(crate) in_flight: InFlight,
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    /// The configuration in force; a request keeps the one it started with.
    pub(crate) fn current(&self) -> Arc<Shared> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// Requests whose answer has not been sent to the end yet.
#[derive(Default)]
pub(crate) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    /// Counts one more request of `live` in flight, until the guard is dropped.
    pub(crate) fn enter(live: &Arc<Live>) -> InFlightGuard {
        live.in_flight.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard {
            live: Arc::clone(live),
        }
    }
}

/// Counts one request in flight until dropped (with its answer's body).
pub(crate) struct InFlightGuard {
    live: Arc<Live>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let flight = &self.live.in_flight;
        if flight.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            flight.idle.notify_waiters();
        }
    }
}

/// An answer's body that keeps its request counted in flight until it is sent or dropped.
pub(crate) struct GuardedBody {
    inner: axum::body::Body,
    _guard: InFlightGuard,
}

impl GuardedBody {
    /// `response` with its body counted in flight under `guard`.
    pub(crate) fn wrap(response: Response, guard: InFlightGuard) -> Response {
        response.map(|inner| {
            axum::body::Body::new(GuardedBody {
                inner,
                _guard: guard,
            })
        })
    }
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Shared {
    fn build(
        config: &Config,
        common: &Common,
        previous: Option<&Credentials>,
    ) -> Result<Shared, GatewayError> {
        let clock = &common.clock;
        let pem = match &config.ca_bundle {
            Some(path) => Some(read_bundle(path)?),
            None => None,
        };
        let http_error = |e: arcgis_auth_core::Error| {
            GatewayError::new(
                GatewayErrorKind::Http,
                "could not build the HTTP client: check ca_bundle",
            )
            .with_source(e)
        };
        // Token endpoints: core's client (redirects off, 60 s timeout, TLS always verified).
        let token_http = match &pem {
            Some(pem) => HttpClient::with_root_certificates(pem),
            None => HttpClient::new(),
        }
        .map_err(http_error)?
        .with_clock(Arc::clone(clock));
        // Upstreams: hyper-util's pooled client, redirects passed back, no
        // overall timeout (bodies stream for as long as they take); the
        // answer's headers must come within upstream_timeout, and so must
        // every part of its body after the one before.
        let roots = match &pem {
            Some(pem) => bundle_roots(pem)?,
            None => Vec::new(),
        };
        let upstream = Upstream::new(roots, config.upstream_timeout).map_err(|e| {
            GatewayError::new(
                GatewayErrorKind::Http,
                "could not build the upstream client: check ca_bundle",
            )
            .with_source(e)
        })?;
        let credentials = Credentials::build(
            &config.apps,
            &config.servers,
            &common.store,
            &token_http,
            clock,
            &common.metrics,
            previous,
        )
        .map_err(|e| {
            GatewayError::new(GatewayErrorKind::Config, "a credential could not be set up")
                .with_source(e)
        })?;
        let users = config.user_sign_in.clone().map(|u| {
            Arc::new(UserSessions::new(
                u,
                Arc::clone(&common.store),
                token_http.clone(),
                Arc::clone(clock),
            ))
        });
        Ok(Shared {
            users,
            routes: RouteTable::new(config.routes.clone()),
            origins: AllowedOrigins::new(config.allowed_origins.clone())
                .with_own(config.user_sign_in.as_ref().map(|u| u.public_url.clone())),
            credentials,
            vendable: config
                .apps
                .iter()
                .map(|a| (a.name.clone(), a.vend))
                .collect(),
            store: Arc::clone(&common.store),
            upstream,
            proxy_paths: config.proxy_paths.clone(),
            limiter: Arc::clone(&common.limiter),
            trusted_proxies: config.trusted_proxies.clone(),
            token_rate_limit: config.token_rate_limit,
            metrics: Arc::clone(&common.metrics),
            draining: Arc::clone(&common.draining),
        })
    }
}

fn read_bundle(path: &Path) -> Result<Vec<u8>, GatewayError> {
    std::fs::read(path).map_err(|e| {
        GatewayError::new(
            GatewayErrorKind::Io,
            format!("could not read the ca_bundle {}", path.display()),
        )
        .with_source(e)
    })
}

/// The certificates of a PEM bundle (DER), for the upstream client's extra
/// roots; a bundle with none, or with an unreadable block, is refused.
fn bundle_roots(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, GatewayError> {
    let unreadable = |detail: String| {
        GatewayError::new(
            GatewayErrorKind::Io,
            format!("the ca_bundle has no readable certificate ({detail})"),
        )
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(e.to_string()))?;
    if certs.is_empty() {
        return Err(unreadable("no CERTIFICATE block".to_owned()));
    }
    Ok(certs)
}

/// The session store the configuration names, and the same store as a
/// Redis one when rate limits are to be shared in it.
async fn open_store(
    spec: &StoreSpec,
) -> Result<(Arc<dyn SessionStore>, Option<RedisStore>), GatewayError> {
    let store_error = |e: arcgis_auth_storage::StoreError| {
        GatewayError::new(GatewayErrorKind::Store, "could not open the session store")
            .with_source(e)
    };
    Ok(match spec {
        StoreSpec::Memory => (Arc::new(MemoryStore::default()), None),
        StoreSpec::File(path) => (
            Arc::new(FileStore::new(path.clone()).map_err(store_error)?),
            None,
        ),
        StoreSpec::Redis(url) => {
            let redis = RedisStore::connect(url.clone())
                .await
                .map_err(store_error)?;
            (Arc::new(redis.clone()), Some(redis))
        }
    })
}

impl Gateway {
    /// Starts building a gateway for `config`.
    pub fn builder(config: Config) -> GatewayBuilder {
        GatewayBuilder {
            config,
            store: None,
            redis: None,
            clock: None,
        }
    }

    /// A gateway for `config`, with the store it names.
    pub async fn new(config: Config) -> Result<Gateway, GatewayError> {
        Gateway::builder(config).build().await
    }

    /// The gateway's endpoints: every proxy path, `GET /token`, `GET /healthz`,
    /// `GET /readyz` and `GET /metrics`, and with `[user_sign_in]`
    /// `GET /auth/sign-in`, `GET /auth/callback`, `POST /auth/sign-out` and
    /// `GET /auth/me`. Serve it with connection info (`into_make_service`) or
    /// nest it at the root of your own router (the session cookie is `Path=/`).
    ///
    /// The proxy paths and the `/auth/` endpoints are those of the
    /// configuration in force when a request arrives, so a
    /// [`reload`](Self::reload) changes them for a router already serving.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/token", get(vend))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/auth/sign-in", get(users::sign_in))
            .route("/auth/callback", get(users::callback))
            .route(
                "/auth/sign-out",
                axum::routing::post(users::sign_out).fallback(users::post_only),
            )
            .route("/auth/me", get(users::me))
            .fallback(proxy_or_not_found)
            .method_not_allowed_fallback(|| async {
                reply::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "this endpoint of the gateway answers GET only",
                )
            })
            .with_state(Arc::clone(&self.live))
    }

    /// Stops taking new work: `/readyz` answers 503 and proxied and token
    /// requests are answered 503, while requests already running finish.
    pub fn start_draining(&self) {
        self.live.common.draining.store(true, Ordering::Relaxed);
    }

    /// Whether [`start_draining`](Self::start_draining) was called.
    pub fn is_draining(&self) -> bool {
        self.live.common.draining.load(Ordering::Relaxed)
    }

    /// How many proxied and token requests are running (their answers not yet sent to the end).
    pub fn in_flight(&self) -> usize {
        self.live.in_flight.count.load(Ordering::SeqCst)
    }

    /// Waits until no request is in flight, or `grace` has passed; `true` when
    /// none is left. Call it after [`start_draining`](Self::start_draining).
    pub async fn drained(&self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.live.in_flight.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight() == 0 {
                return true;
            }
            tokio::select! {
                _ = idle => {}
                _ = tokio::time::sleep_until(deadline) => return self.in_flight() == 0,
            }
        }
    }

    /// Replaces the configuration in force with `config`, whole: requests
    /// already running finish with the old one, the next ones use the new one.
    /// Apps and servers whose entry is unchanged keep their tokens; those
    /// removed or changed stop at once. On an error the old configuration stays.
    ///
    /// Proxy paths and `[user_sign_in]` change with it (added, removed or
    /// changed; sessions stay in the store). The store and the listen
    /// address are those the gateway was built with: a change to them needs
    /// a restart (it is logged).
    ///
    /// Errors: as [`GatewayBuilder::build`], except the store, which is not reopened.
    pub async fn reload(&self, config: Config) -> Result<(), GatewayError> {
        let _one = self.live.reloading.lock().await;
        let previous = self.live.current();
        let shared = Shared::build(&config, &self.live.common, Some(&previous.credentials))?;
        if let Ok(mut old) = self.live.config.lock() {
            if old.store != config.store {
                tracing::warn!("store changed in the configuration: it takes effect on restart");
            }
            if old.listen != config.listen {
                tracing::warn!("listen changed in the configuration: it takes effect on restart");
            }
            *old = config;
        }
        match self.live.current.write() {
            Ok(mut c) => *c = Arc::new(shared),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(shared),
        }
        Ok(())
    }
}

/// A request to no endpoint of the router: a proxy path of the
/// configuration in force, or 404.
/// What [`serve`](crate::serve) gives each connection: requests on a proxy
/// path go straight to the proxy handler (no route lookup, fallback or
/// extractors: the configuration keeps proxy paths off the router's own
/// endpoints), every other request to [`Gateway::router`]. Each request
/// carries the peer's address as `ConnectInfo`, which rate limits key on.
#[derive(Clone)]
pub(crate) struct FrontDoor {
    live: Arc<Live>,
    router: Router,
}

impl FrontDoor {
    pub(crate) fn new(gateway: &Gateway) -> FrontDoor {
        FrontDoor {
            live: Arc::clone(&gateway.live),
            router: gateway.router(),
        }
    }
}

impl<'a> tower_service::Service<axum::serve::IncomingStream<'a, tokio::net::TcpListener>>
    for FrontDoor
{
    type Response = Front;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Front, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(
        &mut self,
        stream: axum::serve::IncomingStream<'a, tokio::net::TcpListener>,
    ) -> Self::Future {
        std::future::ready(Ok(Front {
            live: Arc::clone(&self.live),
            router: self.router.clone(),
            peer: ConnectInfo(*stream.remote_addr()),
        }))
    }
}

/// One connection's service (see [`FrontDoor`]).
#[derive(Clone)]
pub(crate) struct Front {
    live: Arc<Live>,
    router: Router,
    peer: ConnectInfo<SocketAddr>,
}

impl tower_service::Service<Request> for Front {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        let gw = self.live.current();
        if gw.proxy_paths.iter().any(|p| p == request.uri().path()) {
            let live = Arc::clone(&self.live);
            return Box::pin(async move { Ok(proxy::handle_with(&live, gw, request).await) });
        }
        drop(gw);
        let mut router = self.router.clone();
        Box::pin(async move { router.call(request).await })
    }
}

async fn proxy_or_not_found(State(live): State<Arc<Live>>, request: Request) -> Response {
    let path = request.uri().path();
    if live.current().proxy_paths.iter().any(|p| p == path) {
        proxy::handle(State(live), request).await
    } else {
        reply::error(StatusCode::NOT_FOUND, "no such endpoint on this gateway")
    }
}

#[derive(Deserialize)]
struct VendQuery {
    app: Option<String>,
}

/// `GET /token?app=NAME`, counted in the metrics.
async fn vend(
    State(live): State<Arc<Live>>,
    Query(query): Query<VendQuery>,
    parts: http::request::Parts,
) -> Response {
    let guard = InFlight::enter(&live);
    let gw = live.current();
    let response = vend_token(&gw, query, parts).await;
    gw.metrics.request("/token", response.status().as_u16());
    GuardedBody::wrap(response, guard)
}

/// A `vend = true` app's token, for allowed origins only.
async fn vend_token(gw: &Shared, query: VendQuery, parts: http::request::Parts) -> Response {
    let headers = &parts.headers;
    if gw.is_draining() {
        return reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down: try again",
        );
    }
    let origin = match gw.origins.judge(headers) {
        Caller::Allowed { origin } => origin,
        Caller::Refused => {
            return reply::error(
                StatusCode::FORBIDDEN,
                "this origin is not allowed to ask for tokens",
            );
        }
        Caller::Unknown => {
            return reply::error(
                StatusCode::FORBIDDEN,
                "token requests need an Origin or Referer header of an allowed origin",
            );
        }
    };
    if let Some(mut limited) = gw.over_limit("token", gw.token_rate_limit, &parts).await {
        proxy::set_cors(limited.headers_mut(), origin.as_deref());
        return limited;
    }
    let name = query.app.unwrap_or_default();
    let credential = match gw.vendable.get(&name) {
        Some(true) => gw.credentials.app(&name),
        _ => None,
    };
    let Some(credential) = credential else {
        let mut r = reply::error(
            StatusCode::FORBIDDEN,
            "no app of that name hands out tokens here",
        );
        proxy::set_cors(r.headers_mut(), origin.as_deref());
        return r;
    };
    let mut response = match credential.token().await {
        Ok(token) => reply::json_response(
            StatusCode::OK,
            &json!({
                "token": token.secret().expose_secret(),
                "expires": token.expires_at().as_unix_millis(),
                "ssl": true,
            }),
        ),
        Err(err) => {
            tracing::error!(credential = credential.label(), error = %err, "no token to hand out");
            reply::error(
                StatusCode::BAD_GATEWAY,
                "the token service is not answering: try again shortly",
            )
        }
    };
    proxy::set_cors(response.headers_mut(), origin.as_deref());
    tracing::info!(app = %name, status = response.status().as_u16(), "token handed out");
    response
}

async fn metrics(State(live): State<Arc<Live>>) -> Response {
    let gw = live.current();
    let mut r = Response::new(axum::body::Body::from(gw.metrics.render()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

async fn healthz() -> Response {
    reply::json_response(StatusCode::OK, &json!({"status": "ok"}))
}

async fn readyz(State(live): State<Arc<Live>>) -> Response {
    let gw = live.current();
    if gw.is_draining() {
        return reply::json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "draining"}),
        );
    }
    match gw.store.load("gateway/readyz").await {
        Ok(_) => reply::json_response(StatusCode::OK, &json!({"status": "ready"})),
        Err(err) => {
            tracing::warn!(error = %err, "the session store is not reachable");
            reply::json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "store unavailable"}),
            )
        }
    }
}
