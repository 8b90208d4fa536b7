//! `HttpClient::post_form_json` and `HttpClient::get_json`: the bounded,
//! classified JSON calls to portals, against a loopback wiremock server.
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ErrorKind, HttpClient, ManualClock, SecretString, Timestamp};
use url::Url;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "t0ken-value";

fn url(server: &MockServer, p: &str) -> Url {
    Url::parse(&format!("{}{p}", server.uri())).unwrap()
}

fn no_token_in_urls(requests: &[wiremock::Request]) {
    for r in requests {
        assert!(!r.url.as_str().contains(TOKEN), "{}", r.url);
    }
}

#[tokio::test]
async fn post_sends_the_token_in_the_body_with_f_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/community/self"))
        .and(body_string_contains("f=json"))
        .and(body_string_contains(format!("token={TOKEN}")))
        .and(body_string_contains("num=1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(r#"{"username":"jdoe"}"#, "text/plain"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let http = HttpClient::new().unwrap();
    let body = http
        .post_form_json(
            &url(&server, "/community/self"),
            &[("num", "1")],
            Some(&SecretString::from(TOKEN)),
        )
        .await
        .unwrap();
    assert_eq!(body, br#"{"username":"jdoe"}"#);
    no_token_in_urls(&server.received_requests().await.unwrap());
}

#[tokio::test]
async fn get_sends_the_token_in_a_header_and_f_json_in_the_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/portals/self"))
        .and(query_param("f", "json"))
        .and(header(
            "x-esri-authorization",
            format!("Bearer {TOKEN}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(r#"{"id":"org"}"#, "application/json"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let http = HttpClient::new().unwrap();
    let body = http
        .get_json(
            &url(&server, "/portals/self"),
            Some(&SecretString::from(TOKEN)),
        )
        .await
        .unwrap();
    assert_eq!(body, br#"{"id":"org"}"#);
    no_token_in_urls(&server.received_requests().await.unwrap());

    let bad = http
        .get_json(
            &url(&server, "/portals/self"),
            Some(&SecretString::from("a\nb")),
        )
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn answers_are_classified_and_bounded() {
    let server = MockServer::start().await;
    Mock::given(path("/expired"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#,
            "text/plain",
        ))
        .mount(&server)
        .await;
    Mock::given(path("/outage"))
        .respond_with(
            ResponseTemplate::new(502).set_body_raw("<html>Bad Gateway</html>", "text/html"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/huge"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!("{{\"x\":\"{}\"}}", "a".repeat(4 * 1024 * 1024)),
            "application/json",
        ))
        .mount(&server)
        .await;
    Mock::given(path("/large"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!("{{\"x\":\"{}\"}}", "a".repeat(2 * 1024 * 1024)),
            "application/json",
        ))
        .mount(&server)
        .await;
    let http = HttpClient::new().unwrap();
    let token = SecretString::from(TOKEN);
    let kind = |p: &'static str| {
        let http = http.clone();
        let u = url(&server, p);
        let token = token.clone();
        async move {
            http.post_form_json(&u, &[], Some(&token))
                .await
                .map(|b| b.len())
                .map_err(|e| e.kind())
        }
    };
    assert_eq!(kind("/expired").await, Err(ErrorKind::InvalidToken));
    assert_eq!(kind("/outage").await, Err(ErrorKind::Server));
    assert_eq!(kind("/huge").await, Err(ErrorKind::UnparseableResponse));
    assert!(kind("/large").await.is_ok(), "answers up to 4 MiB are read");
}

#[tokio::test]
async fn retry_after_dates_are_read_against_the_clients_clock() {
    let server = MockServer::start().await;
    let start = Timestamp::from_unix_millis(1_732_200_000_000);
    let date = httpdate::fmt_http_date((start + Duration::from_secs(45)).to_system_time());
    Mock::given(path("/busy"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", date.as_str()))
        .mount(&server)
        .await;
    let clock = ManualClock::new(start);
    let http = HttpClient::new()
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let busy = url(&server, "/busy");
    let e = http.get_json(&busy, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(45)));
    // Twenty seconds later the same date is 25 seconds away.
    clock.advance(Duration::from_secs(20));
    let e = http.post_form_json(&busy, &[], None).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(25)));
    // On the system clock (2024 is long past), the date has gone: retry now.
    let e = HttpClient::new()
        .unwrap()
        .get_json(&busy, None)
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::ZERO));
}

#[tokio::test]
async fn a_token_never_goes_to_remote_plain_http() {
    // A documentation address: anything sent would be a Transport error (or hang).
    let remote = Url::parse("http://192.0.2.1:9/portal/sharing/rest/community/self").unwrap();
    let http = HttpClient::new().unwrap();
    let token = SecretString::from(TOKEN);
    let e = http
        .post_form_json(&remote, &[], Some(&token))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsecureTransport);
    let e = http.get_json(&remote, Some(&token)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsecureTransport);
    assert!(!format!("{e} {e:?}").contains(TOKEN));
}
