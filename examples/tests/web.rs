//! The web example's sign-in, callback and sign-out, driven over HTTP by a
//! scripted browser: the paths a real browser test cannot easily take
//! (declined sign-ins, forged and replayed callbacks, ended sessions).

use std::net::SocketAddr;
use std::sync::Arc;

use arcgis_auth_examples::web::{Settings, Step, Visitor, WebApp};
use arcgis_auth_storage::{MemoryStore, SessionStore};
use arcgis_auth_testkit::{Endpoint, FakePortal, Grant, PUBLIC_CLIENT_ID, USERNAME};
use url::Url;

struct Site {
    portal: FakePortal,
    store: Arc<dyn SessionStore>,
    url: Url,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn site() -> Site {
    let portal = FakePortal::start().await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let settings =
        Settings::new(portal.portal(), PUBLIC_CLIENT_ID, store.clone()).expect("an HTTP client");
    let app = WebApp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), settings)
        .await
        .expect("the site listens on loopback");
    let url = app.url().clone();
    Site {
        portal,
        store,
        url,
        server: app.spawn(),
    }
}

impl Site {
    fn at(&self, path: &str) -> Url {
        self.url.join(path).expect("a path on the site")
    }

    async fn keys(&self) -> Vec<String> {
        self.store.list("").await.expect("the memory store lists")
    }
}

fn redirect(step: Step) -> Url {
    match step {
        Step::Redirect(url) => url,
        Step::Page(page) => panic!(
            "expected a redirect, got HTTP {}: {}",
            page.status, page.body
        ),
    }
}

#[tokio::test]
async fn sign_in_rotates_the_session_id_and_a_callback_works_once() {
    let site = site().await;
    let mut browser = Visitor::new().unwrap();
    let authorize = redirect(browser.request(site.at("signin"), true).await.unwrap());
    assert!(
        authorize
            .as_str()
            .starts_with(&site.portal.url("oauth2/authorize"))
    );
    let before = browser.session_id().unwrap().to_owned();
    assert_eq!(site.keys().await, vec![format!("web:pending:{before}")]);

    let callback = redirect(browser.request(authorize, false).await.unwrap());
    assert_eq!(callback.path(), "/callback");
    let home = browser.get(callback.clone()).await.unwrap();
    assert!(
        home.body.contains(&format!("Welcome, {USERNAME}.")),
        "{}",
        home.body
    );
    let after = browser.session_id().unwrap().to_owned();
    assert_ne!(before, after, "a new session id after sign-in");
    assert_eq!(site.keys().await, vec![format!("web:user:{after}")]);

    // The same callback again (a replay, or the back button): refused, and no
    // second code exchange.
    let replay = browser.get(callback).await.unwrap();
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("No sign-in is in progress"));
    assert_eq!(site.portal.calls().token(Grant::AuthorizationCode), 1);
    // The signed-in session is untouched.
    let home = browser.get(site.url.clone()).await.unwrap();
    assert!(home.body.contains(&format!("Welcome, {USERNAME}.")));
}

#[tokio::test]
async fn a_forged_callback_is_refused_without_asking_the_portal() {
    let site = site().await;
    let mut browser = Visitor::new().unwrap();
    redirect(browser.request(site.at("signin"), true).await.unwrap());
    let forged = site.at("callback?code=stolen-code&state=guessed-state");
    let answer = browser.get(forged).await.unwrap();
    assert_eq!(answer.status, 400);
    assert!(
        answer.body.contains("does not belong to the sign-in"),
        "{}",
        answer.body
    );
    assert_eq!(site.portal.calls().endpoint(Endpoint::Token), 0);
    assert!(
        site.keys().await.is_empty(),
        "the pending sign-in is used up"
    );
}

#[tokio::test]
async fn a_callback_without_a_sign_in_in_progress_is_refused() {
    let site = site().await;
    let mut stranger = Visitor::new().unwrap();
    let answer = stranger
        .get(site.at("callback?code=x&state=y"))
        .await
        .unwrap();
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("No sign-in is in progress"));
    assert!(!stranger.has_cookie());
    assert_eq!(site.portal.calls().endpoint(Endpoint::Token), 0);
}

#[tokio::test]
async fn a_declined_sign_in_is_explained_and_leaves_nothing_behind() {
    let site = site().await;
    site.portal.deny_next_authorization();
    let mut browser = Visitor::new().unwrap();
    let answer = browser.submit(site.at("signin")).await.unwrap();
    assert!(
        answer.body.contains("You declined the sign-in."),
        "{}",
        answer.body
    );
    assert!(site.keys().await.is_empty());
    assert_eq!(site.portal.calls().endpoint(Endpoint::Token), 0);
}

#[tokio::test]
async fn a_session_revoked_elsewhere_shows_sign_in_and_is_deleted() {
    let site = site().await;
    let mut browser = Visitor::new().unwrap();
    let home = browser.submit(site.at("signin")).await.unwrap();
    assert!(home.body.contains("Welcome,"));
    // An administrator revokes every session (or the password changed).
    site.portal.revoke_all_tokens();
    let home = browser.get(site.url.clone()).await.unwrap();
    assert!(home.body.contains("id=\"sign-in\""), "{}", home.body);
    assert!(!browser.has_cookie(), "the cookie is cleared");
    assert!(site.keys().await.is_empty(), "the dead session is deleted");
}

#[tokio::test]
async fn sign_out_revokes_and_deletes() {
    let site = site().await;
    let mut browser = Visitor::new().unwrap();
    browser.submit(site.at("signin")).await.unwrap();
    let home = browser.submit(site.at("signout")).await.unwrap();
    assert!(home.body.contains("id=\"sign-in\""));
    assert_eq!(site.portal.calls().endpoint(Endpoint::RevokeToken), 1);
    assert!(
        site.portal
            .issued_tokens()
            .iter()
            .filter(|t| t.kind == arcgis_auth_testkit::TokenKind::Refresh)
            .all(|t| t.revoked)
    );
    assert!(site.keys().await.is_empty());
    // Signing out again (a second tab) is harmless.
    let again = browser.submit(site.at("signout")).await.unwrap();
    assert_eq!(again.status, 200);
}
