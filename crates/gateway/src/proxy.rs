//! `<proxy_path>?<URL>`: forwarding one request to the route that allows it, with the route's token.

use std::sync::Arc;
use std::time::Instant;

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_flows::AccessToken;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};

use crate::body::{MAX_BUFFERED, Prefixed, Upload, read_up_to};
use crate::credentials::SERVER_REFERER;
use crate::gateway::{GuardedBody, InFlight, Live, Shared};
use crate::inspect::{Encoding, encoded_says_invalid_token};
use crate::origins::Caller;
use crate::reply;
use crate::routes::{Auth, Route};
use crate::signer::Signer;
use crate::target::{self, Target};
use crate::users::{not_signed_in, read_cookie, strip_cookies};

/// Headers that describe one connection, never forwarded either way (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The browser's credentials, removed on authenticated routes.
const BROWSER_CREDENTIALS: [&str; 3] = ["authorization", "x-esri-authorization", "cookie"];

/// The handler of every proxy path; every answer but `?ping` is counted in
/// the metrics under its route (`none` when no route matched).
pub(crate) async fn handle(State(live): State<Arc<Live>>, request: Request) -> Response {
    let guard = InFlight::enter(&live);
    let gw = live.current();
    let mut route_label = None;
    let response = handle_routed(&gw, request, &mut route_label).await;
    if let Some(label) = route_label {
        gw.metrics.request(&label, response.status().as_u16());
    }
    GuardedBody::wrap(response, guard)
}

async fn handle_routed(
    gw: &Arc<Shared>,
    mut request: Request,
    route_label: &mut Option<String>,
) -> Response {
    let started = Instant::now();
    let raw = request.uri().query().unwrap_or("").to_owned();
    if raw.eq_ignore_ascii_case("ping") {
        return reply::ping();
    }
    *route_label = Some("none".to_owned());
    if gw.is_draining() {
        return reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down: try again",
        );
    }
    let target = match target::parse(&raw) {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(reason = ?e, "refused an unreadable target");
            return reply::error(StatusCode::BAD_REQUEST, e.message());
        }
    };
    let Some(route) = gw.routes.find(&target).cloned() else {
        tracing::info!(
            host = target.url.host_str().unwrap_or(""),
            "refused a target no route allows"
        );
        return reply::error(
            StatusCode::FORBIDDEN,
            "no route of this gateway allows the target URL",
        );
    };
    *route_label = Some(route.url_text.clone());
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
    let mut response = forward(gw, &route, target.clone(), request).await;
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

    fn take(&mut self) -> reqwest::Body {
        match std::mem::replace(self, Outgoing::Empty) {
            Outgoing::Empty | Outgoing::Spent => reqwest::Body::from(Bytes::new()),
            Outgoing::Buffered(b) => {
                *self = Outgoing::Buffered(b.clone());
                reqwest::Body::from(b)
            }
            Outgoing::Stream(s) => {
                *self = Outgoing::Spent;
                reqwest::Body::wrap(s)
            }
        }
    }
}

