//! The middleware itself: route, attach, send, look for a 498, retry once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{Error as CoreError, HttpClient, Origin, Timestamp};
use async_trait::async_trait;
use http::Extensions;
use http::header::AUTHORIZATION;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use super::attach::{attach, maybe_post};
use super::inspect::inspect;
use super::refusals::Refusals;
use crate::error::{FlowError, FlowErrorKind};
use crate::federation::{Credential, Federation, FederationConfig};
use crate::manager::TokenManager;
use crate::routing::{Route, TokenRouting, TokenTransport};
use arcgis_auth_core::__private::redact_query as redact;

/// ArcGIS clients turn GETs longer than this into POSTs.
pub const DEFAULT_MAX_URL_LENGTH: usize = 2000;

/// How long an origin that keeps rejecting freshly renewed tokens is not sent
/// another renewal's worth of retries (default of [`ArcGisAuth::rejection_cooldown`]).
pub const DEFAULT_REJECTION_COOLDOWN: Duration = Duration::from_secs(60);

/// A [`reqwest_middleware::Middleware`] that puts the right ArcGIS token on
/// each request, and only where it belongs, and recovers from 498s.
///
/// See the [module docs](super) for the rules. Add it to your own
/// [`ClientWithMiddleware`](reqwest_middleware::ClientWithMiddleware), or let
/// [`ArcGisAuth::into_client`] build one. Cheap to clone.
///
/// ```no_run
/// # use arcgis_auth_core::{HttpClient, Portal};
/// # use arcgis_auth_flows::{FlowError, TokenManager};
/// use arcgis_auth_flows::middleware::{ArcGisAuth, same_origin_redirects};
/// use arcgis_auth_flows::routing::TokenRouting;
///
/// # async fn demo(manager: TokenManager) -> Result<(), Box<dyn std::error::Error>> {
/// let routing = TokenRouting::new(Portal::arcgis_online());
/// let auth = ArcGisAuth::new(manager, routing, HttpClient::new()?);
/// let inner = reqwest::Client::builder().redirect(same_origin_redirects()).build()?;
/// let client = reqwest_middleware::ClientBuilder::new(inner).with(auth).build();
/// let me = client
///     .get("https://www.arcgis.com/sharing/rest/community/self?f=json")
///     .send()
///     .await?;
/// # let _ = me;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ArcGisAuth {
    federation: Federation,
    /// The client holding the web-tier credential, when there is one.
    web_tier: Option<HttpClient>,
    max_url_length: Option<usize>,
    rejection_cooldown: Duration,
    /// Origins that keep rejecting freshly renewed tokens.
    refusals: Arc<Refusals>,
}

impl fmt::Debug for ArcGisAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArcGisAuth")
            .field("federation", &self.federation)
            .field(
                "web_tier",
                &self.web_tier.as_ref().and_then(HttpClient::web_tier),
            )
            .field("max_url_length", &self.max_url_length)
            .field("rejection_cooldown", &self.rejection_cooldown)
            .finish()
    }
}

impl ArcGisAuth {
    /// The middleware for `manager`'s session under the rules of `routing`;
    /// `http` is used for `/rest/info` and server tokens (not for your
    /// requests), and, when it holds a web-tier credential
    /// ([`HttpClient::with_web_tier`]), for that credential (see
    /// [`web_tier`](Self::web_tier)).
    pub fn new(manager: TokenManager, routing: TokenRouting, http: HttpClient) -> Self {
        let web_tier = http.web_tier().is_some().then(|| http.clone());
        let auth = Self::from_federation(Federation::with_config(
            manager,
            routing,
            http,
            FederationConfig::default(),
        ));
        match web_tier {
            Some(http) => auth.web_tier(http),
            None => auth,
        }
    }

    /// Sends the web-tier credential `http` holds ([`HttpClient::with_web_tier`])
    /// with the token, where the web tier needs both: on requests to the
    /// portal's origin and to servers proven federated with the portal (their
    /// `/rest/info`, read without the credential, names it), never to any
    /// other origin. The token then travels in `X-Esri-Authorization` (or the
    /// form body), leaving `Authorization` to the web tier. HTTP Basic is
    /// added as `Authorization: Basic`; requests that must present a client
    /// certificate are sent by `http`'s own client, which offers it (so
    /// middlewares after this one do not see them, and redirects are not
    /// followed).
    pub fn web_tier(mut self, http: HttpClient) -> Self {
        self.web_tier = Some(http);
        self
    }

    /// The middleware over an existing [`Federation`] (sharing its caches).
    pub fn from_federation(federation: Federation) -> Self {
        ArcGisAuth {
            federation,
            web_tier: None,
            max_url_length: Some(DEFAULT_MAX_URL_LENGTH),
            rejection_cooldown: DEFAULT_REJECTION_COOLDOWN,
            refusals: Arc::new(Refusals::default()),
        }
    }

