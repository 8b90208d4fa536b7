//! Playing the browser: `FakePortal::authorize_redirect` and `play_browser`.

mod common;

use arcgis_auth_testkit::wiremock::matchers::path;
use arcgis_auth_testkit::wiremock::{Mock, MockServer, ResponseTemplate};
use arcgis_auth_testkit::{
    App, Endpoint, ErrorKind, FakePortal, OOB_REDIRECT_URI, PUBLIC_CLIENT_ID,
};
use common::*;

fn authorize_url(portal: &FakePortal, redirect_uri: &str, response_type: &str) -> String {
    with_query(
        &portal.url("oauth2/authorize"),
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", response_type),
            ("redirect_uri", redirect_uri),
            ("state", "s"),
        ],
    )
    .to_string()
}

#[tokio::test]
async fn play_browser_delivers_the_code_to_the_listener() {
    let portal = FakePortal::start().await;
    let listener = MockServer::start().await;
    Mock::given(path("/callback"))
        .respond_with(ResponseTemplate::new(200).set_body_string("You can close this window."))
        .expect(1)
        .mount(&listener)
        .await;
    let redirect = format!("{}/callback", listener.uri());

    let visit = portal
        .play_browser(&authorize_url(&portal, &redirect, "code"))
        .await
        .unwrap();
    assert_eq!(visit.status, Some(200));
    assert_eq!(visit.body, "You can close this window.");
    let code = query(&visit.redirected_to, "code").unwrap();
    let received = &listener.received_requests().await.unwrap()[0];
    assert_eq!(query(&received.url, "code").as_deref(), Some(code.as_str()));
    assert_eq!(query(&received.url, "state").as_deref(), Some("s"));
    assert_eq!(portal.calls().endpoint(Endpoint::Authorize), 1);
}

#[tokio::test]
async fn play_browser_for_oob_opens_the_approval_page_and_skips_custom_schemes() {
    let portal = FakePortal::start().await;
    let visit = portal
        .play_browser(&authorize_url(&portal, OOB_REDIRECT_URI, "code"))
        .await
        .unwrap();
    let code = query(&visit.redirected_to, "code").unwrap();
    assert!(
        visit
            .body
            .contains(&format!("<title>SUCCESS code={code}</title>"))
    );

    portal
        .add_redirect_uri(PUBLIC_CLIENT_ID, "myapp://cb")
        .unwrap();
    let visit = portal
        .play_browser(&authorize_url(&portal, "myapp://cb", "token"))
        .await
        .unwrap();
    assert_eq!(visit.status, None);
    assert!(
        visit
            .redirected_to
            .fragment()
            .unwrap()
            .starts_with("access_token=")
    );
}

#[tokio::test]
async fn authorize_redirect_explains_failures() {
    let portal = FakePortal::builder()
        .app(App::public("app").redirect_uri("http://127.0.0.1/cb"))
        .user("jdoe", "pw")
        .nobody_signed_in()
        .start()
        .await;
    let url = with_query(
        &portal.url("oauth2/authorize"),
        &[
            ("client_id", "app"),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1/cb"),
        ],
    );
    let err = portal.authorize_redirect(url.as_str()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Browser);
    assert!(err.to_string().contains("nobody is signed in"), "{err}");

    portal.set_signed_in_user("jdoe").unwrap();
    let location = portal.authorize_redirect(url.as_str()).await.unwrap();
    assert!(query(&location, "code").is_some());

    let unknown = with_query(
        &portal.url("oauth2/authorize"),
        &[
            ("client_id", "nope"),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1/cb"),
        ],
    );
    let err = portal
        .authorize_redirect(unknown.as_str())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("check the client id"), "{err}");

    for elsewhere in [
        "https://www.arcgis.com/sharing/rest/oauth2/authorize?client_id=app",
        "not a url",
    ] {
        let err = portal.authorize_redirect(elsewhere).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Browser);
    }
}
