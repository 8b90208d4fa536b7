//! The user sign-in bench: a fake portal with two users and a federated
//! server, a gateway that signs them in, and browsers (cookie jars of their own).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arcgis_auth_core::{ExposeSecret, ManualClock};
use arcgis_auth_gateway::{Config, Gateway};
use arcgis_auth_storage::{MemoryStore, SessionStore};
use arcgis_auth_testkit::{App, FakePortal};

pub const WEB: &str = "web-app-client-id";
pub const FED: &str = "fed";
pub const USER_PREFIX: &str = "gateway/user/";
pub const PENDING_PREFIX: &str = "gateway/user-pending/";
pub const COOKIE: &str = "__Host-arcgis";
pub const PENDING_COOKIE: &str = "__Host-arcgis-pending";
/// The confidential app's secret, in the variable `WEB_SECRET`.
pub const WEB_SECRET: &str = "web-app-secret-value-1";

/// How a bench differs from the default one.
#[derive(Default)]
pub struct Options {
    /// The gateway judges time by this clock (the portal keeps its own).
    pub clock: Option<ManualClock>,
    /// The app is confidential: the gateway sends its secret.
    pub confidential: bool,
    /// Lines added at the top of the configuration.
    pub top: String,
}

/// A fake portal with two users, a gateway that signs them in, and its store.
pub struct Bff {
    pub portal: FakePortal,
    pub store: Arc<dyn SessionStore>,
    pub gateway: Gateway,
    /// `http://127.0.0.1:PORT`, the gateway's public_url.
    pub base: String,
    pub text: String,
    /// The gateway's clock, when the test moves it.
    pub clock: Option<ManualClock>,
}

impl Bff {
    pub async fn start() -> Bff {
        Bff::start_with(Options::default()).await
    }

