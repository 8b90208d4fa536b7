//! Plain-reqwest helpers shared by the testkit's own tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use arcgis_auth_core::oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use arcgis_auth_testkit::FakePortal;
use serde_json::Value;
use url::Url;

/// A client that does not follow redirects, so tests can read `Location`.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// POSTs a form and parses the JSON answer, asserting HTTP 200.
pub async fn post_json(url: &str, form: &[(&str, &str)]) -> Value {
    let response = client().post(url).form(form).send().await.unwrap();
    assert_eq!(response.status(), 200, "POST {url}");
    response.json().await.unwrap()
}

/// POSTs to the token endpoint with `f=json`.
pub async fn token(portal: &FakePortal, form: &[(&str, &str)]) -> Value {
    let mut form = form.to_vec();
    form.push(("f", "json"));
    post_json(&portal.url("oauth2/token"), &form).await
}

/// GETs `url` with `token` in `X-Esri-Authorization` (or none) and parses JSON.
pub async fn get_with_token(url: &str, token: Option<&str>) -> Value {
    let mut request = client().get(with_query(url, &[("f", "json")]));
    if let Some(t) = token {
        request = request.header("X-Esri-Authorization", format!("Bearer {t}"));
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.unwrap()
}

/// GETs `oauth2/authorize` with these parameters and returns the redirect target.
pub async fn authorize_location(portal: &FakePortal, params: &[(&str, &str)]) -> Url {
    let response = client()
        .get(with_query(&portal.url("oauth2/authorize"), params))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302, "authorize should redirect");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    Url::parse(&location).unwrap()
}

/// `url` with these query parameters appended.
pub fn with_query(url: &str, params: &[(&str, &str)]) -> Url {
    let mut url = Url::parse(url).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url
}

/// A query parameter of `url`.
pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An S256 PKCE pair from the oauth2 crate (the one clients use).
pub fn pkce() -> (PkceCodeChallenge, PkceCodeVerifier) {
    PkceCodeChallenge::new_random_sha256()
}

/// Runs the code flow for the default public app with S256 PKCE and returns the token answer.
pub async fn sign_in(portal: &FakePortal) -> Value {
    let (challenge, verifier) = pkce();
    let redirect = "http://127.0.0.1:8765/callback";
    let location = authorize_location(
        portal,
        &[
            ("client_id", arcgis_auth_testkit::PUBLIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let code = query(&location, "code").expect("a code");
    token(
        portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", arcgis_auth_testkit::PUBLIC_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.secret()),
        ],
    )
    .await
}

/// The `error.code` of an ArcGIS error body.
pub fn error_code(body: &Value) -> Option<i64> {
    body["error"]["code"].as_i64()
}

/// GETs `oauth2/authorize` with these parameters, without following redirects.
pub async fn authorize_response(portal: &FakePortal, params: &[(&str, &str)]) -> reqwest::Response {
    client()
        .get(with_query(&portal.url("oauth2/authorize"), params))
        .send()
        .await
        .unwrap()
}

/// Whether the answer is an HTML page.
pub fn is_html(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"))
}

/// Sends the request and parses the JSON answer.
pub async fn send_json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The `refresh_token` grant.
pub async fn refresh_grant(portal: &FakePortal, client_id: &str, refresh_token: &str) -> Value {
    token(
        portal,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// The `client_credentials` grant.
pub async fn app_sign_in(portal: &FakePortal, client_id: &str, secret: &str) -> Value {
    token(
        portal,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ],
    )
    .await
}
