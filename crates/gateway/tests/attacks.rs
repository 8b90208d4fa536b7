//! Every way earlier proxies were talked into sending a request (and its
//! token) somewhere else: each refused, and no token leaves the gateway.

mod common;

use common::{Bench, ORIGIN, arcgis_error};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

async fn ok_everywhere(b: &Bench) {
    for server in [&b.upstream, &b.evil] {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(server)
            .await;
    }
}

#[tokio::test]
async fn look_alike_hosts_and_other_ports_are_refused() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    let port = b.port();
    for target in [
        // "127.0.0.1" is a string prefix of "127.0.0.10".
        format!("http://127.0.0.10:{port}/secure/x"),
        format!("http://127.0.0.1:{}/secure/x", port + 1),
        format!("http://localhost:{port}/secure/x"),
        format!("https://127.0.0.1:{port}/secure/x"),
        format!("http://127.0.0.1:{port}/securex"),
        format!("http://127.0.0.1:{port}/exact/MapServer/0"),
    ] {
        let r = b.get(&target).await;
        assert_eq!(r.status(), 403, "{target}");
        arcgis_error(r).await;
    }
    assert!(b.upstream_requests().await.is_empty());
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn userinfo_in_any_form_is_refused() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    let port = b.port();
    for target in [
        format!("http://127.0.0.1:{port}@127.0.0.10:{port}/secure/x"),
        format!("http://127.0.0.1:{port}%40127.0.0.10:{port}/secure/x"),
        format!("http%3A%2F%2F127.0.0.1%3A{port}%40127.0.0.10%3A{port}%2Fsecure%2Fx"),
        format!("http://u:p@127.0.0.1:{port}/secure/x"),
    ] {
        let r = b.get(&target).await;
        assert_eq!(r.status(), 400, "{target}");
        arcgis_error(r).await;
    }
    assert!(b.upstream_requests().await.is_empty());
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn crlf_backslashes_and_fragments_are_refused() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    let port = b.port();
    for target in [
        format!("http://127.0.0.1:{port}/secure/x%0D%0AHost:%20evil"),
        format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fsecure%2Fx%0D%0AX-A%3A1"),
        format!("http://127.0.0.1:{port}/secure/x?a=%0a"),
        format!("http%3A%2F%2F127.0.0.10%3A{port}%5C%40127.0.0.1%3A{port}%2Fsecure"),
        format!("http://127.0.0.10:{port}%5C@127.0.0.1:{port}/secure"),
        format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fsecure%23frag"),
        format!("http://127.0.0.1:{port}/secure/a%2F..%2F..%2Fopen"),
        format!("http%253A%252F%252F127.0.0.1%253A{port}%252Fsecure"),
    ] {
        let r = b.get(&target).await;
        assert_eq!(r.status(), 400, "{target}");
        let body = arcgis_error(r).await;
        assert!(
            !body.to_string().contains("127.0.0.1"),
            "the target is echoed: {body}"
        );
    }
    assert!(b.upstream_requests().await.is_empty());
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn dot_segments_are_resolved_before_matching() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    let port = b.port();
    // Climbing out of a secured route lands on the open one, without its token.
    let r = b
        .get(&format!("http://127.0.0.1:{port}/secure/../open/x"))
        .await;
    assert_eq!(r.status(), 200);
    let r = b
        .get(&format!("http://127.0.0.1:{port}/secure/%2e%2e/open/y"))
        .await;
    assert_eq!(r.status(), 200);
    // Climbing out of everything finds no route.
    let r = b
        .get(&format!("http://127.0.0.1:{port}/open/../../admin"))
        .await;
    assert_eq!(r.status(), 403);
    let seen = b.upstream_requests().await;
    let paths: Vec<&str> = seen.iter().map(|r| r.url.path()).collect();
    assert_eq!(paths, ["/open/x", "/open/y"]);
    for r in &seen {
        assert!(r.headers.get("x-esri-authorization").is_none());
    }
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn upstream_redirects_are_handed_back_not_followed() {
    let b = Bench::start().await;
    let port = b.port();
    Mock::given(path("/secure/moved"))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("http://127.0.0.10:{port}/steal").as_str(),
        ))
        .mount(&b.upstream)
        .await;
    ok_everywhere(&b).await;
    let r = b.get(&b.up("/secure/moved")).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some(format!("http://127.0.0.10:{port}/steal").as_str())
    );
    assert_eq!(b.evil_requests().await, 0);
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn the_upstream_never_comes_from_the_host_header() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    let port = b.port();
    let evil_host = format!("127.0.0.10:{port}");
    // A relative target is not completed from Host.
    for target in ["/secure/x", "//127.0.0.10/secure/x", "secure/x"] {
        let r = b
            .client
            .get(b.proxy(target))
            .header("host", evil_host.as_str())
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 400, "{target}");
    }
    // An absolute target goes to its own host, whatever Host says.
    let r = b
        .client
        .get(b.proxy(&b.up("/secure/x")))
        .header("host", evil_host.as_str())
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let seen = b.upstream_requests().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers.get("host").and_then(|v| v.to_str().ok()),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn the_browsers_own_credentials_are_removed_on_authenticated_routes() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&b.upstream)
        .await;
    let r = b
        .client
        .get(b.proxy(&b.up("/secure/x?f=json&token=browser-token&TOKEN=again")))
        .header("origin", ORIGIN)
        .header("authorization", "Bearer browser-token")
        .header("x-esri-authorization", "Bearer browser-token")
        .header("cookie", "esri_auth=browser-token")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let r = b
        .client
        .post(b.proxy(&b.up("/secure/x")))
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("f=json&token=browser-token&where=1%3D1")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let issued = b.issued();
    assert_eq!(issued.len(), 1, "one sign-in for both requests");
    let seen = b.upstream_requests().await;
    assert_eq!(seen.len(), 2);
    for r in &seen {
        let text = common::request_text(r);
        assert!(!text.contains("browser-token"), "{text}");
        assert!(r.headers.get("authorization").is_none());
        assert!(r.headers.get("cookie").is_none());
        assert_eq!(
            r.headers
                .get("x-esri-authorization")
                .and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {}", issued[0]).as_str())
        );
        assert!(
            !r.url.query().unwrap_or("").contains(issued[0].as_str()),
            "token in the URL"
        );
    }
    assert_eq!(seen[0].url.query(), Some("f=json"));
    assert_eq!(String::from_utf8_lossy(&seen[1].body), "f=json&where=1%3D1");
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn open_routes_carry_no_gateway_token() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    // Make sure a token exists, then use the open route.
    assert_eq!(b.get(&b.up("/secure/x")).await.status(), 200);
    assert_eq!(b.get(&b.up("/open/x?f=json")).await.status(), 200);
    let seen = b.upstream_requests().await;
    assert!(seen[1].headers.get("x-esri-authorization").is_none());
    b.assert_no_token_left().await;
}

#[tokio::test]
async fn origins_that_are_not_allowed_are_refused_before_anything_is_sent() {
    let b = Bench::start().await;
    ok_everywhere(&b).await;
    for (name, value) in [
        ("origin", "https://app.example.com.evil.tld"),
        ("origin", "null"),
        ("referer", "https://evil.example/page"),
    ] {
        let r = b
            .client
            .get(b.proxy(&b.up("/secure/x")))
            .header(name, value)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 403, "{name}: {value}");
        arcgis_error(r).await;
    }
    let r = b
        .client
        .get(b.proxy(&b.up("/secure/x")))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 403, "no Origin and no Referer");
    assert!(b.upstream_requests().await.is_empty());
    assert!(b.issued().is_empty(), "no sign-in for refused requests");
    b.assert_no_token_left().await;
}
