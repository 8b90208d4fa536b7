//! Files of a directory served under a URL prefix, for the pages of the
//! browser tests (the Maps SDK's bundle and its assets). Only paths of
//! plain segments are served (no `..`, no backslash, no empty segment);
//! every path asked for is logged, so a test can say what the page loaded.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Path as UrlPath;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The paths (`{prefix}/{path}`) asked for, in order.
#[derive(Clone, Default)]
pub(crate) struct Served(Arc<Mutex<Vec<String>>>);

impl Served {
    /// Every path asked for so far.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn push(&self, path: String) {
        if let Ok(mut v) = self.0.lock() {
            v.push(path);
        }
    }
}

/// The content type browsers need for a file of this name (module scripts
/// must be JavaScript).
fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "html" => "text/html; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        _ => "application/octet-stream",
    }
}

/// `dir`'s file at `path`, if `path` is made of plain segments.
fn file_in(dir: &Path, path: &str) -> Option<PathBuf> {
    let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('\\');
    path.split('/').all(plain).then(|| dir.join(path))
}

/// Serves `dir`'s files at `{prefix}/{path}` (`prefix` like `/sdk`).
pub(crate) fn serve_dir(prefix: &str, dir: PathBuf, served: Served) -> Router {
    let route = format!("{prefix}/{{*path}}");
    let prefix = prefix.to_owned();
    Router::new().route(
        &route,
        get(move |UrlPath(path): UrlPath<String>| async move {
            served.push(format!("{prefix}/{path}"));
            let Some(file) = file_in(&dir, &path) else {
                return StatusCode::BAD_REQUEST.into_response();
            };
            let read = tokio::task::spawn_blocking({
                let file = file.clone();
                move || std::fs::read(file)
            })
            .await;
            match read {
                Ok(Ok(bytes)) => {
                    let headers = [(header::CONTENT_TYPE, content_type(&file))];
                    (headers, bytes).into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }),
    )
}

/// A response with these bytes, content type and extra headers.
pub(crate) fn with_headers(
    body: &'static str,
    content_type: &'static str,
    headers: &[(&'static str, &'static str)],
) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, header::HeaderValue::from_static(value));
    }
    response
}
