//! A fleet: three `arcgis-auth-gateway` processes on one Redis share their tokens and rate limits.

use std::process::Stdio;

use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_testkit::{
    App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, FakePortal, Grant, PASSWORD,
    Server, USERNAME,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const BIN: &str = env!("CARGO_BIN_EXE_arcgis-auth-gateway");
const ORIGIN: &str = "https://app.example.com";
const LIMIT: usize = 60;

/// Starts one gateway on `config`; its base URL and the process.
async fn start(config: &std::path::Path) -> (String, Child) {
    let mut child = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .env("GEO_SECRET", CONFIDENTIAL_CLIENT_SECRET)
        .env("GIS_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the gateway");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("read")
        .expect("the listening line");
    let base = line
        .strip_prefix("listening on ")
        .expect("listening on http://ADDR:PORT")
        .to_owned();
    (base, child)
}

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
        let (base, child) = start(&config).await;
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
