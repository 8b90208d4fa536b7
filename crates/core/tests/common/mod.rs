//! Shared helpers for the wire tests: a wiremock portal on loopback, a client
//! with a manual clock, and secret-free form snapshots.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use arcgis_auth_core::{
    GenerateTokenRequest, HttpClient, ManualClock, OAuthClient, Portal, RefreshToken, SecretString,
    ServerRoot, Timestamp, TokenBinding, TokenTypeHint,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The instant every test starts at.
pub const T0: Timestamp = Timestamp::from_unix_millis(1_732_200_000_000);

pub const CLIENT_ID: &str = "test-client-id";
pub const CLIENT_SECRET: &str = "CLIENT-SECRET-VALUE";
pub const REFRESH: &str = "REFRESH-TOKEN-VALUE";
pub const ACCESS: &str = "ACCESS-TOKEN-VALUE";
pub const CODE: &str = "AUTH-CODE-VALUE";
pub const PASSWORD: &str = "PASSWORD-VALUE";
pub const VERIFIER: &str = "VERIFIER-VALUE-0123456789-0123456789-0123456789";
pub const REDIRECT: &str = "http://127.0.0.1:8765/callback";

/// Every secret value the tests send or receive; none may appear in output.
pub const SECRETS: &[&str] = &[CLIENT_SECRET, REFRESH, ACCESS, CODE, PASSWORD, VERIFIER];

/// Form parameters whose values are replaced before snapshotting.
const SECRET_PARAMS: &[&str] = &[
    "client_secret",
    "code",
    "code_verifier",
    "refresh_token",
    "password",
    "token",
    "auth_token",
];

pub const TOKEN_PATH: &str = "/portal/sharing/rest/oauth2/token";
pub const REVOKE_PATH: &str = "/portal/sharing/rest/oauth2/revokeToken";
pub const GENERATE_PATH: &str = "/portal/sharing/rest/generateToken";

pub struct Harness {
    pub server: MockServer,
    pub portal: Portal,
    pub clock: ManualClock,
    pub client: OAuthClient,
}

pub fn http() -> HttpClient {
    // No proxy: the tests talk to loopback only.
    HttpClient::from_builder(reqwest::Client::builder().no_proxy()).unwrap()
}

pub async fn harness() -> Harness {
    let server = MockServer::start().await;
    let portal = Portal::parse(&format!("{}/portal/sharing/rest", server.uri())).unwrap();
    let clock = ManualClock::new(T0);
    let client = OAuthClient::new(portal.clone(), CLIENT_ID, http())
        .with_client_secret(SecretString::from(CLIENT_SECRET))
        .with_clock(Arc::new(clock.clone()));
    Harness {
        server,
        portal,
        clock,
        client,
    }
}

impl Harness {
    /// The same portal, as a public client (no secret).
    pub fn public_client(&self) -> OAuthClient {
        OAuthClient::new(self.portal.clone(), CLIENT_ID, http())
            .with_clock(Arc::new(self.clock.clone()))
    }

    pub async fn answer(&self, at: &str, response: ResponseTemplate) {
        self.server.reset().await;
        Mock::given(method("POST"))
            .and(path(at))
            .respond_with(response)
            .mount(&self.server)
            .await;
    }

    /// The one request received, as a secret-free snapshot of its form body.
    pub async fn only_request_form(&self) -> String {
        let requests = self.server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        let req = &requests[0];
        assert!(
            !req.headers.contains_key("authorization"),
            "client credentials must never travel in an Authorization header"
        );
        assert_eq!(
            req.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/x-www-form-urlencoded")
        );
        assert!(
            req.url.query().is_none(),
            "nothing may travel in the URL query"
        );
        redacted_form(&req.body)
    }
}

/// `key=value` lines with secret values replaced by a fixed marker.
pub fn redacted_form(body: &[u8]) -> String {
    let mut out = String::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        let v = if SECRET_PARAMS.contains(&k.as_ref()) {
            "[SECRET]".to_owned()
        } else {
            v.into_owned()
        };
        out.push_str(&format!("{k}={v}\n"));
    }
    assert_no_secret(&out);
    out
}

pub fn assert_no_secret(text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "secret {s} leaked into: {text}");
    }
}

