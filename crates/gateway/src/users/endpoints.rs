//! `/auth/sign-in`, `/auth/callback`, `/auth/sign-out` and `/auth/me`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::json;

use super::cookies;
use super::pages::Page;
use super::return_to;
use super::sessions::{BeginError, CallbackError, PENDING_LIFE, UserSessions};
use crate::gateway::{GuardedBody, InFlight, Live, Shared};
use crate::reply;

/// Runs `handle` with the current configuration's user sign-in, counted in
/// flight and in the metrics under `label`; 404 when the configuration has
/// none, 503 while draining.
async fn with_users<F, Fut>(live: Arc<Live>, label: &str, handle: F) -> Response
where
    F: FnOnce(Arc<Shared>, Arc<UserSessions>) -> Fut,
    Fut: Future<Output = Response>,
{
    let guard = InFlight::enter(&live);
    let gw = live.current();
    let response = match gw.users.clone() {
        None => reply::error(StatusCode::NOT_FOUND, "no such endpoint on this gateway"),
        Some(_) if gw.is_draining() => reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down: try again",
        ),
        Some(users) => handle(Arc::clone(&gw), users).await,
    };
    gw.metrics.request(label, response.status().as_u16());
    GuardedBody::wrap(response, guard)
}

/// `GET /auth/sign-in?return_to=/path`: 302 to the portal's sign-in page.
pub(crate) async fn sign_in(
    State(live): State<Arc<Live>>,
    parts: http::request::Parts,
) -> Response {
    with_users(live, "/auth/sign-in", |gw, users| async move {
        if let Some(limited) = gw.over_limit("sign-in", gw.token_rate_limit, &parts).await {
            return limited;
        }
        let query = parts.uri.query().unwrap_or("");
        let mut asked = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if name == "return_to" {
                if asked.is_some() {
                    return Page::BadReturnTo.response();
                }
                asked = Some(value.into_owned());
            }
        }
        let Some(return_to) = return_to::check(asked.as_deref()) else {
            tracing::info!("refused a sign-in whose return_to is not a path of this site");
            return Page::BadReturnTo.response();
        };
        match users.begin(return_to).await {
            Ok(begun) => {
                let mut r = redirect(begun.url.as_str());
                r.headers_mut().append(
                    header::SET_COOKIE,
                    cookies::set(users.pending_cookie_name(), &begun.id, PENDING_LIFE),
                );
                r
            }
            Err(BeginError::Store(err)) => {
                tracing::warn!(error = %err, "a sign-in could not be kept in the store");
                Page::StoreFailed.response()
            }
            Err(BeginError::Flow(err)) => {
                tracing::error!(error = %err, "no sign-in URL could be made");
                Page::PortalFailed.response()
            }
            Err(BeginError::Random) => {
                tracing::error!("the operating system's random source failed");
                Page::StoreFailed.response()
            }
        }
    })
    .await
}

/// `GET /auth/callback?code=…&state=…`: the session, its cookie, and 302 to `return_to`.
pub(crate) async fn callback(
    State(live): State<Arc<Live>>,
    parts: http::request::Parts,
) -> Response {
    with_users(live, "/auth/callback", |_, users| async move {
        let query = parts.uri.query().unwrap_or("");
        let pending = cookies::read(&parts.headers, users.pending_cookie_name());
        let old = cookies::read(&parts.headers, users.cookie_name());
        let mut response = match users.complete(pending, query).await {
            Ok(finished) => {
                // A session this browser had before is signed out: a sign-in
                // always starts a new session under a new id.
                if let Ok(Some((session, _))) = users.lookup(old).await {
                    users.sign_out(&session).await;
                }
                let mut r = redirect(&finished.return_to);
                r.headers_mut().append(
                    header::SET_COOKIE,
                    cookies::set(users.cookie_name(), &finished.id, finished.max_age),
                );
                r
            }
            Err(CallbackError::NoSignIn) => {
                tracing::info!("a sign-in callback without a pending sign-in in this browser");
                Page::NoSignIn.response()
            }
            Err(CallbackError::StateMismatch) => {
                tracing::warn!("a sign-in callback whose state is not this browser's: refused");
                Page::StateMismatch.response()
            }
            Err(CallbackError::Declined) => {
                tracing::info!("a user declined the sign-in");
                Page::Declined.response()
            }
            Err(CallbackError::Portal(err)) => {
                tracing::warn!(error = %err, "the portal did not complete a sign-in");
                Page::PortalFailed.response()
            }
            Err(CallbackError::Store(err)) => {
                tracing::warn!(error = %err, "a sign-in could not be completed in the store");
                Page::StoreFailed.response()
            }
        };
        response.headers_mut().append(
            header::SET_COOKIE,
            cookies::clear(users.pending_cookie_name()),
        );
        response
    })
    .await
}

