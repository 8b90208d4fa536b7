//! `<proxy_path>?<URL>`: forwarding one request to the route that allows it, with the route's token.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use arcgis_auth_flows::AccessToken;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

use crate::body::{MAX_BUFFERED, Prefixed, Upload, read_up_to};
use crate::credentials::SERVER_REFERER;
use crate::form::TokenFieldFilter;
use crate::gateway::{GuardedBody, InFlight, Live, Shared};
use crate::inspect::{Encoding, encoded_says_invalid_token};
use crate::origins::Caller;
use crate::reply;
use crate::routes::{Auth, Route};
use crate::signer::Signer;
use crate::target::{self, Target};
use crate::upstream::{Outgoing as UpstreamBody, TimedBody, UpstreamError, describe};
use crate::users::{not_signed_in, read_cookie, strip_cookies};

/// Headers that describe one connection, never forwarded either way (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The header the route's token goes upstream in.
static ESRI_AUTHORIZATION: HeaderName = HeaderName::from_static("x-esri-authorization");

/// The browser's credentials, removed on authenticated routes.
static BROWSER_CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-esri-authorization"),
    header::COOKIE,
];

/// The handler of every proxy path; every answer but `?ping` is counted in
/// the metrics under its route (`none` when no route matched).
pub(crate) async fn handle(State(live): State<Arc<Live>>, request: Request) -> Response {
    let gw = live.current();
    handle_with(&live, gw, request).await
}

/// [`handle`] with the configuration in force already read.
pub(crate) async fn handle_with(live: &Arc<Live>, gw: Arc<Shared>, request: Request) -> Response {
    let guard = InFlight::enter(live);
    let mut route_label = None;
    let response = handle_routed(&gw, request, &mut route_label).await;
    if let Some(label) = route_label {
        gw.metrics.request(label, response.status().as_u16());
    }
    GuardedBody::wrap(response, guard)
}

/// Answers one proxied request; `route_label` is set to what the answer is
/// counted under (the route's URL as configured, or `none`), borrowed from
/// the configuration `gw` holds.
async fn handle_routed<'a>(
    gw: &'a Shared,
    mut request: Request,
    route_label: &mut Option<&'a str>,
) -> Response {
    let started = Instant::now();
    let raw = request.uri().query().unwrap_or("");
    if raw.eq_ignore_ascii_case("ping") {
        return reply::ping();
    }
    *route_label = Some("none");
    if gw.is_draining() {
        return reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down: try again",
        );
    }
    let target = match target::parse(raw) {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(reason = ?e, "refused an unreadable target");
            return reply::error(StatusCode::BAD_REQUEST, e.message());
        }
    };
    let Some(route) = gw.routes.find(&target) else {
        tracing::info!(
            host = target.url.host_str().unwrap_or(""),
            "refused a target no route allows"
        );
        return reply::error(
            StatusCode::FORBIDDEN,
            "no route of this gateway allows the target URL",
        );
    };
    *route_label = Some(&route.url_text);
    let caller = gw.origins.judge(request.headers());
    let origin = match caller {
        Caller::Allowed { origin } => origin,
        // With no allowed_origins, any caller may use the proxy (a browser
        // always sends a Referer, of whatever site).
        Caller::Refused if !gw.origins.is_empty() => {
            return reply::error(
                StatusCode::FORBIDDEN,
                "this origin is not allowed to use the gateway",
            );
        }
        Caller::Unknown if !gw.origins.is_empty() => {
            return reply::error(
                StatusCode::FORBIDDEN,
                "requests need an Origin or Referer header of an allowed origin",
            );
        }
        Caller::Refused | Caller::Unknown => None,
    };
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(request.headers(), origin.as_deref());
    }
    if let Some(limit) = route.rate_limit {
        let (parts, body) = request.into_parts();
        if let Some(mut limited) = gw
            .over_limit(&format!("route:{}", route.url_text), limit, &parts)
            .await
        {
            set_cors(limited.headers_mut(), origin.as_deref());
            return limited;
        }
        request = Request::from_parts(parts, body);
    }
    let method = request.method().clone();
    let mut response = forward(gw, route, &target, request).await;
    set_cors(response.headers_mut(), origin.as_deref());
    tracing::info!(
        method = %method,
        route = %route.url_text,
        host = target.url.host_str().unwrap_or(""),
        path = target.url.path(),
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "proxied"
    );
    response
}

