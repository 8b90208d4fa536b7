//! `GET /metrics`: the counters move with the traffic.

mod common;

use common::{Bench, ORIGIN};
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

/// The value of the sample written exactly `series` (name and labels), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(b: &Bench) -> String {
    let r = b
        .client
        .get(format!("{}/metrics", b.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain; version=0.0.4"))
    );
    r.text().await.expect("text")
}

#[tokio::test]
async fn requests_latency_renewals_retries_and_limits_are_counted() {
    let b = Bench::start().await;
    Mock::given(path("/open/x"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&b.upstream)
        .await;
    Mock::given(path("/limited/x"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&b.upstream)
        .await;
    let before = scrape(&b).await;
    let open = format!("http://127.0.0.1:{}/open", b.port());
    let open_200 = format!("arcgis_gateway_requests_total{{route=\"{open}\",status=\"200\"}}");
    assert_eq!(sample(&before, &open_200), 0.0);

    for _ in 0..3 {
        assert_eq!(b.get(&b.up("/open/x")).await.status(), 200);
    }
    assert_eq!(b.get("https://evil.example/x").await.status(), 403);
    // An app route: one sign-in, then a 498 that is renewed and retried.
    let item = format!("{}?f=json", b.portal.secured_item_url("abc123"));
    assert_eq!(b.get(&item).await.status(), 200);
    b.portal.expire_access_tokens();
    assert_eq!(b.get(&item).await.status(), 200);
    // The limited route: 2 allowed, then 429.
    for _ in 0..3 {
        b.get(&b.up("/limited/x")).await;
    }
    // A token request.
    let r = b
        .client
        .get(format!("{}/token?app=geo", b.base))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);

    let text = scrape(&b).await;
    assert_eq!(sample(&text, &open_200), 3.0, "{text}");
    assert_eq!(
        sample(
            &text,
            "arcgis_gateway_requests_total{route=\"none\",status=\"403\"}"
        ),
        1.0
    );
    let limited = format!("http://127.0.0.1:{}/limited", b.port());
    assert_eq!(
        sample(
            &text,
            &format!("arcgis_gateway_requests_total{{route=\"{limited}\",status=\"429\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("arcgis_gateway_rate_limited_total{{limit=\"route:{limited}\"}}")
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "arcgis_gateway_requests_total{route=\"/token\",status=\"200\"}"
        ),
        1.0
    );
    // Upstream latency: every request that reached the open upstream.
    assert_eq!(
        sample(
            &text,
            &format!("arcgis_gateway_upstream_latency_seconds_count{{route=\"{open}\"}}")
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "arcgis_gateway_upstream_latency_seconds_bucket{{route=\"{open}\",le=\"+Inf\"}}"
            )
        ),
        3.0
    );
    // The first sign-in and the renewal after the 498, and the one retry.
    assert_eq!(
        sample(
            &text,
            "arcgis_gateway_token_renewals_total{credential=\"app:geo\",outcome=\"ok\"}"
        ),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "arcgis_gateway_invalid_token_retries_total{credential=\"app:geo\"}"
        ),
        1.0
    );
    // No token or secret in the exposition.
    for t in b.issued() {
        assert!(!text.contains(&t));
    }
}
