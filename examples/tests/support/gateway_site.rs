//! A web app served from the gateway's own origin: the gateway's router at
//! the root (its `/auth/…` endpoints and `/proxy`), the app's pages next to
//! it, and the testkit's portal with a federated server behind it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_gateway::{Config, Gateway};
use arcgis_auth_storage::{MemoryStore, SessionStore};
use arcgis_auth_testkit::{App, FakePortal};
use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The app registered at the portal for the gateway's user sign-in.
pub(crate) const CLIENT_ID: &str = "gateway-browser-app";
/// The person who signs in, and their password.
pub(crate) const USER: &str = "alice";
pub(crate) const PASSWORD: &str = "alice in the browser";
/// The federated server whose services the user's token opens.
pub(crate) const FED: &str = "fed";
/// A confidential app registered at the portal, for `[[apps]]` entries the
/// routes a test adds may name (`client_secret_env = "{APP_SECRET_VAR}"`).
pub(crate) const APP_CLIENT_ID: &str = "gateway-browser-backend";
/// The variable the configuration reads the app's secret from.
pub(crate) const APP_SECRET_VAR: &str = "GATEWAY_BROWSER_APP_SECRET";
const APP_SECRET: &str = "the backend's secret";

/// The running site.
pub(crate) struct Site {
    pub(crate) portal: Arc<FakePortal>,
    pub(crate) store: Arc<dyn SessionStore>,
    /// `http://127.0.0.1:PORT`: the gateway's `public_url` and the app's origin.
    pub(crate) base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Site {
    /// Starts the portal, the gateway and `pages` (more routes of the app,
    /// e.g. its HTML and scripts) on one loopback origin. `routes` are
    /// `[[routes]]` (and `[[apps]]`) entries added to the configuration;
    /// `{root}`, `{fed}` and `{hosted}` in them stand for the portal's URL
    /// root, the federated server's root and the portal's hosted services.
    pub(crate) async fn start(pages: Router, routes: &str) -> Site {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let portal = FakePortal::builder()
            .app(App::public(CLIENT_ID).redirect_uri(format!("{base}/auth/callback")))
            .app(App::confidential(APP_CLIENT_ID, APP_SECRET))
            .user(USER, PASSWORD)
            .nobody_signed_in()
            .federated_server(FED)
            .start()
            .await;
        let fed = portal.server(FED).expect("federated server").root_url();
        let routes = routes
            .replace("{root}", &portal.url_root())
            .replace("{fed}", &fed)
            .replace(
                "{hosted}",
                portal.hosted_service_url("").trim_end_matches('/'),
            );
        let text = format!(
            r#"
listen = "127.0.0.1:0"
portal = "{portal_url}"

[user_sign_in]
client_id = "{CLIENT_ID}"
public_url = "{base}"

[[routes]]
url = "{root}/sharing/rest/content/items"
match_all = true
auth = "user"

[[routes]]
url = "{fed}/rest/services"
match_all = true
auth = "user"
{routes}
"#,
            portal_url = portal.portal_url(),
            root = portal.url_root(),
        );
        let env = BTreeMap::from([(APP_SECRET_VAR.to_owned(), APP_SECRET.to_owned())]);
        let config = Config::from_toml(&text, &env).expect("valid config");
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let gateway = Gateway::builder(config)
            .store(Arc::clone(&store))
            .build()
            .await
            .expect("gateway");
        let app = pages.merge(gateway.router());
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        Site {
            portal: Arc::new(portal),
            store,
            base,
            server,
        }
    }

    /// Every token and refresh token the portal and its servers issued.
    pub(crate) fn issued(&self) -> Vec<String> {
        self.portal
            .issued_tokens()
            .iter()
            .map(|t| t.token.expose_secret().to_owned())
            .collect()
    }
}

/// A route answering `html` as a page.
pub(crate) fn page(html: &'static str) -> axum::routing::MethodRouter {
    get(move || async move { Html(html) })
}
