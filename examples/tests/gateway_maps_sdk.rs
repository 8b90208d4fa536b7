//! A client nobody here wrote, through the gateway: the ArcGIS Maps SDK for
//! JavaScript (`@arcgis/core`, the version `maps-sdk/package.json` pins),
//! served from this test's own loopback origin in headless Chromium, with
//! `esriConfig.request.proxyRules` pointing at the gateway's `/proxy`,
//! loads a secured feature layer (`FeatureLayer.load()`) and queries it
//! (`queryFeatures`, `queryFeatureCount`), on an app route (`auth =
//! "app:NAME"`, the portal's hosted services) and, once the browser has
//! signed in through `/auth/sign-in`, on a user route (`auth = "user"`, a
//! federated server).
//!
//! Checked on both sides: the page got the testkit's fields and parks; the
//! testkit saw each layer request carry the right token in
//! `X-Esri-Authorization` (the app's token, the user's server token), never
//! in a URL; and page script never held a token (the SDK's responses as its
//! request interceptors see them, `esriConfig.request`, the
//! `IdentityManager`'s credentials, cookies, storage). The page asks
//! nothing of any other host: Chromium resolves no host name, the page's
//! Content-Security-Policy allows only its own origin and reports any
//! attempt, and its resource timings name only that origin.
//!
//! Needs Chromium and chromedriver (see `support/chromium.rs`) and `npm ci`
//! in `examples/tests/maps-sdk` (see `support/maps_sdk.rs`); under
//! `CI=true` their absence fails the test.

mod support;

use std::sync::Arc;

use arcgis_auth_testkit::{FakePortal, Grant, IssuedToken, PARKS, TokenKind};
use axum::Router;
use axum::routing::get;
use serde_json::Value;
use support::chromium::with_browser;
use support::gateway_site::{APP_CLIENT_ID, APP_SECRET_VAR, FED, PASSWORD, Site, USER};
use support::maps_sdk::{self, MapsSdk};
use support::static_files::{Served, serve_dir, with_headers};
use support::webdriver::{Error, Session};

/// Nothing but this origin: scripts, styles, images, fonts, workers and
/// every request the page makes (so the SDK can reach a layer only through
/// the gateway). Inline styles: the SDK sets some.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; \
                   connect-src 'self'";

const APP: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Parks</title></head>
<body>
<a id="sign-in" href="/auth/sign-in?return_to=/app">Sign in with ArcGIS</a>
<p id="status">…</p>
<script type="module" src="/app/page.js"></script>
</body></html>
"#;

const PAGE_JS: &str = include_str!("maps-sdk/page.js");

