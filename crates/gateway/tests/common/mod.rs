//! The test bench: a fake portal with a standalone server, loopback upstreams
//! (one allowed, one "attacker" at a look-alike address) and a gateway in front.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::TcpListener;

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_gateway::{Config, Gateway};
use arcgis_auth_testkit::{
    App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, PASSWORD, Server, USERNAME,
};
use wiremock::MockServer;

pub mod bff;
pub mod binary;

pub const ORIGIN: &str = "https://app.example.com";
pub const STANDALONE: &str = "standalone";

pub struct Bench {
    pub portal: FakePortal,
    /// The allowed upstream, on 127.0.0.1.
    pub upstream: MockServer,
    /// The attacker, on 127.0.0.10 with the same port: a host that string-prefix matching confuses.
    pub evil: MockServer,
    pub gateway: Gateway,
    /// `http://127.0.0.1:PORT` of the gateway.
    pub base: String,
    pub client: reqwest::Client,
    /// The configuration the gateway was built from.
    pub text: String,
}

pub fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "GEO_SECRET".to_owned(),
            CONFIDENTIAL_CLIENT_SECRET.to_owned(),
        ),
        ("GIS_PASSWORD".to_owned(), PASSWORD.to_owned()),
    ])
}

impl Bench {
    pub async fn start() -> Bench {
        Bench::start_with("").await
    }

    /// A bench whose configuration gets `extra` appended (more routes, settings).
    pub async fn start_with(extra: &str) -> Bench {
        let portal = FakePortal::builder()
            .app(App::confidential(
                CONFIDENTIAL_CLIENT_ID,
                CONFIDENTIAL_CLIENT_SECRET,
            ))
            .user(USERNAME, PASSWORD)
            .server(Server::standalone(STANDALONE))
            .start()
            .await;
        // The same port on 127.0.0.10 may be taken (by a listener on 0.0.0.0, or
        // another test's attacker shutting down): try another. Fresh servers,
        // not wiremock's pool, which hands the same ports back.
        let (upstream, evil_listener) = {
            let mut tries = 0;
            let mut taken = Vec::new();
            loop {
                let upstream = MockServer::builder().start().await;
                match TcpListener::bind(("127.0.0.10", upstream.address().port())) {
                    Ok(l) => break (upstream, l),
                    Err(e) if tries > 20 => {
                        panic!("no free port pair on 127.0.0.1/127.0.0.10: {e}")
                    }
                    Err(_) => {
                        tries += 1;
                        taken.push(upstream);
                    }
                }
            }
        };
        let port = upstream.address().port();
        let evil = MockServer::builder().listener(evil_listener).start().await;
        let server = portal
            .server(STANDALONE)
            .expect("standalone server")
            .root_url();
        let text = format!(
            r#"
listen = "127.0.0.1:0"
portal = "{portal}"
allowed_origins = ["{ORIGIN}"]
{extra_top}

[[apps]]
name = "geo"
client_id = "{CONFIDENTIAL_CLIENT_ID}"
client_secret_env = "GEO_SECRET"
vend = true

[[apps]]
name = "quiet"
client_id = "{CONFIDENTIAL_CLIENT_ID}"
client_secret_env = "GEO_SECRET"

[[servers]]
name = "gis"
url = "{server}"
username = "{USERNAME}"
password_env = "GIS_PASSWORD"

[[routes]]
url = "{root}/sharing/rest/content/items"
match_all = true
auth = "app:geo"

[[routes]]
url = "{server}/rest/services"
match_all = true
auth = "server:gis"

[[routes]]
url = "{server}/admin"
match_all = true
auth = "server:gis"

[[routes]]
url = "http://127.0.0.1:{port}/open"
match_all = true
auth = "none"

[[routes]]
url = "http://127.0.0.1:{port}/secure"
match_all = true
auth = "app:geo"

[[routes]]
url = "http://127.0.0.1:{port}/exact/MapServer"
auth = "app:geo"

[[routes]]
url = "http://127.0.0.1:{port}/limited"
match_all = true
auth = "none"
rate_limit = {{ requests = 2, per_seconds = 3600 }}

[[routes]]
url = "http://127.0.0.1:1/closed"
match_all = true
auth = "none"
"#,
            portal = portal.portal_url(),
            root = portal.url_root(),
            extra_top = extra,
        );
        let config = Config::from_toml(&text, &env()).expect("valid config");
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let gateway = Gateway::new(config).await.expect("gateway");
        tokio::spawn(arcgis_auth_gateway::serve(
            listener,
            gateway.clone(),
            std::future::pending(),
        ));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Bench {
            portal,
            upstream,
            evil,
            gateway,
            base,
            client,
            text,
        }
    }

    pub fn port(&self) -> u16 {
        self.upstream.address().port()
    }

    /// `http://127.0.0.1:PORT{path}` of the allowed upstream.
    pub fn up(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port())
    }

    /// `{gateway}/proxy?{target}`.
    pub fn proxy(&self, target: &str) -> String {
        format!("{}/proxy?{target}", self.base)
    }

    /// A GET through the proxy from the allowed origin.
    pub async fn get(&self, target: &str) -> reqwest::Response {
        self.client
            .get(self.proxy(target))
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("gateway answers")
    }

    /// Every token the portal and its servers issued, as text.
    pub fn issued(&self) -> Vec<String> {
        self.portal
            .issued_tokens()
            .iter()
            .map(|t| t.token.expose_secret().to_owned())
            .collect()
    }

    /// Requests the attacker's listener received (must stay zero).
    pub async fn evil_requests(&self) -> usize {
        self.evil
            .received_requests()
            .await
            .unwrap_or_default()
            .len()
    }

    /// Requests the allowed upstream received.
    pub async fn upstream_requests(&self) -> Vec<wiremock::Request> {
        self.upstream.received_requests().await.unwrap_or_default()
    }

    /// Asserts that no token the portal issued reached the attacker, or any
    /// upstream request on a route without auth.
    pub async fn assert_no_token_left(&self) {
        assert_eq!(
            self.evil_requests().await,
            0,
            "the attacker's listener was reached"
        );
        let tokens = self.issued();
        for r in self.upstream_requests().await {
            if !r.url.path().starts_with("/open") {
                continue;
            }
            let text = request_text(&r);
            for t in &tokens {
                assert!(!text.contains(t.as_str()), "a token reached {}", r.url);
            }
        }
    }
}

/// A request's URL, headers and body as one text, to search for secrets.
pub fn request_text(r: &wiremock::Request) -> String {
    let mut text = r.url.to_string();
    for (name, value) in &r.headers {
        text.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or("")));
    }
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&r.body));
    text
}

/// The JSON body of an answer, and checks it is an ArcGIS-shaped error with the same status.
pub async fn arcgis_error(response: reqwest::Response) -> serde_json::Value {
    let status = response.status().as_u16();
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], status, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body
}
