//! Small JSON calls to the portal (`community/self`, `portals/self`,
//! `validateAppAccess`), read and classified like every ArcGIS answer.

use arcgis_auth_core::{Error, ErrorKind, HttpClient, SecretString, classify_response};
use http::header::CONTENT_TYPE;
use secrecy::ExposeSecret;
use url::Url;

/// The largest answer read here (these answers are a few KiB).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// `url` without its query, for messages.
pub(crate) fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// POST `form` plus `f=json` to `url`; `token`, when given, travels as a
/// `token` form field (never in the query).
pub(crate) async fn post_json(
    http: &HttpClient,
    url: &Url,
    form: &[(&str, &str)],
    token: Option<&SecretString>,
) -> Result<Vec<u8>, Error> {
    if token.is_some() && !arcgis_auth_core::is_secure_or_loopback(url) {
        return Err(Error::new(
            ErrorKind::InsecureTransport,
            format!(
                "refusing to send a token to {} over plain http: use https",
                redact(url)
            ),
        ));
    }
    // The serializer is not `Send`: it must be gone before the `.await`
    // below, or this future (and `Account::user`) could not run on a
    // multi-threaded runtime or in a web framework's handler.
    let body = {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.append_pair("f", "json");
        for (k, v) in form {
            body.append_pair(k, v);
        }
        if let Some(t) = token {
            body.append_pair("token", t.expose_secret());
        }
        body.finish()
    };
    let request = http
        .reqwest()
        .post(url.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    send(request, url).await
}

/// Sends `request` (bound for `url`) and returns the body of a successful
/// answer, read up to [`MAX_BODY`] bytes, or the typed error the answer carries.
pub(crate) async fn send(request: reqwest::RequestBuilder, url: &Url) -> Result<Vec<u8>, Error> {
    let where_ = redact(url);
    let transport = |e: reqwest::Error| {
        Error::new(
            ErrorKind::Transport,
            format!(
                "no answer from {where_} ({}): check the network and the URL",
                e.without_url()
            ),
        )
    };
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::new(
                ErrorKind::UnparseableResponse,
                format!("{where_} answered with more than {MAX_BODY} bytes: check the URL"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    classify_response(status, content_type.as_deref(), &body)?;
    Ok(body)
}