/// The app route to the portal's hosted services (the app's token) and the
/// configuration's `[[apps]]` entry for it; the site's own routes make the
/// federated server's services a user route.
fn app_route() -> String {
    format!(
        r#"
[[apps]]
name = "parks"
client_id = "{APP_CLIENT_ID}"
client_secret_env = "{APP_SECRET_VAR}"

[[routes]]
url = "{{hosted}}"
match_all = true
auth = "app:parks"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maps_sdk_loads_and_queries_secured_layers_through_the_gateway() {
    const WHAT: &str = "the ArcGIS Maps SDK test of the gateway";
    let Some(sdk) = maps_sdk::installed(WHAT) else {
        return;
    };
    let served = Served::default();
    let pages = Router::new()
        .route(
            "/app",
            get(|| async {
                with_headers(
                    APP,
                    "text/html; charset=utf-8",
                    &[("content-security-policy", CSP)],
                )
            }),
        )
        .route(
            "/app/page.js",
            get(|| async { with_headers(PAGE_JS, "text/javascript; charset=utf-8", &[]) }),
        )
        .merge(serve_dir("/sdk", sdk.build.clone(), served.clone()))
        .merge(serve_dir("/sdk-assets", sdk.assets.clone(), served.clone()));
    let site = Arc::new(Site::start(pages, &app_route()).await);
    let walk_site = Arc::clone(&site);
    let sdk = Arc::new(sdk);
    with_browser(WHAT, move |browser| walk(browser, walk_site, sdk, served)).await;
}

/// Every issued token that `text` contains (must be none), shortened.
fn tokens_in(site: &Site, text: &str) -> Vec<String> {
    site.issued()
        .into_iter()
        .filter(|t| text.contains(t.as_str()))
        .map(|t| format!("{}…", &t[..t.len().min(6)]))
        .collect()
}

/// What the page got for the parks layer: its fields, the parks with more
/// than 50,000 visitors, all three counted.
fn assert_parks(answer: &Value) {
    assert_eq!(answer["loaded"], true, "{answer}");
    assert_eq!(answer["title"], "Parks", "{answer}");
    assert_eq!(answer["objectIdField"], "OBJECTID");
    assert_eq!(answer["geometryType"], "point");
    assert_eq!(
        answer["fields"],
        serde_json::json!(["OBJECTID", "NAME", "VISITORS"])
    );
    let busy: Vec<_> = PARKS.iter().filter(|p| p.visitors > 50_000).collect();
    let features = answer["features"].as_array().expect("features");
    assert_eq!(features.len(), busy.len(), "{answer}");
    for (feature, park) in features.iter().zip(&busy) {
        assert_eq!(feature["attributes"]["OBJECTID"], park.object_id);
        assert_eq!(feature["attributes"]["NAME"], park.name);
        assert_eq!(feature["attributes"]["VISITORS"], park.visitors);
        let x = feature["x"].as_f64().expect("x");
        let y = feature["y"].as_f64().expect("y");
        assert!(
            (x - park.x).abs() < 1e-9 && (y - park.y).abs() < 1e-9,
            "{feature}"
        );
    }
    assert_eq!(answer["count"], PARKS.len());
}

/// The requests the page sent through `/proxy`: each target and the
/// status the gateway answered.
fn proxied(seen: &Value) -> Vec<(String, u64)> {
    seen["proxied"]
        .as_array()
        .expect("proxied")
        .iter()
        .map(|p| {
            let target = p["target"].as_str().expect("target").to_owned();
            (target, p["status"].as_u64().unwrap_or_default())
        })
        .collect()
}

/// Every layer request went through the gateway's proxy path; what page
/// script can see holds no token, and the page asked nothing of any origin
/// but its own.
fn assert_nothing_leaked(site: &Site, seen: &Value, layer: &str) {
    let answered = |target: &str| {
        proxied(seen)
            .into_iter()
            .any(|(t, status)| t.starts_with(target) && status == 200)
    };
    assert!(
        answered(&format!("{layer}?")),
        "the layer's JSON through /proxy: {seen}"
    );
    assert!(
        answered(&format!("{layer}/query?")),
        "its query through /proxy: {seen}"
    );
    assert_eq!(seen["violations"], serde_json::json!([]), "CSP: {seen}");
    let own = site.base.trim_start_matches("http://");
    assert_eq!(seen["hosts"], serde_json::json!([own]), "hosts: {seen}");
    assert_eq!(seen["credentials"], 0, "IdentityManager holds none");
    assert_eq!(seen["cookie"], "", "the session cookie is HttpOnly");
    assert_eq!(seen["local"], "[]");
    assert_eq!(seen["session"], "[]");
    let responses = seen["responses"].as_str().expect("responses");
    assert!(
        responses.contains("Prospect Park") && responses.contains("\"count\":3"),
        "the interceptor saw the SDK's answers: {responses}"
    );
    let everything = seen.to_string();
    assert!(
        tokens_in(site, &everything).is_empty(),
        "a token reached page script: {:?}",
        tokens_in(site, &everything)
    );
}

/// The requests `upstream` received for the parks layer, each with the
/// token it carried, as the portal issued it. None carries a token in its
/// URL or a cookie; the layer's JSON and its query were both asked for.
async fn layer_requests(
    portal: &FakePortal,
    upstream: &arcgis_auth_testkit::wiremock::MockServer,
) -> Vec<(String, IssuedToken)> {
    let issued = portal.issued_tokens();
    let mut seen = Vec::new();
    for request in upstream.received_requests().await.unwrap_or_default() {
        let path = request.url.path().to_owned();
        if !path.contains("/Testkit/Parks/FeatureServer") {
            continue;
        }
        assert!(
            request.url.query_pairs().all(|(k, _)| k != "token"),
            "a token in the URL: {path}"
        );
        assert!(request.headers.get("cookie").is_none(), "a cookie upstream");
        let bearer = request
            .headers
            .get("x-esri-authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_else(|| panic!("no token on {path}"));
        let token = issued
            .iter()
            .find(|t| {
                use arcgis_auth_core::ExposeSecret;
                t.token.expose_secret() == bearer
            })
            .unwrap_or_else(|| panic!("{path} carried a token the portal never issued"))
            .clone();
        seen.push((path, token));
    }
    assert!(seen.iter().any(|(p, _)| p.ends_with("/FeatureServer/0")));
    assert!(
        seen.iter()
            .any(|(p, _)| p.ends_with("/FeatureServer/0/query"))
    );
    seen
}

async fn walk(
    browser: Arc<Session>,
    site: Arc<Site>,
    sdk: Arc<MapsSdk>,
    served: Served,
) -> Result<(), Error> {
    let portal = &site.portal;
    let app = format!("{}/app", site.base);
    let hosted = portal
        .hosted_service_url("")
        .trim_end_matches('/')
        .to_owned();
    let hosted_layer = portal.hosted_feature_layer_url();
    let fed = portal.server(FED).expect("federated server");
    let fed_services = format!("{}/rest/services", fed.root_url().trim_end_matches('/'));
    let fed_layer = fed.feature_layer_url();

    // 1. Signed out: the app route (the app's token, on the hosted layer).
    browser.goto(&app).await?;
    browser.wait_for(".ready.signed-out").await?;
    let version = browser.run_async("return window.proof.version;").await?;
    // The SDK names its minor release (`5.1` for 5.1.25).
    let minor = version.as_str().unwrap_or_default();
    assert!(
        sdk.version.starts_with(&format!("{minor}.")),
        "the pinned SDK, {}, not {version}",
        sdk.version
    );
    let script = format!(
        "return await window.proof.run({}, {});",
        Value::from(hosted.as_str()),
        Value::from(hosted_layer.as_str())
    );
    let answer = browser.run_async(&script).await?;
    assert_parks(&answer);
    let seen = browser.run_async("return window.proof.seen();").await?;
    assert_nothing_leaked(&site, &seen, &hosted_layer);
    let requests = layer_requests(portal, portal.mock_server()).await;
    for (path, token) in &requests {
        assert_eq!(token.kind, TokenKind::App, "{path}: the app's token");
        assert_eq!(token.client_id.as_deref(), Some(APP_CLIENT_ID), "{path}");
    }
    assert_eq!(portal.calls().token(Grant::ClientCredentials), 1);

    // Signed out, the user route is refused: the gateway answers 401 and
    // sends nothing upstream (each layer request the server gets carries a
    // token: see `layer_requests`); the SDK's load fails at once, with no
    // sign-in dialog, no credential and no request to any other host.
    let script = format!(
        r#"
        const outcome = await Promise.race([
          window.proof.run({}, {}).then(() => "loaded", e => "failed: " + e.message),
          new Promise(resolve => setTimeout(() => resolve("still pending after 10 s"), 10000)),
        ]);
        return {{ outcome, seen: window.proof.seen() }};
        "#,
        Value::from(fed_services.as_str()),
        Value::from(fed_layer.as_str())
    );
    let refused = browser.run_async(&script).await?;
    let outcome = refused["outcome"].as_str().unwrap_or_default();
    assert!(outcome.starts_with("failed: "), "{refused}");
    assert!(
        proxied(&refused["seen"]).contains(&(format!("{fed_layer}?f=json"), 401)),
        "the gateway refused the user route: {refused}"
    );
    assert_eq!(refused["seen"]["credentials"], 0, "{refused}");
    assert_eq!(refused["seen"]["violations"], serde_json::json!([]));
    assert_eq!(portal.calls().token(Grant::AuthorizationCode), 0);

    // 2. Sign in through the gateway on the portal's page.
    let sign_in = browser.wait_for("#sign-in").await?;
    browser.click(&sign_in).await?;
    let username = browser.wait_for("#user_username").await?;
    browser.type_text(&username, USER).await?;
    let password = browser.wait_for("#user_password").await?;
    browser.type_text(&password, PASSWORD).await?;
    let submit = browser.wait_for("#signIn").await?;
    browser.click(&submit).await?;
    let status = browser.wait_for(".ready.signed-in").await?;
    assert_eq!(browser.text(&status).await?, format!("Signed in as {USER}"));
    assert_eq!(browser.current_url().await?, app);

    // 3. The user route: the federated server's layer, with the user's
    //    server token.
    let script = format!(
        "return await window.proof.run({}, {});",
        Value::from(fed_services.as_str()),
        Value::from(fed_layer.as_str())
    );
    let answer = browser.run_async(&script).await?;
    assert_parks(&answer);
    let seen = browser.run_async("return window.proof.seen();").await?;
    assert_nothing_leaked(&site, &seen, &fed_layer);
    let requests = layer_requests(portal, fed.mock_server()).await;
    for (path, token) in &requests {
        assert_eq!(
            token.kind,
            TokenKind::Server {
                server: FED.to_owned()
            },
            "{path}: a token of the federated server"
        );
        assert_eq!(token.username.as_deref(), Some(USER), "{path}: the user's");
    }
    assert_eq!(portal.calls().token(Grant::AuthorizationCode), 1);
    assert_eq!(portal.calls().secrets_in_url(), 0);

    // The guard is live: the page's policy stops (and reports) a request
    // to any other origin, the portal's own included.
    let script = format!(
        r#"
        const direct = await fetch({}).then(() => "answered", e => String(e));
        await new Promise(resolve => setTimeout(resolve, 200));
        return {{ direct, violations: window.proof.seen().violations }};
        "#,
        Value::from(format!("{fed_layer}?f=json").as_str())
    );
    let guard = browser.run_async(&script).await?;
    assert_ne!(guard["direct"], "answered", "{guard}");
    let violations = guard["violations"].as_array().expect("violations");
    assert!(
        violations.len() == 1
            && violations[0]
                .as_str()
                .is_some_and(|v| v.starts_with("connect-src") && v.contains(&fed.root_url())),
        "{guard}"
    );

    // The SDK's bundle came from this origin.
    let paths = served.paths();
    assert!(paths.iter().any(|p| p == "/sdk/sdk.js"), "{paths:?}");
    eprintln!(
        "@arcgis/core {}: {} files served ({} assets)",
        sdk.version,
        paths.len(),
        paths
            .iter()
            .filter(|p| p.starts_with("/sdk-assets/"))
            .count()
    );
    Ok(())
}
