//! Reading requests and writing ArcGIS-shaped answers.

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

/// Parameter names whose values are secrets: seeing one in a URL query is a
/// client bug worth counting.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "refresh_token",
    "client_secret",
    "password",
    "code_verifier",
];

/// A request's parameters: the form body (for urlencoded POSTs) and the query.
#[derive(Debug, Default)]
pub(crate) struct Params {
    body: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn of(request: &Request) -> Params {
        let query = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let is_form = request
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        let body = if is_form {
            url::form_urlencoded::parse(&request.body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        } else {
            Vec::new()
        };
        Params { body, query }
    }

    /// Parameters from a URL query only, for unit tests.
    #[cfg(test)]
    pub(crate) fn from_query(pairs: &[(&str, &str)]) -> Params {
        Params {
            body: Vec::new(),
            query: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// A parameter from the body, else from the query; empty values count as missing.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        find(&self.body, name).or_else(|| find(&self.query, name))
    }

    /// A parameter from the body only.
    pub(crate) fn body(&self, name: &str) -> Option<&str> {
        find(&self.body, name)
    }

    /// A parameter from the query only.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        find(&self.query, name)
    }

    /// Whether a secret travelled in the URL query.
    pub(crate) fn secret_in_query(&self) -> bool {
        self.query
            .iter()
            .any(|(k, v)| !v.is_empty() && SECRET_PARAMS.contains(&k.as_str()))
    }

    /// Whether `f=json` or `f=pjson` was asked for.
    pub(crate) fn wants_json(&self) -> bool {
        matches!(self.get("f"), Some("json" | "pjson"))
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The token a request carries: `X-Esri-Authorization: Bearer`,
/// `Authorization: Bearer`, the form body's `token`, or the query's `token`.
pub(crate) fn presented_token(request: &Request, params: &Params) -> Option<String> {
    for header in ["x-esri-authorization", "authorization"] {
        let bearer = request
            .headers
            .get(header)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let v = v.trim();
                v.get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("bearer "))
                    .and_then(|_| v.get(7..))
                    .map(str::trim)
            })
            .filter(|t| !t.is_empty());
        if let Some(t) = bearer {
            return Some(t.to_owned());
        }
    }
    params
        .body("token")
        .or_else(|| params.query("token"))
        .map(str::to_owned)
}

/// The request's `Referer` header.
pub(crate) fn referer(request: &Request) -> Option<&str> {
    request
        .headers
        .get(http::header::REFERER)
        .and_then(|v| v.to_str().ok())
}

/// HTTP 200 with a JSON body, not cacheable.
pub(crate) fn json_ok(body: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("cache-control", "no-store")
        .set_body_raw(
            body.to_string().into_bytes(),
            "application/json; charset=utf-8",
        )
}

/// An HTML page with this status.
pub(crate) fn html(status: u16, title: &str, message: &str) -> ResponseTemplate {
    let page = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"UTF-8\">\n<title>{}</title>\n</head>\n\
         <body>\n<h1>{}</h1>\n<p>{}</p>\n</body>\n</html>\n",
        escape_html(title),
        escape_html(title),
        escape_html(message)
    );
    ResponseTemplate::new(status).set_body_raw(page.into_bytes(), "text/html; charset=utf-8")
}

/// A 302 to `location`.
pub(crate) fn redirect(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(302)
        .insert_header("location", location)
        .insert_header("cache-control", "no-store")
}

/// An OAuth error body: `{"error":{"code","error","error_description","message","details":[]}}`.
pub(crate) fn oauth_error(code: u16, error: &str, description: &str) -> Value {
    json!({"error": {
        "code": code,
        "error": error,
        "error_description": description,
        "message": description,
        "details": [],
    }})
}

/// A REST error body: `{"error":{"code","message",["messageCode"],"details"}}`.
pub(crate) fn rest_error(
    code: u16,
    message: &str,
    message_code: Option<&str>,
    details: &[&str],
) -> Value {
    let mut error = json!({"code": code, "message": message, "details": details});
    if let (Some(mc), Some(obj)) = (message_code, error.as_object_mut()) {
        obj.insert("messageCode".into(), Value::from(mc));
    }
    json!({ "error": error })
}

/// The portal's answer to an invalid or expired token.
pub(crate) fn invalid_token() -> ResponseTemplate {
    json_ok(rest_error(498, "Invalid token.", None, &[]))
}

/// The portal's answer to a missing token.
pub(crate) fn token_required() -> ResponseTemplate {
    json_ok(rest_error(499, "Token Required", Some("GWM_0003"), &[]))
}

/// The answer to an endpoint asked for without `f=json`: an HTML page, as ArcGIS does.
pub(crate) fn html_without_f_json() -> ResponseTemplate {
    html(
        200,
        "ArcGIS REST API",
        "This fake portal answers JSON only when asked with f=json (as ArcGIS does).",
    )
}

/// ArcGIS's "Invalid URL" answer for unknown paths.
pub(crate) fn invalid_url() -> ResponseTemplate {
    json_ok(rest_error(400, "Invalid URL", None, &["Invalid URL"]))
}

/// The answer to a non-POST request on an endpoint that only takes POST.
pub(crate) fn post_required() -> ResponseTemplate {
    json_ok(oauth_error(
        405,
        "invalid_request",
        "This endpoint only accepts POST with a form body (keep secrets out of URLs)",
    ))
}

pub(crate) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
