//! The gateway's user sign-in in real headless Chromium: a page served from
//! the gateway's origin signs a person in on the testkit portal's sign-in
//! form, loads a secured layer and a portal item through the gateway's
//! proxy, never sees a token (not in `document.cookie`, Web Storage, the
//! answers it can read or their headers), signs out with a same-origin
//! `POST /auth/sign-out`, and is refused (401, ArcGIS JSON) afterwards.
//!
//! Needs Chromium and chromedriver, as `browser.rs` does (see
//! `support/chromium.rs`): under `CI=true` their absence fails the test.

mod support;

use std::sync::Arc;

use arcgis_auth_testkit::{Endpoint, Grant, TokenKind};
use axum::Router;
use serde_json::Value;
use support::chromium::with_browser;
use support::gateway_site::{FED, PASSWORD, Site, USER, page};
use support::webdriver::{Error, Session};

const COOKIE: &str = "__Host-arcgis";

/// The app's page: a sign-in link, and who is signed in (from `/auth/me`).
const APP: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Secured layers</title></head>
<body>
<a id="sign-in" href="/auth/sign-in?return_to=/app">Sign in with ArcGIS</a>
<p id="status">…</p>
<script>
fetch('/auth/me').then(async r => {
  const status = document.getElementById('status');
  if (r.ok) {
    const me = await r.json();
    status.textContent = 'Signed in as ' + me.username;
    status.className = 'signed-in';
  } else {
    status.textContent = 'Signed out';
    status.className = 'signed-out';
  }
});
</script>
</body></html>
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_the_gateway_in_chromium() {
    let site = Arc::new(Site::start(Router::new().route("/app", page(APP)), "").await);
    let walk_site = Arc::clone(&site);
    with_browser(
        "the headless-browser test of the gateway's user sign-in",
        |browser| walk(browser, walk_site),
    )
    .await;
}

/// Every issued token and refresh token that `text` contains (must be none).
fn tokens_in(site: &Site, text: &str) -> Vec<String> {
    site.issued()
        .into_iter()
        .filter(|t| text.contains(t.as_str()))
        .map(|t| format!("{}…", &t[..t.len().min(6)]))
        .collect()
}

