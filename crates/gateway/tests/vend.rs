//! `GET /token`, `/healthz`, `/readyz`, and secrets kept out of logs and answers.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use arcgis_auth_testkit::{CONFIDENTIAL_CLIENT_SECRET, Failure, Grant, PASSWORD};
use common::{Bench, ORIGIN, STANDALONE, arcgis_error};

#[tokio::test]
async fn allowed_origins_get_a_token_in_generate_token_shape() {
    let b = Bench::start().await;
    let r = b
        .client
        .get(format!("{}/token?app=geo", b.base))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(ORIGIN)
    );
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: serde_json::Value = r.json().await.expect("json");
    let issued = b.portal.issued_tokens();
    assert_eq!(issued.len(), 1);
    use arcgis_auth_core::ExposeSecret;
    assert_eq!(body["token"], issued[0].token.expose_secret());
    // `oauth2/token` answers `expires_in` seconds: the gateway dates them on its
    // own clock, so the epoch milliseconds agree with the portal's to within the round trip.
    let expires = body["expires"].as_i64().expect("epoch ms");
    assert!(
        (expires - issued[0].expires_at.as_unix_millis()).abs() < 60_000,
        "{body}"
    );
    assert_eq!(body["ssl"], true);
    // A Referer from an allowed origin works too (no CORS header to echo).
    let r = b
        .client
        .get(format!("{}/token?app=geo", b.base))
        .header("referer", format!("{ORIGIN}/map.html"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    assert_eq!(
        b.portal.calls().token(Grant::ClientCredentials),
        1,
        "the cached token is handed out"
    );
}

#[tokio::test]
async fn token_requests_from_elsewhere_or_for_other_apps_are_refused() {
    let b = Bench::start().await;
    let ask = |app: &str, header: Option<(&'static str, &'static str)>| {
        let mut r = b.client.get(format!("{}/token?app={app}", b.base));
        if let Some((n, v)) = header {
            r = r.header(n, v);
        }
        r.send()
    };
    for (app, header) in [
        ("geo", None),
        ("geo", Some(("origin", "https://evil.example"))),
        (
            "geo",
            Some(("referer", "https://app.example.com.evil.tld/")),
        ),
        ("quiet", Some(("origin", ORIGIN))),
        ("nope", Some(("origin", ORIGIN))),
        ("", Some(("origin", ORIGIN))),
    ] {
        let r = ask(app, header).await.expect("answer");
        assert_eq!(r.status(), 403, "{app} {header:?}");
        arcgis_error(r).await;
    }
    assert!(
        b.portal.issued_tokens().is_empty(),
        "nothing was signed in for refused requests"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let b = Bench::start().await;
    let get = |p: &str| b.client.get(format!("{}{p}", b.base)).send();
    assert_eq!(get("/healthz").await.expect("answer").status(), 200);
    assert_eq!(get("/readyz").await.expect("answer").status(), 200);
    b.gateway.start_draining();
    assert_eq!(get("/healthz").await.expect("answer").status(), 200);
    let r = get("/readyz").await.expect("answer");
    assert_eq!(r.status(), 503);
    let r = b.get(&b.up("/open/x")).await;
    assert_eq!(r.status(), 503);
    arcgis_error(r).await;
    assert!(b.upstream_requests().await.is_empty());
    let r = get("/nothing-here").await.expect("answer");
    assert_eq!(r.status(), 404);
    arcgis_error(r).await;
}

#[tokio::test]
async fn a_wrong_method_is_an_arcgis_shaped_405_naming_get() {
    let b = Bench::start().await;
    for endpoint in ["/token?app=geo", "/healthz", "/readyz", "/metrics"] {
        let r = b
            .client
            .post(format!("{}{endpoint}", b.base))
            .header("origin", ORIGIN)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 405, "{endpoint}");
        assert_eq!(
            r.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some("GET,HEAD"),
            "{endpoint}"
        );
        let body = arcgis_error(r).await;
        assert_eq!(body["error"]["code"], 405, "{endpoint}");
    }
    assert_eq!(b.portal.calls().total(), 0, "nothing was vended");
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything the gateway logs at TRACE, and every answer, while it signs in,
/// vends, proxies with browser tokens, recovers from a 498 and meets a
/// failing token endpoint: no token, secret or password in any of it.
#[tokio::test(flavor = "current_thread")]
async fn tokens_and_secrets_never_appear_in_logs_or_error_bodies() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let b = Bench::start().await;
    let mut answers = String::new();
    let item = format!(
        "{}?f=json&token=browser-secret-token",
        b.portal.secured_item_url("abc")
    );
    let server = format!(
        "{}?f=json",
        b.portal
            .server(STANDALONE)
            .expect("server")
            .service_url("S/MapServer")
    );
    for target in [item.as_str(), server.as_str()] {
        answers.push_str(&b.get(target).await.text().await.expect("body"));
    }
    let vend = b
        .client
        .get(format!("{}/token?app=geo", b.base))
        .header("origin", ORIGIN)
        .send()
        .await
        .expect("answer");
    assert_eq!(vend.status(), 200);
    b.portal.expire_access_tokens();
    for target in [item.as_str(), server.as_str()] {
        answers.push_str(&b.get(target).await.text().await.expect("body"));
    }
    b.portal.expire_access_tokens();
    b.portal
        .fail_next_token_calls(100, Failure::ServiceUnavailable503);
    b.portal.fail_next_calls(
        arcgis_auth_testkit::Endpoint::GenerateToken,
        100,
        Failure::ServiceUnavailable503,
    );
    for target in [
        item.as_str(),
        "http://127.0.0.1:1/closed/x?token=browser-secret-token",
    ] {
        answers.push_str(&b.get(target).await.text().await.expect("body"));
    }
    for target in [
        "http://127.0.0.1:1/closed/x%0a?token=browser-secret-token",
        "https://nowhere.example/?token=browser-secret-token",
    ] {
        answers.push_str(&b.get(target).await.text().await.expect("body"));
    }

    let logged = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    assert!(
        logged.contains("proxied"),
        "the test captured the gateway's logs"
    );
    let mut secrets = b.issued();
    assert!(
        secrets.len() >= 4,
        "app and server tokens were issued and renewed"
    );
    secrets.push(CONFIDENTIAL_CLIENT_SECRET.to_owned());
    secrets.push(PASSWORD.to_owned());
    secrets.push("browser-secret-token".to_owned());
    for secret in &secrets {
        assert!(
            !logged.contains(secret.as_str()),
            "a secret was logged: {logged}"
        );
        assert!(
            !answers.contains(secret.as_str()),
            "a secret was answered: {answers}"
        );
    }
}
