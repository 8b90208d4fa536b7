//! The middleware on the wire: where tokens go (and do not), how they travel,
//! and the one retry after a 498/499. Every server is wiremock on loopback.

use super::support::*;
use arcgis_auth_core::{ErrorKind, HttpClient, Origin};
use arcgis_auth_flows::middleware::{ArcGisAuth, flow_error};
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::routing::TokenTransport;
use arcgis_auth_flows::{FlowErrorKind, Renewal};
use arcgis_auth_storage::SessionKind;
use bytes::Bytes;
use reqwest_middleware::ClientWithMiddleware;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SELF_PATH: &str = "/portal/sharing/rest/portals/self";

fn client(session: &Session, routing: TokenRouting) -> ClientWithMiddleware {
    ArcGisAuth::new(session.manager.clone(), routing, HttpClient::new().unwrap())
        .into_client()
        .unwrap()
}

fn ok_json() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(r#"{"ok":true}"#, "application/json")
}

fn arcgis_error(code: u16) -> ResponseTemplate {
    // ArcGIS's usual shape: HTTP 200, the error in the body, labelled text/plain.
    ResponseTemplate::new(200).set_body_raw(
        json!({"error": {"code": code, "message": "Invalid token.", "details": []}}).to_string(),
        "text/plain; charset=utf-8",
    )
}

#[tokio::test]
async fn the_portal_origin_gets_the_token_other_origins_never_do() {
    let portal_server = MockServer::start().await;
    let other_port = MockServer::start().await;
    let other_ip = server_on("127.0.0.2").await;
    for s in [&portal_server, &other_port, &other_ip] {
        Mock::given(method("GET"))
            .respond_with(ok_json())
            .mount(s)
            .await;
    }
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal.clone()));
    let portal_url = format!("{}/portal/sharing/rest", portal_server.uri());
    let port = portal_server.address().port();

    client
        .get(format!("{portal_url}/portals/self?f=json"))
        .send()
        .await
        .unwrap();
    let got = portal_server.received_requests().await.unwrap();
    assert_eq!(esri_header(&got[0]).as_deref(), Some("Bearer token-0"));

    // Another port, another loopback IP, the portal's URL in the path or the
    // query, and `localhost` (same machine and port, another origin).
    let attempts = [
        format!(
            "{}/portal/sharing/rest/portals/self?f=json",
            other_port.uri()
        ),
        format!("{}/{portal_url}/portals/self?f=json", other_port.uri()),
        format!("{}/proxy?url={portal_url}&f=json", other_port.uri()),
        format!("{}/portal/sharing/rest/portals/self?f=json", other_ip.uri()),
        format!("http://localhost:{port}/portal/sharing/rest/portals/self?f=json"),
    ];
    for url in &attempts {
        let response = client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }
    for request in other_port.received_requests().await.unwrap() {
        assert!(!carries_token(&request), "{}", request.url);
    }
    let at_ip = other_ip.received_requests().await.unwrap();
    assert_eq!(at_ip.len(), 1);
    assert!(!carries_token(&at_ip[0]));
    let at_portal = portal_server.received_requests().await.unwrap();
    assert_eq!(
        at_portal.len(),
        2,
        "the localhost request reached the portal's socket"
    );
    assert!(
        !carries_token(&at_portal[1]),
        "localhost is not the portal's origin"
    );
    for s in [&portal_server, &other_port, &other_ip] {
        assert_no_token_in_urls(s).await;
    }
}

