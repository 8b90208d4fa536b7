//! Rate limits: per route and on `GET /token`, per client, `X-Forwarded-For` only from trusted proxies.

mod common;

use common::{Bench, ORIGIN, arcgis_error};
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

async fn mount(b: &Bench) {
    Mock::given(path("/limited/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&b.upstream)
        .await;
}

/// `Retry-After` in seconds (whole seconds, rounded up).
fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds")
}

async fn get_as(b: &Bench, target: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut r = b.client.get(b.proxy(target)).header("origin", ORIGIN);
    if let Some(xff) = forwarded_for {
        r = r.header("x-forwarded-for", xff);
    }
    r.send().await.expect("gateway answers")
}

#[tokio::test]
async fn a_route_over_its_limit_answers_429_with_retry_after() {
    let b = Bench::start().await;
    mount(&b).await;
    let target = b.up("/limited/x");
    for _ in 0..2 {
        assert_eq!(get_as(&b, &target, None).await.status(), 200);
    }
    let r = get_as(&b, &target, None).await;
    assert_eq!(r.status(), 429);
    // 2 per hour: the next request is allowed in 30 minutes.
    assert!(
        (1790..=1800).contains(&retry_after(&r)),
        "{:?}",
        r.headers()
    );
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN),
        "the browser can read the 429"
    );
    arcgis_error(r).await;
    // The upstream saw only the two allowed requests; other routes are not limited.
    assert_eq!(b.upstream_requests().await.len(), 2);
    Mock::given(path("/open/y"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&b.upstream)
        .await;
    for _ in 0..5 {
        assert_eq!(b.get(&b.up("/open/y")).await.status(), 200);
    }
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_does_not_buy_a_new_bucket() {
    let b = Bench::start().await;
    mount(&b).await;
    let target = b.up("/limited/x");
    assert_eq!(
        get_as(&b, &target, Some("198.51.100.1")).await.status(),
        200
    );
    assert_eq!(
        get_as(&b, &target, Some("198.51.100.2")).await.status(),
        200
    );
    assert_eq!(
        get_as(&b, &target, Some("198.51.100.3")).await.status(),
        429
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    let b = Bench::start_with(r#"trusted_proxies = ["127.0.0.0/8"]"#).await;
    mount(&b).await;
    let target = b.up("/limited/x");
    for client in ["198.51.100.1", "198.51.100.2"] {
        for _ in 0..2 {
            assert_eq!(get_as(&b, &target, Some(client)).await.status(), 200);
        }
        assert_eq!(get_as(&b, &target, Some(client)).await.status(), 429);
    }
    // A client cannot escape by prepending a spoofed address: the nearest untrusted one counts.
    assert_eq!(
        get_as(&b, &target, Some("203.0.113.9, 198.51.100.1"))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn token_requests_are_limited_per_client() {
    let b = Bench::start_with("token_rate_limit = { requests = 2, per_seconds = 60 }").await;
    let ask = || {
        b.client
            .get(format!("{}/token?app=geo", b.base))
            .header("origin", ORIGIN)
            .send()
    };
    assert_eq!(ask().await.expect("answer").status(), 200);
    assert_eq!(ask().await.expect("answer").status(), 200);
    let r = ask().await.expect("answer");
    assert_eq!(r.status(), 429);
    assert!((20..=30).contains(&retry_after(&r)), "{:?}", r.headers());
    arcgis_error(r).await;
    // One sign-in: the limited request never reached the portal.
    assert_eq!(b.portal.issued_tokens().len(), 1);
}
