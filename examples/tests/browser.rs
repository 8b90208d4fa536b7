//! The `web_app` example, end to end in real headless Chromium.
//!
//! A person's path through the site: open it, click "Sign in with ArcGIS",
//! land on the portal's sign-in page (the testkit's, with a real form), sign
//! in, come back to the site, see "Welcome, {name}.", sign out.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`cargo xtask ci`
//! installs them when missing; `CHROME_BIN` and `CHROMEDRIVER` point
//! elsewhere). Without them the test prints a loud notice and skips, except
//! under `CI=true`, where it fails: CI must never pass without having run it.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_examples::web::{Settings, WebApp, cookie};
use arcgis_auth_storage::{MemoryStore, SessionStore};
use arcgis_auth_testkit::{App, Endpoint, FakePortal, Grant, TokenKind};
use support::chromium::with_browser;
use support::webdriver::{Error, Session};

const CLIENT_ID: &str = "browser-test-site";
const USER: &str = "jdoe";
const PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_and_out_in_chromium() {
    // The portal: one app registered for loopback redirects on any port, one
    // user, and nobody signed in, so the portal shows its sign-in form.
    let portal = FakePortal::builder()
        .app(App::public(CLIENT_ID).redirect_uri("http://127.0.0.1/callback"))
        .user(USER, PASSWORD)
        .nobody_signed_in()
        .start()
        .await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let settings = Settings::new(portal.portal(), CLIENT_ID, store.clone()).unwrap();
    let site = WebApp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), settings)
        .await
        .unwrap();
    let site_url = site.url().to_string();
    let server = site.spawn();
    let portal = Arc::new(portal);
    with_browser("the headless-browser test of the web example", |browser| {
        walk(browser, portal, store, site_url)
    })
    .await;
    server.abort();
}

async fn walk(
    browser: Arc<Session>,
    portal: Arc<FakePortal>,
    store: Arc<dyn SessionStore>,
    site_url: String,
) -> Result<(), Error> {
    // 1. The site, signed out.
    browser.goto(&site_url).await?;
    let sign_in = browser.wait_for("#sign-in").await?;
    assert!(browser.find("#user-info").await?.is_none());

    // 2. Click sign in: the portal's authorize page, showing its sign-in form.
    browser.click(&sign_in).await?;
    let username = browser.wait_for("#user_username").await?;
    let at = browser.current_url().await?;
    assert!(
        at.starts_with(&portal.url("oauth2/authorize")),
        "the browser should be on the portal's authorize page, not {at}"
    );
    assert!(
        at.contains("code_challenge_method=S256"),
        "PKCE is used: {at}"
    );
    assert_eq!(portal.calls().endpoint(Endpoint::Authorize), 1);

    // 3. Sign in: the portal redirects to the site's /callback, which
    //    finishes and sends the browser home.
    browser.type_text(&username, USER).await?;
    let password = browser.wait_for("#user_password").await?;
    browser.type_text(&password, PASSWORD).await?;
    let submit = browser.wait_for("#signIn").await?;
    browser.click(&submit).await?;
    let welcome = browser.wait_for("#user-info").await?;
    assert_eq!(browser.text(&welcome).await?, format!("Welcome, {USER}."));
    assert_eq!(
        browser.current_url().await?,
        site_url,
        "the callback's code and state do not stay in the address bar"
    );
    assert_eq!(portal.calls().token(Grant::AuthorizationCode), 1);
    assert_eq!(portal.calls().endpoint(Endpoint::CommunitySelf), 1);

    // The browser holds one HttpOnly cookie with a random id, and no token.
    let cookies = browser.cookies().await?;
    let ours: Vec<_> = cookies
        .iter()
        .filter(|c| c["name"] == cookie::NAME)
        .collect();
    assert_eq!(ours.len(), 1, "one session cookie: {cookies:?}");
    assert_eq!(ours[0]["httpOnly"], true);
    assert_eq!(ours[0]["sameSite"], "Lax");
    let jar = serde_json::to_string(&cookies)?;
    for issued in portal.issued_tokens() {
        assert!(
            !jar.contains(issued.token.expose_secret()),
            "a token reached the browser"
        );
    }
    let stored = store.list("web:").await?;
    assert_eq!(
        stored.len(),
        1,
        "one session, and no pending sign-in left: {stored:?}"
    );
    assert!(stored[0].starts_with("web:user:"));

    // 4. Sign out: the refresh token is revoked, the session deleted.
    let sign_out = browser.wait_for("#sign-out").await?;
    browser.click(&sign_out).await?;
    browser.wait_for("#sign-in").await?;
    assert!(browser.find("#user-info").await?.is_none());
    assert_eq!(portal.calls().endpoint(Endpoint::RevokeToken), 1);
    let refresh_tokens: Vec<_> = portal
        .issued_tokens()
        .into_iter()
        .filter(|t| t.kind == TokenKind::Refresh)
        .collect();
    assert_eq!(refresh_tokens.len(), 1);
    assert!(
        refresh_tokens[0].revoked,
        "the refresh token was revoked at the portal"
    );
    assert!(store.list("web:").await?.is_empty());
    let cookies = browser.cookies().await?;
    assert!(
        cookies.iter().all(|c| c["name"] != cookie::NAME),
        "the session cookie is gone: {cookies:?}"
    );
    Ok(())
}