    /// When an origin rejects even a freshly renewed token twice in a row,
    /// with no accepted request in between (a server that will not take this
    /// token at all), its rejections during the next `cooldown` are handed
    /// back at once as typed errors, without renewing the token again
    /// (default [`DEFAULT_REJECTION_COOLDOWN`]; measured on the manager's
    /// clock; zero turns cooling down off). This keeps one misconfigured
    /// server from making every request renew the session. A single such
    /// rejection is not enough: on a portal that expires tokens early, the
    /// renewed token may have expired again before the retry landed. Any
    /// accepted request clears the origin's record.
    pub fn rejection_cooldown(mut self, cooldown: Duration) -> Self {
        self.rejection_cooldown = cooldown;
        self
    }

    fn now(&self) -> Timestamp {
        self.federation.manager().clock().now()
    }

    /// GETs with a token whose URL is longer than this become form POSTs
    /// (default [`DEFAULT_MAX_URL_LENGTH`]; `None` never converts).
    pub fn max_url_length(mut self, max: Option<usize>) -> Self {
        self.max_url_length = max;
        self
    }

    /// Server discovery and server tokens.
    pub fn federation(&self) -> &Federation {
        &self.federation
    }

    /// The routing rules.
    pub fn routing(&self) -> &TokenRouting {
        self.federation.routing()
    }

    async fn credential(&self, route: &Route) -> Result<Option<Credential>, FlowError> {
        self.federation.credential(route).await
    }

    /// Whether a request to `url` on `route` with `credential` carries the
    /// web-tier credential: the portal's origin, and servers proven
    /// federated (a server token for a federation route), whose origin is
    /// then allowed.
    fn web_tier_for(&self, route: &Route, credential: &Credential, url: &url::Url) -> bool {
        let Some(http) = &self.web_tier else {
            return false;
        };
        match (route, credential) {
            (Route::Federation { server, .. }, Credential::Server { .. }) => {
                http.allow_web_tier_origin(server.origin().clone());
            }
            (Route::Portal | Route::Federation { .. }, _) => {}
            _ => return false,
        }
        http.web_tier_covers(url)
    }

    /// Sends `request`: with the web-tier credential when `web_tier`
    /// (Basic or a fresh Negotiate token added here; a certificate through
    /// the client that offers it), else down the middleware chain.
    async fn send(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
        web_tier: bool,
    ) -> reqwest_middleware::Result<Response> {
        if let Some(http) = self.web_tier.as_ref().filter(|_| web_tier) {
            if !request.headers().contains_key(AUTHORIZATION) {
                let url = request.url().clone();
                let value = http
                    .web_tier_authorization_for(&url)
                    .await
                    .map_err(|e| into_mw(FlowError::from(e)))?;
                if let Some(value) = value {
                    request.headers_mut().insert(AUTHORIZATION, value);
                }
            }
            if let Some(client) = http.web_tier_reqwest() {
                return client
                    .execute(request)
                    .await
                    .map_err(reqwest_middleware::Error::Reqwest);
            }
        }
        next.run(request, extensions).await
    }
}

/// What the retry after a rejection needs from the first attempt.
struct FirstAttempt<'r> {
    route: Route,
    origin: Option<Origin>,
    transport: TokenTransport,
    credential: Credential,
    spare: Option<Request>,
    rejection: CoreError,
    response: &'r Response,
    web_tier: bool,
}

impl ArcGisAuth {
    /// The token for `route`: the manager's cached one when it is fresh (no
    /// waiting, no allocation), else whatever renewal or discovery it takes.
    async fn credential_for(&self, route: &Route) -> Result<Option<Credential>, FlowError> {
        if let Some(credential) = self.federation.cached_credential(route) {
            return Ok(Some(credential));
        }
        // Boxed: the slow path's large future stays out of every request's.
        Box::pin(self.credential(route)).await
    }

