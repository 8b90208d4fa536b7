//! The loopback listener, end to end: the test plays the browser.

use std::time::Duration;

use crate::support::{forms, http, portal, token_body};
use arcgis_auth_core::{AuthorizeOptions, ErrorKind, ExposeSecret};
use arcgis_auth_flows::signin::SignedIn;
use arcgis_auth_flows::signin::{CallbackPath, Loopback, PendingSignIn, UserSignIn};
use arcgis_auth_flows::{FlowError, FlowErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The browser: a plain client that never goes through a proxy.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("browser client")
}

async fn token_endpoint(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(token_body("AT-1", Some(("RT-1", 1_209_599)))),
        )
        .mount(server)
        .await;
}

/// Runs the loopback sign-in in the background (a minute at most unless
/// `loopback` says) and returns it with the sign-in it began, once it has
/// asked for the page to be opened.
async fn spawn_sign_in(
    sign_in: &UserSignIn,
    loopback: Loopback,
) -> (
    JoinHandle<Result<SignedIn<UserSignIn>, FlowError>>,
    PendingSignIn,
) {
    let sign_in = sign_in.clone();
    let (opened, pending) = oneshot::channel();
    let completion = tokio::spawn(async move {
        sign_in
            .sign_in_with_loopback(&loopback, &AuthorizeOptions::new(), move |pending| {
                let _ = opened.send(pending.clone());
            })
            .await
    });
    (
        completion,
        pending.await.expect("the sign-in page is opened"),
    )
}

/// The port of a loopback redirect URI.
fn port_of(redirect_uri: &str) -> u16 {
    url::Url::parse(redirect_uri)
        .expect("the redirect URI is a URL")
        .port()
        .expect("a loopback redirect URI names its port")
}

/// Sends raw bytes to the listener and returns whatever it answers.
async fn raw(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the listener accepts");
    stream.write_all(request).await.expect("request sent");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn the_browser_comes_back_and_the_sign_in_completes() {
    let server = MockServer::start().await;
    token_endpoint(&server).await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let loopback = Loopback::new().timeout(Duration::from_secs(60));
    let (completion, pending) = spawn_sign_in(&sign_in, loopback).await;
    let redirect_uri = pending.redirect_uri().to_owned();
    let port = port_of(&redirect_uri);
    assert_ne!(port, 0);
    assert_eq!(redirect_uri, format!("http://127.0.0.1:{port}/callback"));
    let state = pending.state().to_owned();
    let browser = browser();

    // Unrelated requests are answered and ignored.
    let favicon = browser
        .get(format!("http://127.0.0.1:{port}/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(favicon.status(), 404);
    assert!(
        raw(port, b"\x00\x01\x02 garbage\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 400")
    );
    assert!(
        raw(port, b"POST /callback HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 405")
    );
    // An endless header: cut at 8 KiB and refused (the answer may be lost to
    // the reset of the unread rest, so only the listener's survival is checked).
    let _ = raw(port, &[b'A'; 20_000]).await;
    // A connection that closes at once.
    drop(TcpStream::connect(("127.0.0.1", port)).await.unwrap());

    // A callback of another sign-in gets an error page and does not end this one.
    let stale = browser
        .get(format!("{redirect_uri}?code=forged&state=not-the-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 400);
    assert!(stale.text().await.unwrap().contains("does not belong"));
    assert!(!completion.is_finished());
    assert!(forms(&server).await.is_empty());

    // The real callback.
    let page = browser
        .get(format!("{redirect_uri}?code=the-code&state={state}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(html.contains("You can close this tab"), "{html}");

    let signed_in: SignedIn<UserSignIn> = completion.await.unwrap().unwrap();
    assert_eq!(signed_in.token().access_token().expose_secret(), "AT-1");
    assert_eq!(
        signed_in.record().redirect_uri.as_deref(),
        Some(redirect_uri.as_str())
    );
    let sent = forms(&server).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["code"], "the-code");
    assert_eq!(sent[0]["redirect_uri"], redirect_uri);

    // The listener has stopped: the port is closed.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn a_declined_sign_in_shows_an_error_page_and_a_typed_error() {
    let server = MockServer::start().await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let loopback = Loopback::new()
        .path(CallbackPath::new("/auth/done").unwrap())
        .timeout(Duration::from_secs(60));
    let (completion, pending) = spawn_sign_in(&sign_in, loopback).await;
    let redirect_uri = pending.redirect_uri().to_owned();
    assert!(redirect_uri.ends_with("/auth/done"));
    let state = pending.state().to_owned();

    let page = browser()
        .get(format!(
            "{redirect_uri}?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state={state}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("Sign-in failed"), "{html}");
    assert!(html.contains("declined"), "{html}");
    assert!(
        !html.contains("<script>"),
        "the description is escaped: {html}"
    );
    assert!(html.contains("&lt;script&gt;"), "{html}");

    let err = completion.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
    assert!(forms(&server).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_listener_times_out_with_a_typed_error() {
    let server = MockServer::start().await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    // The default: five minutes.
    let (completion, pending) = spawn_sign_in(&sign_in, Loopback::new()).await;
    let port = port_of(pending.redirect_uri());
    // A browser that connects and never sends anything does not keep it waiting.
    let _idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let err = completion.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInTimedOut);
    assert!(err.message().contains("start the sign-in again"), "{err}");
    assert!(err.kind().needs_sign_in());
}

#[tokio::test(start_paused = true)]
async fn ports_and_paths_are_checked() {
    let server = MockServer::start().await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let first = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = first.local_addr().unwrap().port();
    // A port in use: a typed I/O error naming the port, before any page is opened.
    let mut opened = false;
    let err = sign_in
        .sign_in_with_loopback(
            &Loopback::new().port(port),
            &AuthorizeOptions::new(),
            |_| opened = true,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::Io);
    assert!(err.message().contains(&port.to_string()));
    assert!(!opened);
    // A chosen free port is used as given.
    drop(first);
    let mut redirect_uri = None;
    let err = sign_in
        .sign_in_with_loopback(
            &Loopback::new().port(port).timeout(Duration::from_secs(1)),
            &AuthorizeOptions::new(),
            |pending| redirect_uri = Some(pending.redirect_uri().to_owned()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInTimedOut);
    assert_eq!(
        redirect_uri.as_deref(),
        Some(format!("http://127.0.0.1:{port}/callback").as_str())
    );

    for bad in ["callback", "/cb?x=1", "/cb#x", "/c b", ""] {
        let err = CallbackPath::new(bad).unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::InvalidInput, "{bad:?}");
    }
    // (A sign-in begun with another redirect URI than the listener's cannot
    // happen: the one call begins it with the listener's.)
}
