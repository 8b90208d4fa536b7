//! The pages a browser sees when a sign-in cannot finish: fixed text, nothing from the request.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// Why a sign-in did not finish, as the page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Page {
    /// The callback's `state` is not the one this browser's sign-in sent.
    StateMismatch,
    /// No sign-in was started in this browser, or it expired.
    NoSignIn,
    /// The user declined at the portal.
    Declined,
    /// The portal refused or failed the code exchange.
    PortalFailed,
    /// The session store did not answer.
    StoreFailed,
    /// `return_to` is not a path on this site.
    BadReturnTo,
}

impl Page {
    fn status_and_text(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Page::StateMismatch => (
                StatusCode::BAD_REQUEST,
                "Sign-in not completed",
                "This answer from the portal does not belong to the sign-in this browser \
                 started, so it was not used. Sign in again.",
            ),
            Page::NoSignIn => (
                StatusCode::BAD_REQUEST,
                "Sign-in not completed",
                "No sign-in was started in this browser, or it took longer than ten minutes. \
                 Sign in again.",
            ),
            Page::Declined => (
                StatusCode::FORBIDDEN,
                "Sign-in declined",
                "The sign-in was declined at the portal, so you are not signed in.",
            ),
            Page::PortalFailed => (
                StatusCode::BAD_GATEWAY,
                "Sign-in not completed",
                "The portal did not complete the sign-in. Sign in again; if it keeps \
                 failing, tell the site's operator.",
            ),
            Page::StoreFailed => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "Sessions cannot be kept right now. Try again shortly.",
            ),
            Page::BadReturnTo => (
                StatusCode::BAD_REQUEST,
                "Sign-in not started",
                "The page to come back to must be a page of this site.",
            ),
        }
    }

    /// The page as an answer: HTML with no script, never cached.
    pub(crate) fn response(self) -> Response {
        let (status, title, text) = self.status_and_text();
        let html = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<p>{text}</p>\n\
             <p><a href=\"/auth/sign-in\">Sign in</a></p>\n</body>\n</html>\n"
        );
        let mut r = Response::new(Body::from(html));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'"),
        );
        h.insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        r
    }
}