/// `POST /auth/sign-out`, from this gateway's own origin only: the refresh
/// token revoked, the session deleted, the cookie cleared.
pub(crate) async fn sign_out(
    State(live): State<Arc<Live>>,
    parts: http::request::Parts,
) -> Response {
    with_users(live, "/auth/sign-out", |_, users| async move {
        if !same_origin(&parts.headers, &users.config().public_origin()) {
            tracing::info!("refused a sign-out from another origin, or without Origin");
            return reply::error(
                StatusCode::FORBIDDEN,
                "sign-out is accepted only from this site's own pages (Origin)",
            );
        }
        let id = cookies::read(&parts.headers, users.cookie_name());
        match users.lookup(id).await {
            Ok(Some((session, _))) => {
                let report = users.sign_out(&session).await;
                if let Err(err) = &report.revoked {
                    tracing::warn!(error = %err, "the refresh token could not be revoked at the portal");
                }
                if let Err(err) = &report.deleted {
                    tracing::error!(error = %err, "a signed-out session could not be deleted from the store");
                    return reply::error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the session could not be ended: try again",
                    );
                }
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "the session store did not answer a sign-out");
                return reply::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the session could not be ended: try again",
                );
            }
        }
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        r.headers_mut()
            .append(header::SET_COOKIE, cookies::clear(users.cookie_name()));
        r
    })
    .await
}

/// `GET /auth/me`: who is signed in, never a token; 401 without a session.
pub(crate) async fn me(State(live): State<Arc<Live>>, parts: http::request::Parts) -> Response {
    with_users(live, "/auth/me", |_, users| async move {
        let id = cookies::read(&parts.headers, users.cookie_name());
        match users.lookup(id).await {
            Ok(Some((_, who))) => reply::json_response(
                StatusCode::OK,
                &json!({
                    "username": who.username,
                    "portal": who.portal,
                    "expires_at": who.ends_at.as_unix_millis(),
                }),
            ),
            Ok(None) => not_signed_in(),
            Err(err) => {
                tracing::warn!(error = %err, "the session store did not answer");
                reply::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "sessions cannot be read right now: try again",
                )
            }
        }
    })
    .await
}

/// `405` for a method other than POST on `/auth/sign-out`.
pub(crate) async fn post_only(State(live): State<Arc<Live>>) -> Response {
    if live.current().users.is_none() {
        return reply::error(StatusCode::NOT_FOUND, "no such endpoint on this gateway");
    }
    let mut r = reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        "this endpoint of the gateway answers POST only",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// The 401 of a request without a valid session.
pub(crate) fn not_signed_in() -> Response {
    reply::error(
        StatusCode::UNAUTHORIZED,
        "not signed in, or the session ended: sign in at /auth/sign-in",
    )
}

fn redirect(location: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(header::LOCATION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Whether the request's `Origin` is exactly `origin` (`Referer` is not enough).
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let mut all = headers.get_all(header::ORIGIN).iter();
    match (all.next(), all.next()) {
        (Some(v), None) => v
            .to_str()
            .is_ok_and(|v| v.trim().eq_ignore_ascii_case(origin)),
        _ => false,
    }
}
