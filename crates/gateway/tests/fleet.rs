//! A fleet: three `arcgis-auth-gateway` processes on one Redis share their tokens and rate limits.

mod common;

use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_testkit::{
    App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, FakePortal, Grant, PASSWORD,
    Server, USERNAME,
};
use common::binary::start_binary;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const ORIGIN: &str = "https://app.example.com";
const LIMIT: usize = 60;

/// Sends `each` GETs of `target` to every gateway at once; the answers' statuses and bodies.
async fn burst(
    client: &reqwest::Client,
    gateways: &[String],
    target: &str,
    each: usize,
) -> Vec<(u16, String)> {
    let mut calls = Vec::new();
    for base in gateways {
        for _ in 0..each {
            let request = client
                .get(format!("{base}/proxy?{target}"))
                .header("origin", ORIGIN)
                .send();
            calls.push(tokio::spawn(async move {
                let r = request.await.expect("the gateway answers");
                let status = r.status().as_u16();
                (status, r.text().await.unwrap_or_default())
            }));
        }
    }
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("task"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_share_tokens_and_rate_limits() {
    let Some(redis) =
        RedisServer::private_for_test("three_gateways_share_tokens_and_rate_limits", &[])
    else {
        return;
    };
    let portal = FakePortal::builder()
        .app(App::confidential(
            CONFIDENTIAL_CLIENT_ID,
            CONFIDENTIAL_CLIENT_SECRET,
        ))
        .user(USERNAME, PASSWORD)
        .server(Server::standalone("gis"))
        .start()
        .await;
    let server = portal.server("gis").expect("server");
    let upstream = MockServer::start().await;
    Mock::given(path("/limited/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
listen = "127.0.0.1:0"
portal = "{portal}"
store = "{redis}"
allowed_origins = ["{ORIGIN}"]

[[apps]]
name = "geo"
client_id = "{CONFIDENTIAL_CLIENT_ID}"
client_secret_env = "GEO_SECRET"

[[servers]]
name = "gis"
url = "{server}"
username = "{USERNAME}"
password_env = "GIS_PASSWORD"

[[routes]]
url = "{root}/sharing/rest/content/items"
match_all = true
auth = "app:geo"

[[routes]]
url = "{server}/rest/services"
match_all = true
auth = "server:gis"

[[routes]]
url = "{up}/limited"
match_all = true
rate_limit = {{ requests = {LIMIT}, per_seconds = 3600 }}
"#,
            portal = portal.portal_url(),
            redis = redis.url(),
            server = server.root_url(),
            root = portal.url_root(),
            up = upstream.uri(),
        ),
    )
    .expect("write config");

    let mut gateways = Vec::new();
    let mut children = Vec::new();
    for _ in 0..3 {
        let (base, child) = start_binary(
            &config,
            &[
                ("GEO_SECRET", CONFIDENTIAL_CLIENT_SECRET),
                ("GIS_PASSWORD", PASSWORD),
            ],
        )
        .await;
        gateways.push(base);
        children.push(child);
    }
    let client = reqwest::Client::new();
    let item = format!("{}?f=json", portal.secured_item_url("abc123"));
    let service = format!("{}?f=json", server.service_url("S/MapServer"));

    // Each round the portal ends its tokens (as an expiry or a revoke does):
    // the fleet renews once per credential, and no browser sees a failure.
    const ROUNDS: u64 = 3;
    for round in 1..=ROUNDS {
        for target in [&item, &service] {
            for (status, body) in burst(&client, &gateways, target, 8).await {
                assert_eq!(status, 200, "round {round}: {body}");
                assert!(!body.contains("\"error\""), "round {round}: {body}");
            }
        }
        let calls = portal.calls();
        assert_eq!(
            calls.token(Grant::ClientCredentials),
            round,
            "one app sign-in per expiry across the fleet"
        );
        assert_eq!(
            calls.server("gis", Endpoint::ServerGenerateToken),
            round,
            "one server sign-in per expiry across the fleet"
        );
        portal.expire_access_tokens();
    }

    // One limit of LIMIT an hour for the fleet: 1.5 times as many requests,
    // spread over the three processes, admit LIMIT ± 5%.
    let answers = burst(
        &client,
        &gateways,
        &format!("{}/limited/x", upstream.uri()),
        LIMIT / 2,
    )
    .await;
    let allowed = answers.iter().filter(|(s, _)| *s == 200).count();
    let limited = answers.iter().filter(|(s, _)| *s == 429).count();
    assert_eq!(allowed + limited, answers.len(), "{answers:?}");
    let margin = LIMIT * 5 / 100;
    assert!(
        (LIMIT - margin..=LIMIT + margin).contains(&allowed),
        "{allowed} of {} admitted for a limit of {LIMIT}",
        answers.len()
    );
    let forwarded = upstream.received_requests().await.unwrap_or_default().len();
    assert_eq!(forwarded, allowed);

    for mut child in children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// Two in-process gateways on one Redis, a route limited to 2 an hour.
async fn limited_pair(redis: &RedisServer, upstream: &MockServer) -> Vec<String> {
    let text = format!(
        r#"
listen = "127.0.0.1:0"
[[routes]]
url = "{up}/limited"
match_all = true
rate_limit = {{ requests = 2, per_seconds = 3600 }}

[[routes]]
url = "{up}/probe"
match_all = true
rate_limit = {{ requests = 100000, per_seconds = 1 }}
"#,
        up = upstream.uri()
    );
    let mut bases = Vec::new();
    for _ in 0..2 {
        let config =
            arcgis_auth_gateway::Config::from_toml(&text, &std::collections::BTreeMap::new())
                .expect("config");
        let store = arcgis_auth_storage::RedisStore::builder(redis.url())
            .response_timeout(std::time::Duration::from_millis(200))
            .connection_timeout(std::time::Duration::from_millis(200))
            .connect()
            .await
            .expect("redis");
        let gateway = arcgis_auth_gateway::Gateway::builder(config)
            .redis_store(store)
            .build()
            .await
            .expect("gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        bases.push(format!("http://{}", listener.local_addr().expect("addr")));
        tokio::spawn(arcgis_auth_gateway::serve(
            listener,
            gateway,
            std::future::pending(),
        ));
    }
    bases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_each_gateway_counts_its_own_requests_and_shares_again_after() {
    let Some(mut redis) = RedisServer::private_for_test(
        "while_redis_is_down_each_gateway_counts_its_own_requests_and_shares_again_after",
        &[],
    ) else {
        return;
    };
    let upstream = MockServer::start().await;
    for route in ["/limited/x", "/probe/x"] {
        Mock::given(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&upstream)
            .await;
    }
    let gw = limited_pair(&redis, &upstream).await;
    let client = reqwest::Client::new();
    let target = format!("{}/limited/x", upstream.uri());
    let get = |base: &String| client.get(format!("{base}/proxy?{target}")).send();
    // Shared: the second gateway sees the first one's two requests.
    assert_eq!(get(&gw[0]).await.expect("answer").status(), 200);
    assert_eq!(get(&gw[0]).await.expect("answer").status(), 200);
    assert_eq!(get(&gw[1]).await.expect("answer").status(), 429);

    // Redis is gone: the gateways fail open to their own counts, never 5xx.
    redis.kill();
    assert_eq!(get(&gw[1]).await.expect("answer").status(), 200);
    assert_eq!(get(&gw[1]).await.expect("answer").status(), 200);
    assert_eq!(
        get(&gw[1]).await.expect("answer").status(),
        429,
        "each process still enforces the limit on its own"
    );
    assert_eq!(fallbacks(&client, &gw[1]).await, 3);

    // Redis is back (empty: it keeps nothing): once each gateway has
    // reconnected, the limit is shared by both again.
    redis.restart().expect("redis restarts on its port");
    let probe = format!("{}/probe/x", upstream.uri());
    for base in &gw {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let before = fallbacks(&client, base).await;
            let answer = client
                .get(format!("{base}/proxy?{probe}"))
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), 200);
            if fallbacks(&client, base).await == before {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{base} still counts on its own 10 s after Redis came back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    // The second gateway's own count is spent (it would refuse), the first
    // one's is untouched (it would admit): shared counting says the opposite.
    assert_eq!(get(&gw[1]).await.expect("answer").status(), 200);
    assert_eq!(get(&gw[1]).await.expect("answer").status(), 200);
    assert_eq!(
        get(&gw[0]).await.expect("answer").status(),
        429,
        "shared again: the other gateway's two requests count"
    );
}

/// `arcgis_gateway_rate_limit_fallbacks_total` of the gateway at `base`.
async fn fallbacks(client: &reqwest::Client, base: &str) -> u64 {
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("arcgis_gateway_rate_limit_fallbacks_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fallback counter in {metrics}"))
}
