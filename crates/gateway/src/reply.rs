//! The gateway's own answers: ArcGIS-shaped JSON errors with a matching status, `?ping`, health.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// `{"error":{"code":…,"message":…,"details":[]}}` with the same HTTP status,
/// `Content-Type: application/json`, never cached. `message` is the
/// gateway's own text: never a target URL, a token or a secret.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": status.as_u16(),
            "message": message,
            "details": [],
        }
    });
    json_response(status, &body)
}

/// A 429 with `Retry-After` (seconds).
pub(crate) fn too_many(retry_after_secs: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests: try again later",
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// resource-proxy's `?ping` answer.
pub(crate) fn ping() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "Proxy Version": concat!("arcgis-auth-gateway ", env!("CARGO_PKG_VERSION")),
            "Configuration File": "OK",
            "Log File": "OK",
        }),
    )
}