/// What the upstream request carries as its body.
enum Outgoing {
    /// Nothing.
    Empty,
    /// Held in memory: sent again after a renewed token.
    Buffered(Bytes),
    /// Streamed once.
    Stream(Upload),
    /// Streamed already: cannot be sent again.
    Spent,
}

impl Outgoing {
    fn replayable(&self) -> bool {
        matches!(self, Outgoing::Empty | Outgoing::Buffered(_))
    }

    fn take(&mut self) -> UpstreamBody {
        match std::mem::replace(self, Outgoing::Empty) {
            Outgoing::Empty => UpstreamBody::Empty,
            Outgoing::Spent => {
                *self = Outgoing::Spent;
                UpstreamBody::Empty
            }
            Outgoing::Buffered(b) => {
                *self = Outgoing::Buffered(b.clone());
                UpstreamBody::Full(Some(b))
            }
            Outgoing::Stream(s) => {
                *self = Outgoing::Spent;
                UpstreamBody::Stream(s)
            }
        }
    }
}

async fn forward(gw: &Shared, route: &Route, target: &Target, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let signer = match &route.auth {
        Auth::None => None,
        Auth::App(name) => gw.credentials.app(name).cloned().map(Signer::Gateway),
        Auth::Server(name) => gw
            .credentials
            .server(name, &target.url)
            .cloned()
            .map(Signer::Gateway),
        Auth::User => match user_signer(gw, &parts.headers, &target.url).await {
            Ok(signer) => signer,
            Err(r) => return r,
        },
    };
    if route.auth != Auth::None && signer.is_none() {
        return reply::error(
            StatusCode::BAD_GATEWAY,
            "the route's credential is not configured",
        );
    }
    let authenticated = signer.is_some();
    let mut url = Cow::Borrowed(&target.url);
    if authenticated && url.scheme() == "http" && !is_loopback(&url) {
        return reply::error(
            StatusCode::FORBIDDEN,
            "this route sends its token only over https: request the https:// URL",
        );
    }
    let mut headers = forward_headers(std::mem::take(&mut parts.headers), authenticated);
    if let Some(users) = &gw.users {
        // The gateway's own cookies never leave it, whatever the route.
        strip_cookies(
            &mut headers,
            &[users.cookie_name(), users.pending_cookie_name()],
        );
    }
    if authenticated {
        if let Some(query) = url.query().map(strip_token_params) {
            url.to_mut()
                .set_query(Some(query.as_str()).filter(|q| !q.is_empty()));
        }
        if matches!(route.auth, Auth::Server(_)) {
            headers.insert(header::REFERER, HeaderValue::from_static(SERVER_REFERER));
        }
    }
    let mut outgoing = match outgoing_body(body, &headers, authenticated).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    match &outgoing {
        Outgoing::Buffered(b) => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
        }
        // A filtered form is sent chunked: its length is known only at the end.
        Outgoing::Stream(upload) if upload.rewritten() => {
            headers.remove(header::CONTENT_LENGTH);
        }
        _ => {}
    }
    let Some(signer) = signer else {
        return match send(
            gw,
            &route.url_text,
            &parts.method,
            &url,
            headers,
            outgoing.take(),
            None,
        )
        .await
        {
            Ok(upstream) => pass_through(upstream),
            Err(r) => r,
        };
    };
    let mut retried = false;
    loop {
        let held = match signer.token().await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let upstream = match send(
            gw,
            &route.url_text,
            &parts.method,
            &url,
            headers.clone(),
            outgoing.take(),
            Some(&held.token),
        )
        .await
        {
            Ok(u) => u,
            Err(r) => return r,
        };
        let answer = match inspect(upstream).await {
            Ok(a) => a,
            Err(r) => return r,
        };
        match answer {
            Inspected::Fine(response) => return response,
            Inspected::InvalidToken => {
                signer.report_invalid(&held);
                if retried || !outgoing.replayable() {
                    tracing::warn!(
                        credential = signer.label(),
                        retried,
                        "the upstream refused the token"
                    );
                    return reply::error(
                        StatusCode::BAD_GATEWAY,
                        "the upstream refused the gateway's token; it is renewed: try again",
                    );
                }
                tracing::info!(
                    credential = signer.label(),
                    "the upstream refused the token; renewing and retrying once"
                );
                gw.metrics.retry(signer.label());
                retried = true;
            }
        }
    }
}

