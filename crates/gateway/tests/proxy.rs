//! Proxying: tokens from the managers, 498 recovery, streaming and pass-through.

mod common;

use arcgis_auth_testkit::{Endpoint, Failure, Grant, USERNAME};
use common::{Bench, ORIGIN, STANDALONE, arcgis_error};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

#[tokio::test]
async fn app_routes_reach_the_portal_with_one_sign_in() {
    let b = Bench::start().await;
    let item = b.portal.secured_item_url("abc123");
    for _ in 0..3 {
        let r = b.get(&format!("{item}?f=json")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(ORIGIN)
        );
        assert_eq!(
            r.headers()
                .get_all("access-control-allow-origin")
                .iter()
                .count(),
            1
        );
        let body: serde_json::Value = r.json().await.expect("json");
        assert!(body.get("error").is_none(), "{body}");
    }
    assert_eq!(b.portal.calls().token(Grant::ClientCredentials), 1);
    assert_eq!(b.portal.calls().endpoint(Endpoint::ContentItem), 3);
    assert_eq!(b.portal.calls().secrets_in_url(), 0);
}

#[tokio::test]
async fn server_routes_use_the_servers_own_account() {
    let b = Bench::start().await;
    let server = b.portal.server(STANDALONE).expect("server");
    let r = b
        .get(&format!(
            "{}?f=json",
            server.service_url("Secure/MapServer")
        ))
        .await;
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    assert!(body.contains(USERNAME), "{body}");
    assert_eq!(
        b.portal
            .calls()
            .server(STANDALONE, Endpoint::ServerGenerateToken),
        1
    );
    assert_eq!(b.portal.calls().secrets_in_url(), 0);
}

#[tokio::test]
async fn a_servers_admin_api_gets_an_admin_token() {
    let b = Bench::start().await;
    let server = b.portal.server(STANDALONE).expect("server");
    // The Administrator API refuses the services' tokens: the gateway asks
    // the server's admin/generateToken for that route's URLs.
    for _ in 0..2 {
        let r = b
            .get(&format!("{}?f=json", server.admin_url("services")))
            .await;
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.expect("json");
        assert!(body.get("error").is_none(), "{body}");
    }
    let r = b
        .get(&format!("{}?f=json", server.service_url("S/MapServer")))
        .await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(body.get("error").is_none(), "{body}");
    let calls = b.portal.calls();
    assert_eq!(
        calls.server(STANDALONE, Endpoint::ServerAdminGenerateToken),
        1
    );
    assert_eq!(calls.server(STANDALONE, Endpoint::ServerGenerateToken), 1);
    assert_eq!(calls.secrets_in_url(), 0);
}

#[tokio::test]
async fn a_498_inside_http_200_is_renewed_once_and_retried_for_apps() {
    let b = Bench::start().await;
    let item = format!("{}?f=json", b.portal.secured_item_url("abc123"));
    assert_eq!(b.get(&item).await.status(), 200);
    // The portal kills its tokens early (a revoke, a password change): the
    // gateway's token still looks fresh, so the next call gets a 498 in an HTTP 200.
    b.portal.expire_access_tokens();
    let r = b.get(&item).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body.get("error").is_none(),
        "the browser saw the 498: {body}"
    );
    assert_eq!(b.portal.calls().token(Grant::ClientCredentials), 2);
    // A form POST is replayed too.
    b.portal.expire_access_tokens();
    let r = b
        .client
        .post(b.proxy(&b.portal.secured_item_url("abc123")))
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("f=json")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    assert_eq!(b.portal.calls().token(Grant::ClientCredentials), 3);
}