#[tokio::test]
async fn trusted_origins_get_the_portal_token_with_their_own_transport() {
    let portal_server = MockServer::start().await;
    let tiles = MockServer::start().await;
    let forms = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer token-0"))
        .respond_with(ok_json())
        .expect(1)
        .mount(&tiles)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("token=token-0"))
        .and(body_string_contains("where=1%3D1"))
        .respond_with(ok_json())
        .expect(1)
        .mount(&forms)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let tiles_origin = Origin::parse(&tiles.uri()).unwrap();
    let forms_origin = Origin::parse(&forms.uri()).unwrap();
    let routing = TokenRouting::new(portal)
        .trust_origin(tiles_origin.clone())
        .trust_origin(forms_origin.clone())
        .transport_for(tiles_origin, TokenTransport::AuthorizationHeader)
        .transport_for(forms_origin, TokenTransport::FormBody);
    let client = client(&session, routing);

    let r = client
        .get(format!("{}/tile/1/2/3", tiles.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A GET to a form-body origin becomes a form POST: the query moves into the body.
    let r = client
        .get(format!(
            "{}/rest/services/A/MapServer/0/query?where=1%3D1&f=json",
            forms.uri()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = forms.received_requests().await.unwrap();
    assert_eq!(got[0].url.query(), None);
    assert!(!got[0].headers.contains_key("x-esri-authorization"));
    assert_no_token_in_urls(&tiles).await;
    assert_no_token_in_urls(&forms).await;
}

#[tokio::test]
async fn long_gets_become_form_posts() {
    let portal_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/search"))
        .and(header("x-esri-authorization", "Bearer token-0"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ok_json())
        .expect(1)
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let q = "x".repeat(2500);
    let r = client
        .get(format!(
            "{}/portal/sharing/rest/search?q={q}&f=json",
            portal_server.uri()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = portal_server.received_requests().await.unwrap();
    assert!(String::from_utf8_lossy(&got[0].body).contains(&q));
}

#[tokio::test]
async fn a_498_in_a_200_body_renews_once_and_retries_once() {
    let portal_server = MockServer::start().await;
    Mock::given(path(SELF_PATH))
        .and(header("x-esri-authorization", "Bearer token-0"))
        .respond_with(arcgis_error(498))
        .expect(1)
        .mount(&portal_server)
        .await;
    Mock::given(path(SELF_PATH))
        .and(header("x-esri-authorization", "Bearer token-1"))
        .respond_with(ok_json())
        .expect(1)
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::App, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let r = client
        .get(format!("{}{SELF_PATH}?f=json", portal_server.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);
    assert_eq!(session.source.calls(), 1, "one renewal");
    assert_no_token_in_urls(&portal_server).await;
}

#[tokio::test]
async fn a_second_498_is_a_typed_error_after_exactly_two_attempts() {
    let portal_server = MockServer::start().await;
    Mock::given(path(SELF_PATH))
        .respond_with(arcgis_error(498))
        .expect(2)
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let err = client
        .post(format!("{}{SELF_PATH}", portal_server.uri()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("f=json")
        .send()
        .await
        .unwrap_err();
    let flow = flow_error(&err).expect("a typed error");
    assert_eq!(flow.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidToken));
    assert!(!flow.to_string().contains("token-"), "{flow}");
    let got = portal_server.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(esri_header(&got[0]).as_deref(), Some("Bearer token-0"));
    assert_eq!(esri_header(&got[1]).as_deref(), Some("Bearer token-1"));
    assert_eq!(session.source.calls(), 1);
}

#[tokio::test]
async fn a_499_and_an_http_498_are_retried_once_with_a_new_token() {
    let portal_server = MockServer::start().await;
    Mock::given(path("/portal/sharing/rest/a"))
        .and(header("x-esri-authorization", "Bearer token-0"))
        .respond_with(arcgis_error(499))
        .mount(&portal_server)
        .await;
    Mock::given(path("/portal/sharing/rest/b"))
        .and(header("x-esri-authorization", "Bearer token-1"))
        .respond_with(ResponseTemplate::new(498).set_body_raw("expired", "text/html"))
        .mount(&portal_server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_json())
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let base = format!("{}/portal/sharing/rest", portal_server.uri());
    assert_eq!(
        client
            .get(format!("{base}/a"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{base}/b"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let got = portal_server.received_requests().await.unwrap();
    let tokens: Vec<_> = got.iter().map(|r| esri_header(r).unwrap()).collect();
    assert_eq!(
        tokens,
        [
            "Bearer token-0",
            "Bearer token-1",
            "Bearer token-1",
            "Bearer token-2"
        ]
    );
    assert_eq!(session.source.calls(), 2);
}

#[tokio::test]
async fn a_403_is_never_retried() {
    let portal_server = MockServer::start().await;
    Mock::given(path(SELF_PATH))
        .respond_with(arcgis_error(403))
        .expect(1)
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let r = client
        .get(format!("{}{SELF_PATH}?f=json", portal_server.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("403"));
    assert_eq!(session.source.calls(), 0);
}

#[tokio::test]
async fn api_keys_cannot_be_renewed_so_a_498_is_a_typed_error() {
    let portal_server = MockServer::start().await;
    Mock::given(path(SELF_PATH))
        .respond_with(arcgis_error(498))
        .expect(1)
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::ApiKey, Renewal::Never).await;
    let client = client(&session, TokenRouting::new(portal));
    let err = client
        .get(format!("{}{SELF_PATH}?f=json", portal_server.uri()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        flow_error(&err).map(|e| e.kind()),
        Some(FlowErrorKind::NotRenewable)
    );
}

#[tokio::test]
async fn streamed_request_bodies_are_not_retried() {
    let portal_server = MockServer::start().await;
    Mock::given(path("/portal/sharing/rest/content/users/jdoe/addItem"))
        .respond_with(arcgis_error(498))
        .expect(1)
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let body = reqwest::Body::wrap(http_body_util::Full::new(Bytes::from_static(b"file bytes")));
    let err = client
        .post(format!(
            "{}/portal/sharing/rest/content/users/jdoe/addItem",
            portal_server.uri()
        ))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap_err();
    let flow = flow_error(&err).expect("a typed error");
    assert_eq!(flow.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidToken));
    assert!(flow.to_string().contains("not retried"), "{flow}");
}

#[tokio::test]
async fn other_bodies_stream_through_untouched() {
    let portal_server = MockServer::start().await;
    // 3 MiB of binary tile data, and a 1 MiB JSON answer (past the peek limit).
    let tile: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut big_json = String::from(r#"{"features":["#);
    while big_json.len() < 1024 * 1024 {
        big_json.push_str(r#"{"attributes":{"OBJECTID":1,"NAME":"a"}},"#);
    }
    big_json.push_str(r#"{"attributes":{}}]}"#);
    Mock::given(path("/portal/sharing/rest/tile"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(tile.clone(), "image/png"))
        .mount(&portal_server)
        .await;
    Mock::given(path("/portal/sharing/rest/query"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big_json.clone(), "application/json"))
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let base = format!("{}/portal/sharing/rest", portal_server.uri());

    let r = client.get(format!("{base}/tile")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().as_ref(), tile.as_slice());

    let r = client
        .get(format!("{base}/query?f=json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.url().as_str(), format!("{base}/query?f=json"));
    assert_eq!(r.content_length(), Some(big_json.len() as u64));
    // Read chunk by chunk, as a streaming caller would.
    let mut r = r;
    let mut got = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, big_json.as_bytes());
    assert_eq!(session.source.calls(), 0);
}

#[tokio::test]
async fn no_token_event_never_shows_the_token() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let portal_server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path(SELF_PATH))
        .and(header("x-esri-authorization", "Bearer token-0"))
        .respond_with(arcgis_error(498))
        .mount(&portal_server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_json())
        .mount(&portal_server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_json())
        .mount(&elsewhere)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    client
        .get(format!("{}/data?secret=query-value", elsewhere.uri()))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{}{SELF_PATH}?f=json", portal_server.uri()))
        .send()
        .await
        .unwrap();
    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("sending no token"), "{logs}");
    assert!(logs.contains("untrusted_origin"), "{logs}");
    assert!(
        !logs.contains("token-0") && !logs.contains("token-1"),
        "{logs}"
    );
    assert!(
        !logs.contains("query-value"),
        "queries are not logged: {logs}"
    );
}

// App credentials from the real strategy, renewed and retried after a 498:
// `app_sessions_recover_from_a_498_too` in tests/e2e/requests.rs (testkit portal).

#[tokio::test]
async fn hosts_are_compared_parsed_not_as_text() {
    let portal_server = MockServer::start().await;
    let tiles = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_json())
        .mount(&tiles)
        .await;
    let port = tiles.address().port();
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let routing = TokenRouting::new(portal)
        .trust_origin(Origin::parse(&format!("http://localhost:{port}")).unwrap());
    let client = client(&session, routing);
    // Mixed case is the same host; 127.0.0.1 is the same socket but another origin.
    client
        .get(format!("http://LocalHost:{port}/tile/1"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("http://127.0.0.1:{port}/tile/2"))
        .send()
        .await
        .unwrap();
    let got = tiles.received_requests().await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(esri_header(&got[0]).as_deref(), Some("Bearer token-0"));
    assert!(!carries_token(&got[1]));
    assert_no_token_in_urls(&tiles).await;
}

#[tokio::test]
async fn a_server_that_rejects_fresh_tokens_does_not_make_every_request_renew() {
    use std::time::Duration;

    let portal_server = MockServer::start().await;
    Mock::given(path(SELF_PATH))
        .respond_with(arcgis_error(498))
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::App, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let url = format!("{}{SELF_PATH}?f=json", portal_server.uri());
    let attempts = || async { portal_server.received_requests().await.unwrap().len() };

    // Twice in a row a freshly renewed token is rejected: two attempts and
    // one renewal each (once could be a token that expired again).
    for round in 1..=2 {
        let err = client.get(&url).send().await.unwrap_err();
        assert_eq!(
            flow_error(&err).unwrap().kind(),
            FlowErrorKind::ArcGis(ErrorKind::InvalidToken)
        );
        assert_eq!(
            (attempts().await, session.source.calls()),
            (2 * round, round)
        );
    }

    // Within the cooldown: one attempt, no renewal, the same typed error.
    let err = client.get(&url).send().await.unwrap_err();
    let flow = flow_error(&err).unwrap();
    assert_eq!(flow.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidToken));
    assert!(flow.to_string().contains("moments ago"), "{flow}");
    assert_eq!((attempts().await, session.source.calls()), (5, 2));

    // After it: renewed and retried again.
    session.clock.advance(Duration::from_secs(61));
    client.get(&url).send().await.unwrap_err();
    assert_eq!((attempts().await, session.source.calls()), (7, 3));
}

#[tokio::test]
async fn a_renewed_token_that_expired_again_does_not_cool_the_server_down() {
    // The portal rejects the first two tokens (the second expired again
    // before the retry landed) and takes the third.
    let portal_server = MockServer::start().await;
    for rejected in ["Bearer token-0", "Bearer token-1"] {
        Mock::given(path(SELF_PATH))
            .and(header("x-esri-authorization", rejected))
            .respond_with(arcgis_error(498))
            .mount(&portal_server)
            .await;
    }
    Mock::given(path(SELF_PATH))
        .respond_with(ok_json())
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::App, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    let url = format!("{}{SELF_PATH}?f=json", portal_server.uri());

    let err = client.get(&url).send().await.unwrap_err();
    assert_eq!(
        flow_error(&err).unwrap().kind(),
        FlowErrorKind::ArcGis(ErrorKind::InvalidToken)
    );
    // Not cooled down: the next request renews (token-2) and gets through.
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);
    assert_eq!(session.source.calls(), 2);
    let sent = portal_server.received_requests().await.unwrap().len();
    assert_eq!(sent, 4, "token-0, token-1, then token-1 again and token-2");
}

#[tokio::test]
async fn the_user_info_trick_does_not_fool_the_routing() {
    let portal_server = MockServer::start().await;
    let evil = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ok_json())
        .mount(&evil)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let client = client(&session, TokenRouting::new(portal));
    // Reads like the portal, goes to `evil` (everything before `@` is a user name).
    let portal_authority = portal_server.uri().trim_start_matches("http://").to_owned();
    let evil_authority = evil.uri().trim_start_matches("http://").to_owned();
    client
        .get(format!(
            "http://{portal_authority}@{evil_authority}/portal/sharing/rest/portals/self?f=json"
        ))
        .send()
        .await
        .unwrap();
    let got = evil.received_requests().await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(esri_header(&got[0]).is_none());
    // reqwest turns the user info into Basic credentials; never our token.
    let authorization = got[0]
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(!authorization.contains("Bearer"), "{authorization}");
    assert!(portal_server.received_requests().await.unwrap().is_empty());
    assert_no_token_in_urls(&evil).await;
}

#[tokio::test]
async fn the_retry_carries_the_callers_headers_and_body() {
    let portal_server = MockServer::start().await;
    for (token, answer) in [
        ("Bearer token-0", arcgis_error(498)),
        ("Bearer token-1", ok_json()),
    ] {
        Mock::given(path(SELF_PATH))
            .and(method("GET"))
            .and(header("x-esri-authorization", token))
            .and(header("x-caller", "kept"))
            .respond_with(answer)
            .mount(&portal_server)
            .await;
    }
    Mock::given(path("/portal/sharing/rest/content/users/u/addItem"))
        .and(method("POST"))
        .and(body_string_contains("title=Roads"))
        .and(body_string_contains("token=token-2"))
        .respond_with(ok_json())
        .mount(&portal_server)
        .await;
    Mock::given(path("/portal/sharing/rest/content/users/u/addItem"))
        .and(method("POST"))
        .and(body_string_contains("title=Roads"))
        .and(body_string_contains("token=token-1"))
        .respond_with(arcgis_error(498))
        .mount(&portal_server)
        .await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let base = format!("{}/portal/sharing/rest", portal_server.uri());
    let client = client(&session, TokenRouting::new(portal.clone()));

    let r = client
        .get(format!("{}{SELF_PATH}?f=json", portal_server.uri()))
        .header("x-caller", "kept")
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);

    // A form POST on an origin whose token travels in the body: the retry
    // resends the caller's fields with the new token.
    let origin = Origin::parse(&portal_server.uri()).unwrap();
    let client = ArcGisAuth::new(
        session.manager.clone(),
        TokenRouting::new(portal).transport_for(origin, TokenTransport::FormBody),
        HttpClient::new().unwrap(),
    )
    .into_client()
    .unwrap();
    let r = client
        .post(format!("{base}/content/users/u/addItem"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("f=json&title=Roads")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"ok":true}"#);
    assert_eq!(session.source.calls(), 2);
    assert_no_token_in_urls(&portal_server).await;
}
