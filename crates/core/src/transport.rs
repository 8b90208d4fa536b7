//! The HTTP shim: `reqwest` 0.13 under `oauth2`, taught to read ArcGIS answers.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, StatusCode};
use oauth2::{HttpRequest, HttpResponse};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::classify::{EndpointKind, classify};
use crate::error::{Error, ErrorKind, Result};
use crate::error_response::ArcGisErrorResponse;
use crate::origin::is_secure_or_loopback;
use crate::portal::redact_query;

/// Form or query parameters whose value is a credential.
const CREDENTIAL_PARAMS: &[&str] = &[
    "password",
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "auth_token",
    "access_token",
];

/// Headers whose value is a credential.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "x-esri-authorization"];

/// The largest answer read from an auth endpoint (token answers are a few KiB).
const MAX_BODY: usize = 1024 * 1024;

/// An HTTP client for ArcGIS auth endpoints: a `reqwest::Client` with
/// redirects **disabled**, implementing [`oauth2::AsyncHttpClient`].
///
/// What it adds to plain `reqwest`:
/// - a request carrying a credential (password, client secret, code, PKCE
///   verifier, refresh or access token, in the form, query or an
///   `Authorization` header) to a plain `http://` URL that is not loopback is
///   refused with [`ErrorKind::InsecureTransport`] before anything is sent;
/// - a redirect (e.g. to a login page) becomes a typed error instead of being
///   followed with the credentials;
/// - as an `oauth2` client, it rewrites every failed answer (ArcGIS's
///   200-with-an-error-body, real error statuses, HTML pages, empty bodies) to
///   HTTP 400 with an [`ArcGisErrorResponse`] body, so `oauth2` reports
///   [`RequestTokenError::ServerResponse`](oauth2::RequestTokenError::ServerResponse)
///   carrying the right [`ErrorKind`]; successful JSON answers get status 200 and
///   an `application/json` content type whatever ArcGIS labelled them;
/// - answers larger than 1 MiB are refused.
///
/// Cloning is cheap and shares the connection pool.
///
/// ```
/// use arcgis_auth_core::HttpClient;
///
/// let http = HttpClient::new().expect("TLS backend available");
/// // Configure timeouts, proxies, user agent on a builder; redirects are switched off regardless.
/// let custom = HttpClient::from_builder(
///     reqwest::Client::builder().user_agent("my-app/1.0"),
/// ).unwrap();
/// # let _ = (http, custom);
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

/// A raw answer, before classification.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }

    /// Classifies an auth endpoint's answer; `Ok` only for a JSON object without an error.
    pub(crate) fn check(&self, endpoint: EndpointKind) -> Result<()> {
        let location = self.headers.get(LOCATION).and_then(|v| v.to_str().ok());
        classify(
            endpoint,
            true,
            self.status,
            self.content_type(),
            location,
            &self.body,
        )
        .map_err(|e| match retry_after(&self.headers) {
            Some(wait) if e.kind().is_transient() => e.with_retry_after(wait),
            _ => e,
        })
    }
}

/// `Retry-After` in delta-seconds, capped at an hour (HTTP dates are ignored).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

