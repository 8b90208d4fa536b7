//! A web site that signs its visitors in with ArcGIS itself, on the flows library and not the gateway, to show the flow a site that renders its own pages builds.
//!
//! The server-side authorization-code flow (with PKCE), the way a real site
//! does it. It stays separate from `arcgis-auth-gateway`'s `[user_sign_in]`
//! (the ready-made backend-for-frontend, which proxies a browser's ArcGIS
//! requests and keeps the tokens to itself) because its point is the code:
//! `UserSignIn::begin`/`complete`, the session store and `community/self`
//! in a few routes you can read and change. `examples/tests/gateway_browser.rs`
//! drives the gateway's sign-in in the same headless Chromium.
//!
//! Sign-in button → the portal's sign-in page → `/callback` → "Welcome,
//! {your name}." (from `community/self`) → sign-out button (revokes the
//! refresh token and deletes the session). The browser holds only an
//! `HttpOnly` cookie with a random id; the pending sign-in (PKCE verifier,
//! state) and then the session live server-side in a session store. It
//! mirrors the ArcGIS "authorization code flow" sample page.
//!
//! Run it:
//!
//! ```text
//! cargo run --example web_app
//!     # against the testkit's fake portal: a scripted browser signs in and
//!     # out, and the example exits
//! cargo run --example web_app -- --serve
//!     # keeps serving: open the printed URL in your browser (the fake
//!     # portal shows its sign-in form: jdoe / jdoe-password)
//! cargo run --example web_app -- --serve \
//!     --portal https://www.arcgis.com --client-id YOUR_CLIENT_ID --listen 127.0.0.1:3000
//!     # a real portal: register http://127.0.0.1:3000/callback as a redirect
//!     # URI of the app; a confidential app's secret comes from $ARCGIS_CLIENT_SECRET
//! ```
//!
//! The routes are in `examples/src/web/mod.rs`; `examples/tests/browser.rs`
//! drives this site in headless Chromium.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use arcgis_auth_examples::args::{Args, secret_from_env};
use arcgis_auth_examples::target::{CLIENT_SECRET_VAR, PORTAL_USAGE, Target};
use arcgis_auth_examples::web::{Settings, WebApp, demo_visit};
use arcgis_auth_examples::{BoxError, exit_status};
use arcgis_auth_storage::{MemoryStore, SessionStore};
use arcgis_auth_testkit::{
    App, FakePortal, LOOPBACK_REDIRECT_URI, PASSWORD, PUBLIC_CLIENT_ID, USERNAME,
};

const USAGE: &str = "\
web_app: a web site with ArcGIS sign-in (server-side authorization-code flow)

Options:
  --serve            keep serving until Ctrl-C (default: a scripted browser signs in
                     and out once, then the example exits)
  --listen ADDR      the address to serve on (default 127.0.0.1:0, any free port)
  --client-id ID     the app's client id (with --portal); its redirect URIs must
                     include http://ADDR/callback. $ARCGIS_CLIENT_SECRET, if set, is
                     sent as the client secret (confidential apps).";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let args = Args::from_env(
        &format!("{USAGE}\n{PORTAL_USAGE}"),
        &["portal", "client-id", "listen"],
        &["serve"],
    )?;
    let serve = args.flag("serve");
    let target = match args.value("portal") {
        Some(_) => Target::from_args(&args).await?,
        None if serve => {
            // A person will use a real browser: the fake portal shows its
            // sign-in form instead of approving for a signed-in user.
            let fake = FakePortal::builder()
                .app(App::public(PUBLIC_CLIENT_ID).redirect_uri(LOOPBACK_REDIRECT_URI))
                .user(USERNAME, PASSWORD)
                .nobody_signed_in()
                .start()
                .await;
            println!("Using the testkit's fake portal at {}", fake.portal_url());
            Target::Testkit(Box::new(fake))
        }
        None => Target::from_args(&args).await?,
    };
    let listen: SocketAddr = args.value("listen").unwrap_or("127.0.0.1:0").parse()?;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let mut settings = Settings::new(
        target.portal(),
        target.public_client_id(&args)?,
        store.clone(),
    )?;
    settings.client_secret = secret_from_env(CLIENT_SECRET_VAR).filter(|_| target.fake().is_none());
    let app = WebApp::bind(listen, settings).await?;
    let site = app.url().clone();
    println!(
        "The site is at {site} (its redirect URI: {})",
        app.redirect_uri()
    );

    if serve {
        if target.fake().is_some() {
            println!("Open it in your browser and sign in as {USERNAME} / {PASSWORD}.");
        }
        println!("Press Ctrl-C to stop.");
        app.serve_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        println!("Stopped.");
        return Ok(());
    }

    let Some(fake) = target.fake() else {
        return Err("with --portal, pass --serve and sign in with your browser".into());
    };
    let server = app.spawn();
    println!("A scripted browser signs in and out:");
    demo_visit(&site, USERNAME).await?;
    let calls = fake.calls();
    println!(
        "The portal saw {} authorization, {} token exchange and {} revocation; the store holds {} sessions.",
        calls.endpoint(arcgis_auth_testkit::Endpoint::Authorize),
        calls.token(arcgis_auth_testkit::Grant::AuthorizationCode),
        calls.endpoint(arcgis_auth_testkit::Endpoint::RevokeToken),
        store.list("").await?.len()
    );
    if calls.endpoint(arcgis_auth_testkit::Endpoint::RevokeToken) != 1
        || !store.list("").await?.is_empty()
    {
        return Err("sign-out should revoke once and leave the store empty".into());
    }
    server.abort();
    println!("Run with --serve to try it in your browser.");
    Ok(())
}