pub fn refresh_token() -> RefreshToken {
    RefreshToken::new(SecretString::from(REFRESH), T0, None)
}

pub fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

pub fn user_token_body() -> String {
    format!(
        r#"{{"access_token":"{ACCESS}","expires_in":1800,"username":"jdoe","ssl":true,"refresh_token":"{REFRESH}-NEW","refresh_token_expires_in":1209599}}"#
    )
}

/// The error bodies of ARCGIS-WIRE.md, with the HTTP status a service using
/// real statuses would send.
pub const WIRE_ERRORS: &[(&str, u16, &str)] = &[
    (
        "invalid_redirect_uri",
        400,
        r#"{"error":{"code":400,"error":"invalid_request","error_description":"Invalid redirect_uri","message":"Invalid redirect_uri","details":[]}}"#,
    ),
    (
        "invalid_client_id",
        400,
        r#"{"error":{"code":400,"error":"invalid_client_id","error_description":"Invalid client_id","message":"Invalid client_id","details":[]}}"#,
    ),
    (
        "refresh_token_expired",
        498,
        r#"{"error":{"code":498,"error":"invalid_request","error_description":"refresh_token expired","message":"refresh_token expired","details":[]}}"#,
    ),
    (
        "invalid_token",
        498,
        r#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#,
    ),
    (
        "token_required",
        499,
        r#"{"error":{"code":499,"message":"Token Required","messageCode":"GWM_0003","details":[]}}"#,
    ),
    (
        "forbidden",
        403,
        r#"{"error":{"code":403,"message":"You do not have permissions to access this resource or perform this operation.","messageCode":"GWM_0003","details":[]}}"#,
    ),
];

/// Which grant a failure test drives.
#[derive(Debug, Clone, Copy)]
pub enum Grant {
    Code,
    ClientCredentials,
    Refresh,
    Exchange,
    Revoke,
    GeneratePassword,
    GenerateFederated,
}

pub const GRANTS: [Grant; 7] = [
    Grant::Code,
    Grant::ClientCredentials,
    Grant::Refresh,
    Grant::Exchange,
    Grant::Revoke,
    Grant::GeneratePassword,
    Grant::GenerateFederated,
];

impl Grant {
    pub fn path(self) -> &'static str {
        match self {
            Grant::Revoke => REVOKE_PATH,
            Grant::GeneratePassword | Grant::GenerateFederated => GENERATE_PATH,
            _ => TOKEN_PATH,
        }
    }

    pub fn at_token_endpoint(self) -> bool {
        !matches!(self, Grant::GeneratePassword | Grant::GenerateFederated)
    }

    /// Runs this grant with `c` and the test's fixed credentials.
    pub async fn run(self, c: &OAuthClient) -> arcgis_auth_core::Result<()> {
        match self {
            Grant::Code => c
                .exchange_code(
                    &SecretString::from(CODE),
                    Some(&SecretString::from(VERIFIER)),
                    REDIRECT,
                )
                .await
                .map(drop),
            Grant::ClientCredentials => c.client_credentials(None).await.map(drop),
            Grant::Refresh => c.refresh(&refresh_token()).await.map(drop),
            Grant::Exchange => c
                .exchange_refresh_token(&refresh_token(), REDIRECT)
                .await
                .map(drop),
            Grant::Revoke => {
                c.revoke(&SecretString::from(REFRESH), TokenTypeHint::RefreshToken)
                    .await
            }
            Grant::GeneratePassword => c
                .generate_token(&GenerateTokenRequest::password(
                    "jdoe",
                    SecretString::from(PASSWORD),
                    TokenBinding::RequestIp,
                ))
                .await
                .map(drop),
            Grant::GenerateFederated => {
                let server = ServerRoot::parse("https://gis.example.com/server").unwrap();
                c.generate_token(&GenerateTokenRequest::federated(
                    SecretString::from(ACCESS),
                    &server,
                ))
                .await
                .map(drop)
            }
        }
    }
}

/// A token-endpoint answer with only an access token (app tokens, refreshes).
pub fn access_only_body(expires_in: u64) -> String {
    format!(r#"{{"access_token":"{ACCESS}","expires_in":{expires_in}}}"#)
}