impl HttpClient {
    /// A client with redirects disabled, a 10-second connect timeout and a
    /// 60-second overall timeout.
    pub fn new() -> Result<Self> {
        HttpClient::from_builder(
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60)),
        )
    }

    /// A client from your own `reqwest` builder (proxies, timeouts, user
    /// agent, root certificates). Redirects are disabled whatever the builder says.
    pub fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self> {
        let inner = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Transport,
                    format!("could not build the HTTP client ({e}): check the TLS setup"),
                )
                .with_source(e)
            })?;
        Ok(HttpClient { inner })
    }

    /// The underlying `reqwest` client (redirects disabled).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends `request` after the credential check; reads at most 1 MiB of answer.
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<Answer> {
        let url = Url::parse(&request.uri().to_string()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("not a valid request URL ({e})"),
            )
            .with_source(e)
        })?;
        refuse_insecure_credentials(&url, &request)?;
        let where_ = redact_query(&url);
        let request = reqwest::Request::try_from(request).map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "could not build the request to {where_} ({})",
                    e.without_url()
                ),
            )
        })?;
        let mut response = self
            .inner
            .execute(request)
            .await
            .map_err(|e| transport_error(&where_, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(&where_, e))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Error::new(
                    ErrorKind::UnparseableResponse,
                    format!(
                        "{where_} answered with more than {MAX_BODY} bytes: that is not a token \
                         answer; check the URL"
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// POSTs `form` (plus `f=json`) to `url` and returns the body of a
    /// successful answer, or the typed error the answer carries.
    pub(crate) async fn post_form(
        &self,
        endpoint: EndpointKind,
        url: &Url,
        form: &[(&str, FormValue<'_>)],
    ) -> Result<Vec<u8>> {
        let request = form_request(url, form)?;
        let answer = self.send(request).await?;
        answer.check(endpoint)?;
        Ok(answer.body)
    }

    /// What `oauth2` sees: transport failures as `Err`, every other failure
    /// rewritten to HTTP 400 with an [`ArcGisErrorResponse`] body.
    async fn call_for_oauth2(&self, request: HttpRequest) -> Result<HttpResponse> {
        let answer = self.send(request).await?;
        let (status, body) = match answer.check(EndpointKind::Token) {
            Ok(()) => (StatusCode::OK, answer.body),
            Err(e) => {
                let rewritten = ArcGisErrorResponse::from_error(&e, Some(answer.status.as_u16()));
                let body = serde_json::to_vec(&rewritten).map_err(|se| {
                    Error::new(
                        ErrorKind::UnparseableResponse,
                        format!("could not re-encode an ArcGIS error ({se})"),
                    )
                })?;
                (StatusCode::BAD_REQUEST, body)
            }
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(response)
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for HttpClient {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.call_for_oauth2(request))
    }
}

/// A form value: plain, or a secret exposed only while the body is encoded.
pub(crate) enum FormValue<'a> {
    Plain(&'a str),
    Secret(&'a SecretString),
}

/// A `application/x-www-form-urlencoded` POST with `f=json` appended.
pub(crate) fn form_request(url: &Url, form: &[(&str, FormValue<'_>)]) -> Result<HttpRequest> {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        match v {
            FormValue::Plain(s) => ser.append_pair(k, s),
            FormValue::Secret(s) => ser.append_pair(k, s.expose_secret()),
        };
    }
    ser.append_pair("f", "json");
    http::Request::builder()
        .method(http::Method::POST)
        .uri(url.as_str())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(ser.finish().into_bytes())
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                format!("could not build a request to {} ({e})", redact_query(url)),
            )
        })
}

/// Refuses a credential bound for plain `http://` to a host that is not loopback.
pub(crate) fn refuse_insecure_credentials(url: &Url, request: &HttpRequest) -> Result<()> {
    if is_secure_or_loopback(url) {
        return Ok(());
    }
    let in_query = url
        .query_pairs()
        .any(|(k, _)| CREDENTIAL_PARAMS.contains(&k.as_ref()));
    let in_body = url::form_urlencoded::parse(request.body())
        .any(|(k, _)| CREDENTIAL_PARAMS.contains(&k.as_ref()));
    let in_headers = request
        .headers()
        .keys()
        .any(|h| CREDENTIAL_HEADERS.contains(&h.as_str()));
    if in_query || in_body || in_headers {
        return Err(insecure(url));
    }
    Ok(())
}

/// The error for a credential that would travel in clear text.
pub(crate) fn insecure(url: &Url) -> Error {
    Error::new(
        ErrorKind::InsecureTransport,
        format!(
            "refusing to send credentials over plain http to {}: use the https:// URL \
             (plain http is only allowed to loopback addresses)",
            redact_query(url)
        ),
    )
}

fn transport_error(where_: &str, e: reqwest::Error) -> Error {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let e = e.without_url();
    Error::new(
        ErrorKind::Transport,
        format!("the request to {where_} {what} ({e}): check the network and retry"),
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, body: &str) -> HttpRequest {
        http::Request::builder()
            .method("POST")
            .uri(url)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn credentials_never_go_to_remote_plain_http() {
        let remote = Url::parse("http://gis.example.com/portal/sharing/rest/oauth2/token").unwrap();
        for body in [
            "grant_type=client_credentials&client_id=x&client_secret=s",
            "grant_type=authorization_code&code=c",
            "refresh_token=r",
            "username=u&password=p",
            "token=t&serverUrl=x",
            "auth_token=t",
        ] {
            let e = refuse_insecure_credentials(&remote, &req(remote.as_str(), body)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InsecureTransport, "{body}");
        }
        let with_header = http::Request::builder()
            .uri(remote.as_str())
            .header("X-Esri-Authorization", "Bearer t")
            .body(Vec::new())
            .unwrap();
        assert!(refuse_insecure_credentials(&remote, &with_header).is_err());
        let q = Url::parse("http://gis.example.com/x?token=t").unwrap();
        assert!(refuse_insecure_credentials(&q, &req(q.as_str(), "")).is_err());
        // No credential: allowed (e.g. public portal info).
        assert!(refuse_insecure_credentials(&remote, &req(remote.as_str(), "f=json")).is_ok());
        // Loopback and https: allowed.
        for ok in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://localhost/x",
            "https://gis.example.com/x",
        ] {
            let u = Url::parse(ok).unwrap();
            assert!(
                refuse_insecure_credentials(&u, &req(ok, "client_secret=s")).is_ok(),
                "{ok}"
            );
        }
    }

    #[tokio::test]
    async fn the_shim_refuses_before_sending() {
        // Port 9 on a documentation address: if anything were sent, this would be
        // a Transport error (or hang), not InsecureTransport.
        let http = HttpClient::new().unwrap();
        let e = oauth2::AsyncHttpClient::call(
            &http,
            req(
                "http://192.0.2.1:9/sharing/rest/oauth2/token",
                "client_secret=s",
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InsecureTransport);
        assert!(!e.to_string().contains("client_secret=s"));
    }
}