/// ArcGIS Server compresses its JSON: a 498 inside a gzip (or deflate) answer
/// is seen and retried, and the answer that follows reaches the browser still
/// compressed, byte for byte.
#[tokio::test]
async fn a_498_inside_a_compressed_answer_is_renewed_and_retried() {
    use std::io::Write;

    fn gzip(body: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).unwrap();
        gz.finish().unwrap()
    }
    fn deflate(body: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(body).unwrap();
        z.finish().unwrap()
    }
    let b = Bench::start().await;
    let invalid = br#"{"error" : {"code" : 498, "message" : "Invalid token."}}"#;
    for (n, (encoding, encode)) in [("gzip", gzip as fn(&[u8]) -> Vec<u8>), ("deflate", deflate)]
        .into_iter()
        .enumerate()
    {
        let at = format!("/secure/{encoding}/FeatureServer/0");
        let fine = encode(br#"{"features":[]}"#);
        Mock::given(path(at.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(encode(invalid), "application/json; charset=utf-8")
                    .insert_header("content-encoding", encoding),
            )
            .up_to_n_times(1)
            .mount(&b.upstream)
            .await;
        Mock::given(path(at.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw(fine.clone(), "application/json; charset=utf-8")
                    .insert_header("content-encoding", encoding),
            )
            .mount(&b.upstream)
            .await;
        let r = b
            .client
            .get(b.proxy(&b.up(&at)))
            .header("origin", ORIGIN)
            .header("accept-encoding", encoding)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
            Some(encoding)
        );
        assert_eq!(r.bytes().await.expect("body").as_ref(), fine.as_slice());
        assert_eq!(
            b.portal.calls().token(Grant::ClientCredentials),
            n as u64 + 2,
            "{encoding}: the refused token was renewed once"
        );
    }
}

#[tokio::test]
async fn a_498_is_renewed_and_retried_for_servers() {
    let b = Bench::start().await;
    let url = format!(
        "{}?f=json",
        b.portal
            .server(STANDALONE)
            .expect("server")
            .service_url("S/MapServer")
    );
    assert_eq!(b.get(&url).await.status(), 200);
    b.portal.expire_access_tokens();
    let r = b.get(&url).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.expect("body").contains(USERNAME));
    assert_eq!(
        b.portal
            .calls()
            .server(STANDALONE, Endpoint::ServerGenerateToken),
        2
    );
}

#[tokio::test]
async fn a_token_endpoint_failure_is_a_5xx_never_a_498_and_recovers() {
    let b = Bench::start().await;
    b.portal
        .fail_next_token_calls(1, Failure::ServiceUnavailable503);
    let item = format!("{}?f=json", b.portal.secured_item_url("abc123"));
    let r = b.get(&item).await;
    assert_eq!(r.status(), 502);
    let body = arcgis_error(r).await;
    assert_ne!(body["error"]["code"], 498);
    assert_eq!(
        b.portal.calls().endpoint(Endpoint::ContentItem),
        0,
        "nothing sent without a token"
    );
    // The portal is back: the next request signs in and succeeds.
    let r = b.get(&item).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_streamed_upload_that_meets_a_498_is_not_replayed_but_renews() {
    let b = Bench::start().await;
    Mock::given(method("POST"))
        .and(path("/secure/upload"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"error":{"code":498,"message":"Invalid token."}}"#,
            "application/json",
        ))
        .up_to_n_times(1)
        .mount(&b.upstream)
        .await;
    Mock::given(method("POST"))
        .and(path("/secure/upload"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
        .mount(&b.upstream)
        .await;
    // 2 MiB of multipart: more than the gateway holds, so it streams once.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let send = || {
        b.client
            .post(b.proxy(&b.up("/secure/upload")))
            .header("origin", ORIGIN)
            .header("content-type", "multipart/form-data; boundary=x")
            .body(big.clone())
            .send()
    };
    let r = send().await.expect("answer");
    assert_eq!(r.status(), 502);
    arcgis_error(r).await;
    let r = send().await.expect("answer");
    assert_eq!(r.status(), 200);
    let seen = b.upstream_requests().await;
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter().all(|r| r.body.len() == big.len()),
        "the upload arrived whole"
    );
    assert_eq!(
        b.portal.calls().token(Grant::ClientCredentials),
        2,
        "the refused token was renewed"
    );
}