async fn walk(browser: Arc<Session>, site: Arc<Site>) -> Result<(), Error> {
    let portal = &site.portal;
    let app = format!("{}/app", site.base);

    // 1. The app, signed out.
    browser.goto(&app).await?;
    browser.wait_for(".signed-out").await?;

    // 2. Sign in: the gateway sends the browser to the portal's sign-in form.
    let sign_in = browser.wait_for("#sign-in").await?;
    browser.click(&sign_in).await?;
    let username = browser.wait_for("#user_username").await?;
    let at = browser.current_url().await?;
    assert!(
        at.starts_with(&portal.url("oauth2/authorize")),
        "the browser should be on the portal's authorize page, not {at}"
    );
    assert!(at.contains("code_challenge_method=S256"), "PKCE: {at}");
    browser.type_text(&username, USER).await?;
    let password = browser.wait_for("#user_password").await?;
    browser.type_text(&password, PASSWORD).await?;
    let submit = browser.wait_for("#signIn").await?;
    browser.click(&submit).await?;

    // 3. Back at the app (the callback's code and state are gone from the
    //    address bar), signed in.
    let status = browser.wait_for(".signed-in").await?;
    assert_eq!(browser.text(&status).await?, format!("Signed in as {USER}"));
    assert_eq!(browser.current_url().await?, app);
    assert_eq!(portal.calls().token(Grant::AuthorizationCode), 1);

    // 4. The page loads a secured layer of the federated server and a
    //    portal item through the gateway, and looks for tokens wherever
    //    its script can.
    let layer = format!(
        "{}?f=json",
        portal
            .server(FED)
            .expect("server")
            .service_url("Secured/FeatureServer/0")
    );
    let item = format!("{}?f=json", portal.secured_item_url("web-map-1"));
    let script = format!(
        r#"
        const answers = [];
        for (const target of [{layer}, {item}]) {{
          const r = await fetch('/proxy?' + target);
          answers.push({{
            status: r.status,
            headers: [...r.headers.entries()],
            body: await r.text(),
          }});
        }}
        const me = await fetch('/auth/me');
        return {{
          answers,
          me: {{ status: me.status, headers: [...me.headers.entries()], body: await me.text() }},
          cookie: document.cookie,
          local: JSON.stringify(Object.entries(localStorage)),
          session: JSON.stringify(Object.entries(sessionStorage)),
          html: document.documentElement.outerHTML,
        }};
        "#,
        layer = Value::from(layer.as_str()),
        item = Value::from(item.as_str()),
    );
    let seen = browser.run_async(&script).await?;
    let answers = seen["answers"].as_array().expect("answers");
    for a in answers {
        assert_eq!(a["status"], 200, "{a}");
    }
    let layer_json: Value = serde_json::from_str(answers[0]["body"].as_str().expect("body"))?;
    assert_eq!(
        layer_json["user"], USER,
        "the layer was opened with the user's token: {layer_json}"
    );
    assert_eq!(layer_json["server"], FED);
    let item_json: Value = serde_json::from_str(answers[1]["body"].as_str().expect("body"))?;
    assert_eq!(item_json["accessedBy"], USER, "{item_json}");
    let me: Value = serde_json::from_str(seen["me"]["body"].as_str().expect("body"))?;
    assert_eq!(me["username"], USER);
    assert!(
        portal.issued_tokens().iter().any(
            |t| matches!(&t.kind, TokenKind::Server { server } if server == FED)
                && t.username.as_deref() == Some(USER)
        ),
        "the federated server's token was made for the user"
    );

    assert_eq!(
        seen["cookie"], "",
        "the session cookie is HttpOnly: script sees no cookie"
    );
    assert_eq!(seen["local"], "[]", "nothing in localStorage");
    assert_eq!(seen["session"], "[]", "nothing in sessionStorage");
    let everything = seen.to_string();
    assert!(
        tokens_in(&site, &everything).is_empty(),
        "a token reached the page: {:?}",
        tokens_in(&site, &everything)
    );

    // The browser's own cookie jar (HttpOnly ones included): one session
    // cookie holding a random id, no token.
    let cookies = browser.cookies().await?;
    let ours: Vec<&Value> = cookies.iter().filter(|c| c["name"] == COOKIE).collect();
    assert_eq!(ours.len(), 1, "one session cookie: {cookies:?}");
    assert_eq!(ours[0]["httpOnly"], true);
    assert_eq!(ours[0]["secure"], true);
    assert_eq!(ours[0]["sameSite"], "Lax");
    assert_eq!(ours[0]["path"], "/");
    let jar = serde_json::to_string(&cookies)?;
    assert!(tokens_in(&site, &jar).is_empty(), "a token is in a cookie");
    assert!(
        cookies
            .iter()
            .all(|c| c["name"] != format!("{COOKIE}-pending")),
        "the pending sign-in's cookie is gone: {cookies:?}"
    );

    // 5. Sign out from the page (a same-origin POST), then the same requests.
    let script = format!(
        r#"
        const out = await fetch('/auth/sign-out', {{ method: 'POST' }});
        const after = await fetch('/proxy?' + {item});
        const me = await fetch('/auth/me');
        return {{
          signOut: out.status,
          after: {{ status: after.status, type: after.headers.get('content-type'), body: await after.text() }},
          me: me.status,
        }};
        "#,
        item = Value::from(item.as_str()),
    );
    let seen = browser.run_async(&script).await?;
    assert_eq!(seen["signOut"], 204, "{seen}");
    assert_eq!(seen["after"]["status"], 401, "{seen}");
    assert_eq!(seen["after"]["type"], "application/json");
    let refused: Value = serde_json::from_str(seen["after"]["body"].as_str().expect("body"))?;
    assert_eq!(refused["error"]["code"], 401, "ArcGIS-shaped: {refused}");
    assert!(refused["error"]["message"].is_string());
    assert_eq!(seen["me"], 401);
    assert_eq!(portal.calls().endpoint(Endpoint::RevokeToken), 1);
    assert!(
        portal
            .issued_tokens()
            .iter()
            .filter(|t| t.kind == TokenKind::Refresh)
            .all(|t| t.revoked),
        "the refresh token was revoked at the portal"
    );
    assert!(site.store.list("gateway/user/").await?.is_empty());
    let cookies = browser.cookies().await?;
    assert!(
        cookies.iter().all(|c| c["name"] != COOKIE),
        "the session cookie is gone: {cookies:?}"
    );

    // 6. The app, loaded again: signed out.
    browser.goto(&app).await?;
    browser.wait_for(".signed-out").await?;
    Ok(())
}