    /// After a 498/499: renew the token and send the request once more.
    async fn retry(
        &self,
        first: FirstAttempt<'_>,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let FirstAttempt {
            route,
            origin,
            transport,
            credential,
            spare,
            rejection,
            response,
            web_tier,
        } = first;
        let url = redact(spare.as_ref().map_or_else(|| response.url(), Request::url));
        if origin
            .as_ref()
            .is_some_and(|o| self.refusals.cooling_down(o, self.now()))
        {
            return Err(into_mw(rejected(
                rejection,
                "this server also rejected a freshly renewed token moments ago, so the token \
                 was not renewed again: check that this token is meant for this server",
            )));
        }
        tracing::info!(url = %url, kind = %rejection.kind(), "the token was rejected; renewing it");
        self.federation.report_invalid(&credential);
        let Some(mut retry) = spare else {
            return Err(into_mw(rejected(
                rejection,
                "it was not retried because the request body is a stream that cannot be sent \
                 twice: send a body held in memory to get one automatic retry",
            )));
        };
        let Some(credential) = self.credential_for(&route).await.map_err(into_mw)? else {
            return Err(into_mw(rejected(
                rejection,
                "no token is available for a retry",
            )));
        };
        attach(&mut retry, credential.token(), transport).map_err(into_mw)?;
        let response = self.send(retry, extensions, next, web_tier).await?;
        let inspected = inspect(response).await?;
        match inspected.rejection {
            None => {
                if let Some(origin) = &origin {
                    self.refusals.accepted(origin);
                }
                Ok(inspected.response)
            }
            Some(again) => {
                if let Some(origin) = origin {
                    self.refusals
                        .rejected(origin, self.now(), self.rejection_cooldown);
                }
                tracing::warn!(url = %url, kind = %again.kind(), "a freshly renewed token was rejected too");
                Err(into_mw(rejected(
                    again,
                    "it was rejected again after the token was renewed and the request retried once: \
                 sign in again, or check that this token is meant for this server",
                )))
            }
        }
    }
}

#[async_trait]
impl Middleware for ArcGisAuth {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // The URL's origin is parsed once, for routing and for the transport.
        let (route, origin) = self.routing().route_with_origin(request.url());
        if let Route::NoToken(reason) = &route {
            tracing::debug!(
                url = %redact(request.url()),
                reason = reason.as_str(),
                "sending no token to this URL"
            );
            return next.run(request, extensions).await;
        }
        let Some(credential) = self.credential_for(&route).await.map_err(into_mw)? else {
            return next.run(request, extensions).await;
        };
        let web_tier = self.web_tier_for(&route, &credential, request.url());
        let mut transport = origin
            .as_ref()
            .map(|o| self.routing().transport(o))
            .unwrap_or_default();
        if web_tier && transport == TokenTransport::AuthorizationHeader {
            // `Authorization` belongs to the web tier.
            transport = TokenTransport::EsriHeader;
        }
        maybe_post(&mut request, transport, self.max_url_length);
        // Copied before the token goes on: the retry carries a new one.
        let spare = spare(&request);
        attach(&mut request, credential.token(), transport).map_err(into_mw)?;
        let response = self
            .send(request, extensions, next.clone(), web_tier)
            .await?;
        let inspected = inspect(response).await?;
        let Some(rejection) = inspected.rejection else {
            if let Some(origin) = &origin {
                self.refusals.accepted(origin);
            }
            return Ok(inspected.response);
        };
        let first = FirstAttempt {
            route,
            origin,
            transport,
            credential,
            spare,
            rejection,
            response: &inspected.response,
            web_tier,
        };
        // Boxed: the retry's state stays out of every request's future.
        Box::pin(self.retry(first, extensions, next)).await
    }
}

/// A copy of `request` for its one retry (`None` for a streamed body, which
/// cannot be sent twice). A request without a body (most of them) is copied
/// field by field: [`Request::try_clone`] allocates an extension map for
/// every copy. `http` extensions of such a request converted from an
/// `http::Request` are the one thing its retry does not carry.
fn spare(request: &Request) -> Option<Request> {
    if request.body().is_some() {
        // Shares the body's bytes rather than copying them.
        return request.try_clone();
    }
    let mut spare = Request::new(request.method().clone(), request.url().clone());
    if !request.headers().is_empty() {
        *spare.headers_mut() = request.headers().clone();
    }
    *spare.version_mut() = request.version();
    if let Some(timeout) = request.timeout() {
        *spare.timeout_mut() = Some(*timeout);
    }
    Some(spare)
}

fn rejected(err: CoreError, what_next: &str) -> FlowError {
    let kind = FlowErrorKind::ArcGis(err.kind());
    let message = format!("{}; {what_next}", err.message());
    FlowError::repeating(kind, message, err)
}

fn into_mw(err: FlowError) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(err)
}

/// The [`FlowError`] behind a middleware error, when this crate's middleware
/// produced it (a token that could not be obtained, a second 498, ...).
///
/// ```
/// use arcgis_auth_flows::{FlowError, FlowErrorKind};
/// use arcgis_auth_flows::middleware::flow_error;
///
/// let err = reqwest_middleware::Error::middleware(FlowError::new(
///     FlowErrorKind::NotRenewable,
///     "the API key was rejected",
/// ));
/// assert_eq!(flow_error(&err).map(FlowError::kind), Some(FlowErrorKind::NotRenewable));
/// ```
pub fn flow_error(err: &reqwest_middleware::Error) -> Option<&FlowError> {
    match err {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref::<FlowError>(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}