    /// A bench whose gateway judges time by `clock` (the portal keeps its own).
    pub async fn start_with_clock(clock: Option<ManualClock>) -> Bff {
        Bff::start_with(Options {
            clock,
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(options: Options) -> Bff {
        let Options {
            clock,
            confidential,
            top,
        } = options;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = if confidential {
            App::confidential(WEB, WEB_SECRET)
        } else {
            App::public(WEB)
        };
        let secret_line = if confidential {
            "client_secret_env = \"WEB_SECRET\""
        } else {
            ""
        };
        let portal = FakePortal::builder()
            .app(app.redirect_uri(format!("{base}/auth/callback")))
            .user("alice", "alice-password-1")
            .user("bob", "bob-password-2")
            .nobody_signed_in()
            .federated_server(FED)
            .start()
            .await;
        let fed = portal.server(FED).expect("federated server").root_url();
        let text = format!(
            r#"
listen = "127.0.0.1:0"
portal = "{portal_url}"
{top}

[user_sign_in]
client_id = "{WEB}"
public_url = "{base}"
{secret_line}

[[routes]]
url = "{root}/sharing/rest/content/items"
match_all = true
auth = "user"

[[routes]]
url = "{fed}/rest/services"
match_all = true
auth = "user"

[[routes]]
url = "{root}/sharing/rest/info"
auth = "none"

[[routes]]
url = "http://127.0.0.1:1/elsewhere"
match_all = true
auth = "user"
"#,
            portal_url = portal.portal_url(),
            root = portal.url_root(),
        );
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
        let gateway = serve_on(listener, &text, &store, clock.clone()).await;
        Bff {
            clock,
            portal,
            store,
            gateway,
            base,
            text,
        }
    }

    /// Another gateway process on the same store, at its own address.
    pub async fn another_gateway(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        serve_on(listener, &self.text, &self.store, self.clock.clone()).await;
        base
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    pub fn item(&self) -> String {
        format!("{}?f=json", self.portal.secured_item_url("abc"))
    }

    pub fn fed_service(&self) -> String {
        format!(
            "{}?f=json",
            self.portal
                .server(FED)
                .expect("server")
                .service_url("S/MapServer")
        )
    }

    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        self.store.list(prefix).await.expect("list")
    }

    pub fn tokens_of(&self, user: &str) -> Vec<String> {
        self.portal
            .issued_tokens()
            .into_iter()
            .filter(|t| t.username.as_deref() == Some(user))
            .map(|t| t.token.expose_secret().to_owned())
            .collect()
    }

    pub fn every_token(&self) -> Vec<String> {
        self.portal
            .issued_tokens()
            .into_iter()
            .map(|t| t.token.expose_secret().to_owned())
            .collect()
    }

    /// The `X-Esri-Authorization` tokens the portal and then its servers received.
    pub async fn presented(&self) -> Vec<String> {
        let mut requests = self.portal.received_requests().await;
        for server in self.portal.servers() {
            requests.extend(
                server
                    .mock_server()
                    .received_requests()
                    .await
                    .unwrap_or_default(),
            );
        }
        requests
            .iter()
            .filter_map(|r| r.headers.get("x-esri-authorization"))
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .collect()
    }
}

pub async fn serve_on(
    listener: tokio::net::TcpListener,
    text: &str,
    store: &Arc<dyn SessionStore>,
    clock: Option<ManualClock>,
) -> Gateway {
    let env = BTreeMap::from([("WEB_SECRET".to_owned(), WEB_SECRET.to_owned())]);
    let config = Config::from_toml(text, &env).expect("valid config");
    let mut builder = Gateway::builder(config).store(Arc::clone(store));
    if let Some(clock) = clock {
        builder = builder.clock(Arc::new(clock));
    }
    let gateway = builder.build().await.expect("gateway");
    tokio::spawn(arcgis_auth_gateway::serve(
        listener,
        gateway.clone(),
        std::future::pending(),
    ));
    gateway
}

/// One browser: its own cookies for the gateway, redirects followed by hand.
pub struct Browser {
    pub client: reqwest::Client,
    pub gateway: String,
    pub jar: BTreeMap<String, String>,
    /// Every `Set-Cookie` the gateway sent, as sent.
    pub set_cookies: Vec<String>,
}

impl Browser {
    pub fn new(gateway: &str) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .expect("client"),
            gateway: gateway.to_owned(),
            jar: BTreeMap::new(),
            set_cookies: Vec::new(),
        }
    }

    /// The same cookies, at another gateway of the fleet.
    pub fn at(&self, gateway: &str) -> Browser {
        let mut b = Browser::new(gateway);
        b.jar = self.jar.clone();
        b
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, url);
        if url.starts_with(&self.gateway) && !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            r = r.header("cookie", cookies.join("; "));
        }
        r
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = request.send().await.expect("answer");
        if response.url().as_str().starts_with(&self.gateway) {
            for v in response.headers().get_all("set-cookie") {
                let text = v.to_str().expect("ascii").to_owned();
                let (pair, attributes) = text.split_once(';').unwrap_or((&text, ""));
                let (name, value) = pair.split_once('=').expect("name=value");
                if attributes.contains("Max-Age=0") {
                    self.jar.remove(name);
                } else {
                    self.jar.insert(name.to_owned(), value.to_owned());
                }
                self.set_cookies.push(text);
            }
        }
        response
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let request = self.request(reqwest::Method::GET, url);
        self.send(request).await
    }

    /// `GET {gateway}{path}`.
    pub async fn get_path(&mut self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.gateway);
        self.get(&url).await
    }

    /// A request through the gateway's proxy.
    pub async fn proxy(&mut self, target: &str) -> reqwest::Response {
        self.get_path(&format!("/proxy?{target}")).await
    }

    /// Sign-in up to the portal's redirect back: the callback URL (with the
    /// code and state), not visited yet.
    pub async fn sign_in_until_callback(
        &mut self,
        user: &str,
        password: &str,
        return_to: &str,
    ) -> String {
        let start = format!(
            "/auth/sign-in?return_to={}",
            percent_encoding::utf8_percent_encode(return_to, percent_encoding::NON_ALPHANUMERIC)
        );
        let r = self.get_path(&start).await;
        assert_eq!(r.status(), 302, "sign-in starts with a redirect");
        let authorize = location(&r);
        let page = self.get(&authorize).await;
        if page.status() == 302 {
            // The portal answered at once (a declined authorization).
            return location(&page);
        }
        assert_eq!(page.status(), 200);
        let html = page.text().await.expect("sign-in page");
        let (action, mut fields) = form(&html);
        fields.push(("username".into(), user.into()));
        fields.push(("password".into(), password.into()));
        let posted = self
            .client
            .post(&action)
            .form(&fields)
            .send()
            .await
            .expect("sign-in form");
        assert_eq!(posted.status(), 302, "the portal redirects back");
        location(&posted)
    }

    /// The whole sign-in; returns where the gateway sent the browser at the end.
    pub async fn sign_in(&mut self, user: &str, password: &str, return_to: &str) -> String {
        let callback = self.sign_in_until_callback(user, password, return_to).await;
        let r = self.get(&callback).await;
        assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
        location(&r)
    }

    pub async fn post_sign_out(&mut self, origin: Option<&str>) -> reqwest::Response {
        let url = format!("{}/auth/sign-out", self.gateway);
        let mut r = self.request(reqwest::Method::POST, &url);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        self.send(r).await
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned()
}

/// The sign-in form's action and hidden fields.
pub fn form(html: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + tag[start..].find('"')?;
        Some(
            tag[start..end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        )
    };
    let form_tag = html.split("<form").nth(1).expect("a form");
    let action = attr(form_tag.split('>').next().expect("tag"), "action").expect("action");
    let fields = html
        .split("<input")
        .skip(1)
        .filter_map(|t| t.split('>').next())
        .filter(|t| t.contains("type=\"hidden\""))
        .filter_map(|t| Some((attr(t, "name")?, attr(t, "value")?)))
        .collect();
    (action, fields)
}

pub async fn json(r: reqwest::Response) -> serde_json::Value {
    r.json().await.expect("JSON")
}