/// A form larger than the gateway holds streams through; its `token`
/// fields (first, in the middle, last, in any spelling) never reach the
/// upstream, and every other byte does.
#[tokio::test]
async fn a_large_form_streams_without_its_token_fields() {
    let b = Bench::start().await;
    Mock::given(method("POST"))
        .and(path("/secure/applyEdits"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("{}", "application/json"))
        .mount(&b.upstream)
        .await;
    let features = "x".repeat(3 * 1024 * 1024);
    let body = format!(
        "token=browser-1&f=json&features={features}&%74oken=browser-2&rollbackOnFailure=true&TOKEN=browser-3"
    );
    let r = b
        .client
        .post(b.proxy(&b.up("/secure/applyEdits")))
        .header("origin", ORIGIN)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let seen = b.upstream_requests().await;
    assert_eq!(seen.len(), 1);
    let sent = String::from_utf8(seen[0].body.clone()).expect("ascii");
    assert_eq!(
        sent,
        format!("f=json&features={features}&rollbackOnFailure=true")
    );
    assert!(!sent.contains("browser-"));
    let auth = seen[0]
        .headers
        .get("x-esri-authorization")
        .expect("the gateway's token")
        .to_str()
        .expect("text");
    assert!(
        auth.starts_with("Bearer ") && !auth.contains("browser-"),
        "{auth}"
    );
}

#[tokio::test]
async fn bodies_statuses_and_headers_pass_through_unchanged() {
    let b = Bench::start().await;
    let large: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    Mock::given(path("/open/large"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(large.clone(), "application/octet-stream"),
        )
        .mount(&b.upstream)
        .await;
    let gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3];
    Mock::given(path("/open/gz"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(gz.clone(), "application/json")
                .insert_header("content-encoding", "gzip")
                .insert_header("etag", "\"v1\""),
        )
        .mount(&b.upstream)
        .await;
    Mock::given(path("/open/range"))
        .and(header("range", "bytes=0-3"))
        .respond_with(
            ResponseTemplate::new(206)
                .set_body_raw("abcd", "text/plain")
                .insert_header("content-range", "bytes 0-3/10"),
        )
        .mount(&b.upstream)
        .await;
    Mock::given(path("/open/cached"))
        .and(header("if-none-match", "\"v1\""))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", "\"v1\""))
        .mount(&b.upstream)
        .await;
    Mock::given(path("/open/missing"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw("<h1>not here</h1>", "text/html")
                .insert_header("access-control-allow-origin", "*")
                .insert_header("x-custom-hop", "drop me")
                .insert_header("connection", "x-custom-hop"),
        )
        .mount(&b.upstream)
        .await;

    let r = b.get(&b.up("/open/large")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.expect("body").as_ref(), large.as_slice());

    let r = b
        .client
        .get(b.proxy(&b.up("/open/gz")))
        .header("origin", ORIGIN)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        r.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    assert_eq!(
        r.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"v1\"")
    );
    assert_eq!(r.bytes().await.expect("body").as_ref(), gz.as_slice());

    let r = b
        .client
        .get(b.proxy(&b.up("/open/range")))
        .header("origin", ORIGIN)
        .header("range", "bytes=0-3")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 206);
    assert_eq!(r.text().await.expect("body"), "abcd");

    let r = b
        .client
        .get(b.proxy(&b.up("/open/cached")))
        .header("origin", ORIGIN)
        .header("if-none-match", "\"v1\"")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.expect("body").is_empty());

    let r = b
        .client
        .get(b.proxy(&b.up("/open/missing")))
        .header("origin", ORIGIN)
        .header("connection", "x-browser-hop")
        .header("x-browser-hop", "drop me too")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("x-custom-hop").is_none());
    let acao: Vec<_> = r
        .headers()
        .get_all("access-control-allow-origin")
        .iter()
        .collect();
    assert_eq!(acao, [ORIGIN], "CORS set once, by the gateway");
    assert_eq!(r.text().await.expect("body"), "<h1>not here</h1>");
    let seen = b.upstream_requests().await;
    assert!(
        seen.iter()
            .all(|r| r.headers.get("x-browser-hop").is_none())
    );
}

#[tokio::test]
async fn every_method_is_forwarded() {
    let b = Bench::start().await;
    Mock::given(path("/open/m"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&b.upstream)
        .await;
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).expect("method");
        let r = b
            .client
            .request(method, b.proxy(&b.up("/open/m")))
            .header("origin", ORIGIN)
            .body(if m == "GET" || m == "HEAD" {
                ""
            } else {
                "payload"
            })
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200, "{m}");
    }
    let seen: Vec<String> = b
        .upstream_requests()
        .await
        .iter()
        .map(|r| r.method.to_string())
        .collect();
    assert_eq!(
        seen,
        ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    );
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_gateway() {
    let b = Bench::start().await;
    let r = b
        .client
        .request(reqwest::Method::OPTIONS, b.proxy(&b.up("/secure/x")))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN)
    );
    assert!(b.upstream_requests().await.is_empty());
}

#[tokio::test]
async fn unreachable_and_slow_upstreams_are_502_and_504() {
    let b = Bench::start_with("upstream_timeout_seconds = 1").await;
    Mock::given(path("/open/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(30)))
        .mount(&b.upstream)
        .await;
    let r = b.get(&b.up("/open/slow")).await;
    assert_eq!(r.status(), 504);
    arcgis_error(r).await;
    // A route to a port nothing listens on.
    let r = b.get("http://127.0.0.1:1/closed/x").await;
    assert_eq!(r.status(), 502);
    arcgis_error(r).await;
}

#[tokio::test]
async fn ping_answers_like_resource_proxy() {
    let b = Bench::start().await;
    for p in ["/proxy", "/proxy.ashx", "/proxy.php", "/proxy.jsp"] {
        let r = b
            .client
            .get(format!("{}{p}?ping", b.base))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["Configuration File"], "OK");
        assert_eq!(body["Log File"], "OK");
        assert!(
            body["Proxy Version"]
                .as_str()
                .is_some_and(|v| v.starts_with("arcgis-auth-gateway"))
        );
    }
}