async fn forward(gw: &Shared, route: &Route, target: Target, request: Request) -> Response {
    let (parts, body) = request.into_parts();
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
    let mut url = target.url;
    if authenticated && url.scheme() == "http" && !is_loopback(&url) {
        return reply::error(
            StatusCode::FORBIDDEN,
            "this route sends its token only over https: request the https:// URL",
        );
    }
    let mut headers = forward_headers(&parts.headers, authenticated);
    if let Some(users) = &gw.users {
        // The gateway's own cookies never leave it, whatever the route.
        strip_cookies(
            &mut headers,
            &[users.cookie_name(), users.pending_cookie_name()],
        );
    }
    if authenticated {
        let query = url.query().map(strip_token_params);
        url.set_query(query.as_deref().filter(|q| !q.is_empty()));
        if matches!(route.auth, Auth::Server(_)) {
            headers.insert(header::REFERER, HeaderValue::from_static(SERVER_REFERER));
        }
    }
    let mut outgoing = match outgoing_body(body, &parts.headers, authenticated).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Outgoing::Buffered(b) = &outgoing {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
    }
    let Some(signer) = signer else {
        return match send(
            gw,
            &route.url_text,
            &parts.method,
            &url,
            &headers,
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
            &headers,
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
        Ok(Ok(all)) if is_form => {
            let text = String::from_utf8_lossy(&all);
            Ok(Outgoing::Buffered(Bytes::from(strip_token_params(&text))))
        }
        Ok(Ok(all)) => Ok(Outgoing::Buffered(all)),
        Ok(Err(_)) => Err(reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "form bodies on authenticated routes are at most 1 MiB: send large uploads as multipart",
        )),
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

fn is_hop_by_hop(name: &HeaderName, connection_listed: &[String]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || connection_listed.iter().any(|c| c == name.as_str())
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

fn forward_headers(incoming: &HeaderMap, authenticated: bool) -> HeaderMap {
    let listed = connection_listed(incoming);
    let mut out = HeaderMap::new();
    for (name, value) in incoming {
        if is_hop_by_hop(name, &listed)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || (authenticated && BROWSER_CREDENTIALS.contains(&name.as_str()))
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(len) = incoming.get(header::CONTENT_LENGTH) {
        out.insert(header::CONTENT_LENGTH, len.clone());
    }
    out
}

async fn send(
    gw: &Shared,
    route: &str,
    method: &Method,
    url: &url::Url,
    headers: &HeaderMap,
    body: reqwest::Body,
    token: Option<&AccessToken>,
) -> Result<reqwest::Response, Response> {
    let mut headers = headers.clone();
    if let Some(token) = token {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.secret().expose_secret())).map_err(
                |_| {
                    reply::error(
                        StatusCode::BAD_GATEWAY,
                        "the token cannot be sent in a header",
                    )
                },
            )?;
        value.set_sensitive(true);
        headers.insert("x-esri-authorization", value);
    }
    let request = gw
        .upstream
        .request(method.clone(), url.clone())
        .headers(headers)
        .body(body);
    let started = Instant::now();
    let sent = tokio::time::timeout(gw.upstream_timeout, request.send()).await;
    gw.metrics.upstream_latency(route, started.elapsed());
    match sent {
        Err(_) => Err(reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            "the upstream did not answer in time",
        )),
        Ok(Err(e)) if e.is_timeout() => Err(reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            "the upstream did not answer in time",
        )),
        Ok(Err(e)) => {
            tracing::warn!(error = %e.without_url(), host = url.host_str().unwrap_or(""), "upstream request failed");
            Err(reply::error(
                StatusCode::BAD_GATEWAY,
                "the upstream could not be reached",
            ))
        }
        Ok(Ok(r)) => Ok(r),
    }
}

enum Inspected {
    Fine(Response),
    InvalidToken,
}

/// Looks for a 498/499 in the status or a small JSON, JSONP or text body
/// (plain, gzip or deflate; an encoded answer passes on still encoded).
async fn inspect(upstream: reqwest::Response) -> Result<Inspected, Response> {
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
    let response: http::Response<reqwest::Body> = upstream.into();
    let (parts, body) = response.into_parts();
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

fn pass_through(upstream: reqwest::Response) -> Response {
    let response: http::Response<reqwest::Body> = upstream.into();
    let (parts, body) = response.into_parts();
    rebuild(parts, Body::new(body))
}

fn rebuild(parts: http::response::Parts, body: Body) -> Response {
    let listed = connection_listed(&parts.headers);
    let mut response = Response::new(body);
    *response.status_mut() = parts.status;
    let headers = response.headers_mut();
    for (name, value) in &parts.headers {
        if is_hop_by_hop(name, &listed) || name.as_str().starts_with("access-control-") {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
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