/// The signer of an `auth = "user"` route: the session of the request's
/// cookie, read from the store (401 without one, 503 when the store is down).
async fn user_signer(
    gw: &Shared,
    headers: &HeaderMap,
    url: &url::Url,
) -> Result<Option<Signer>, Response> {
    let Some(users) = gw.users.clone() else {
        return Ok(None);
    };
    // A navigation from another site carries the SameSite=Lax cookie: it
    // must not act as the user (a GET can change things in ArcGIS).
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    if matches!(fetch_site.as_deref(), Some("cross-site" | "same-site")) {
        tracing::info!("refused a request from another site on a user route");
        return Err(reply::error(
            StatusCode::FORBIDDEN,
            "requests from other sites cannot act as the signed-in user",
        ));
    }
    let id = read_cookie(headers, users.cookie_name());
    match users.lookup(id).await {
        Ok(Some((session, _))) => {
            let route = users.routing().route(url);
            Ok(Some(Signer::User {
                users,
                session,
                route,
            }))
        }
        Ok(None) => Err(not_signed_in()),
        Err(err) => {
            tracing::warn!(error = %err, "the session store did not answer");
            Err(reply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "sessions cannot be read right now: try again",
            ))
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// The request body: streamed, or (on authenticated routes) held when small
/// so it can be sent again, and a form's `token` field removed.
async fn outgoing_body(
    body: Body,
    headers: &HeaderMap,
    authenticated: bool,
) -> Result<Outgoing, Response> {
    let hint = http_body::Body::size_hint(&body);
    if hint.exact() == Some(0) {
        return Ok(Outgoing::Empty);
    }
    if !authenticated {
        return Ok(Outgoing::Stream(Upload::new(body)));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let small = hint.upper().is_some_and(|n| n <= MAX_BUFFERED as u64);
    if !is_form && !small {
        return Ok(Outgoing::Stream(Upload::new(body)));
    }
    match read_up_to(body, MAX_BUFFERED).await {
        Ok(Ok(all)) if is_form => match TokenFieldFilter::filter_all(&all) {
            Ok(filtered) => Ok(Outgoing::Buffered(filtered)),
            Err(too_long) => Err(reply::error(StatusCode::BAD_REQUEST, &too_long.to_string())),
        },
        Ok(Ok(all)) => Ok(Outgoing::Buffered(all)),
        // A larger form streams through its filter: only a field name is held.
        Ok(Err((prefix, rest))) => Ok(Outgoing::Stream(Upload::form(prefix, rest))),
        Err(_) => Err(reply::error(
            StatusCode::BAD_REQUEST,
            "the request body could not be read",
        )),
    }
}

/// `a=1&token=x&b=2` → `a=1&b=2`: every pair whose name is `token` (any case,
/// percent-encoded or not) goes; the others stay exactly as written.
pub(crate) fn strip_token_params(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let decoded = percent_encoding::percent_decode_str(&name.replace('+', " "))
                .decode_utf8_lossy()
                .trim()
                .to_ascii_lowercase();
            decoded != "token" && !pair.is_empty()
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Removes, in place, the hop-by-hop headers and those the `Connection`
/// header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let listed = connection_listed(headers);
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    for name in &listed {
        headers.remove(name.as_str());
    }
}

fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The browser's headers as they go upstream, edited in place: no
/// hop-by-hop headers, no `Host` (the client sets the target's), one
/// `Content-Length` at most, and on authenticated routes none of the
/// browser's credentials.
fn forward_headers(mut headers: HeaderMap, authenticated: bool) -> HeaderMap {
    remove_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    if authenticated {
        for name in &BROWSER_CREDENTIALS {
            headers.remove(name);
        }
    }
    if let Some(len) = headers.get(header::CONTENT_LENGTH).cloned() {
        headers.insert(header::CONTENT_LENGTH, len);
    }
    headers
}

/// Sends one request upstream. Connecting and the answer's headers must
/// come within the upstream timeout (which then also bounds every wait for
/// the body): 504 otherwise.
async fn send(
    gw: &Shared,
    route: &str,
    method: &Method,
    url: &url::Url,
    mut headers: HeaderMap,
    body: UpstreamBody,
    token: Option<&AccessToken>,
) -> Result<http::Response<TimedBody>, Response> {
    if let Some(token) = token {
        // Built once per token and shared (sensitive: `Debug` hides it).
        let value = token.bearer_header().ok_or_else(|| {
            reply::error(
                StatusCode::BAD_GATEWAY,
                "the token cannot be sent in a header",
            )
        })?;
        headers.insert(&ESRI_AUTHORIZATION, value);
    }
    // A parsed URL serializes to a valid URI (its own characters encoded).
    let Ok(uri) = http::Uri::try_from(url.as_str()) else {
        return Err(reply::error(
            StatusCode::BAD_REQUEST,
            "the target URL cannot be sent as an HTTP request",
        ));
    };
    let mut request = http::Request::new(body);
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let started = Instant::now();
    let sent = gw.upstream.send(request).await;
    gw.metrics.upstream_latency(route, started.elapsed());
    match sent {
        Err(UpstreamError::TimedOut) => Err(reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            "the upstream did not answer in time",
        )),
        Err(UpstreamError::Failed(e)) => {
            tracing::warn!(error = %describe(&*e), host = url.host_str().unwrap_or(""), "upstream request failed");
            Err(reply::error(
                StatusCode::BAD_GATEWAY,
                "the upstream could not be reached",
            ))
        }
        Ok(r) => Ok(r),
    }
}

enum Inspected {
    Fine(Response),
    InvalidToken,
}

/// Looks for a 498/499 in the status or a small JSON, JSONP or text body
/// (plain, gzip or deflate; an encoded answer passes on still encoded).
async fn inspect(upstream: http::Response<TimedBody>) -> Result<Inspected, Response> {
    let status = upstream.status().as_u16();
    if status == 498 || status == 499 {
        return Ok(Inspected::InvalidToken);
    }
    let headers = upstream.headers();
    let textual = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("json") || v.contains("javascript") || v.starts_with("text/plain")
        });
    let encoding = match headers.get(header::CONTENT_ENCODING) {
        None => Encoding::of(None),
        Some(v) => Encoding::of(Some(v.to_str().unwrap_or("unreadable"))),
    };
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(encoding) = encoding.filter(|_| textual) else {
        return Ok(Inspected::Fine(pass_through(upstream)));
    };
    if length.is_some_and(|n| n > MAX_BUFFERED as u64) {
        return Ok(Inspected::Fine(pass_through(upstream)));
    }
    let (parts, body) = upstream.into_parts();
    match read_up_to(body, MAX_BUFFERED).await {
        Ok(Ok(all)) if encoded_says_invalid_token(encoding, &all, MAX_BUFFERED) => {
            Ok(Inspected::InvalidToken)
        }
        Ok(Ok(all)) => Ok(Inspected::Fine(rebuild(parts, Body::from(all)))),
        Ok(Err((prefix, rest))) => Ok(Inspected::Fine(rebuild(
            parts,
            Body::new(Prefixed::new(prefix, Some(rest))),
        ))),
        Err(_) => Err(reply::error(
            StatusCode::BAD_GATEWAY,
            "the upstream's answer broke off",
        )),
    }
}

fn pass_through(upstream: http::Response<TimedBody>) -> Response {
    let (parts, body) = upstream.into_parts();
    rebuild(parts, Body::new(body))
}

/// The upstream's answer as the browser gets it, its headers edited in
/// place: no hop-by-hop headers and none of the upstream's CORS headers (the
/// gateway sets its own).
fn rebuild(parts: http::response::Parts, body: Body) -> Response {
    let mut headers = parts.headers;
    remove_hop_by_hop(&mut headers);
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in &cors {
        headers.remove(name);
    }
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    *response.headers_mut() = headers;
    response
}

/// CORS headers, set once: the allowed origin echoed, with `Vary: Origin`.
pub(crate) fn set_cors(headers: &mut HeaderMap, origin: Option<&str>) {
    let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

fn preflight(request: &HeaderMap, origin: Option<&str>) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    set_cors(headers, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::strip_token_params as strip;

    #[test]
    fn token_parameters_go_and_the_rest_stays_as_written() {
        assert_eq!(strip("f=json&token=abc&where=1%3D1"), "f=json&where=1%3D1");
        assert_eq!(
            strip("TOKEN=a&Token=b&%74oken=c&tok%65n=d&f=json"),
            "f=json"
        );
        assert_eq!(strip("token"), "");
        assert_eq!(strip("tokens=1&mytoken=2"), "tokens=1&mytoken=2");
        assert_eq!(strip("a=1&&token=x&"), "a=1");
    }
}
