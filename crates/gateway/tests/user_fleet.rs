//! Two `arcgis-auth-gateway` processes on one Redis sign users in as one:
//! a sign-in started at one completes at the other's callback, the session
//! serves at both, a refresh happens once, and a sign-out at one ends it at both.

mod common;

use std::process::Stdio;

use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_testkit::{App, Endpoint, FakePortal, Grant};
use common::bff::Browser;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

const BIN: &str = env!("CARGO_BIN_EXE_arcgis-auth-gateway");
/// The origin of the load balancer in front of the fleet (never contacted:
/// the test's browser goes to each process itself).
const PUBLIC: &str = "http://127.0.0.1:9";

/// Starts one gateway on `config`; its base URL and the process.
async fn start(config: &std::path::Path) -> (String, Child) {
    let mut child = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
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

async fn username(r: reqwest::Response) -> serde_json::Value {
    let body: serde_json::Value = r.json().await.expect("JSON");
    body["accessedBy"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_started_at_one_process_completes_at_another() {
    let Some(redis) =
        RedisServer::private_for_test("a_sign_in_started_at_one_process_completes_at_another", &[])
    else {
        return;
    };
    let portal = FakePortal::builder()
        .app(App::public("web").redirect_uri(format!("{PUBLIC}/auth/callback")))
        .user("alice", "alice-password-1")
        .nobody_signed_in()
        .start()
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

[user_sign_in]
client_id = "web"
public_url = "{PUBLIC}"

[[routes]]
url = "{root}/sharing/rest/content/items"
match_all = true
auth = "user"
"#,
            portal = portal.portal_url(),
            redis = redis.url(),
            root = portal.url_root(),
        ),
    )
    .expect("write config");
    let (one, _p1) = start(&config).await;
    let (two, _p2) = start(&config).await;

    // Started at the first process; the portal sends the browser back to the
    // public URL, which the load balancer hands to the second.
    let mut at_one = Browser::new(&one);
    let callback = at_one
        .sign_in_until_callback("alice", "alice-password-1", "/map")
        .await;
    let callback = callback.replacen(PUBLIC, &two, 1);
    let mut at_two = at_one.at(&two);
    let r = at_two.get(&callback).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/map")
    );
    assert!(at_two.cookie("__Host-arcgis").is_some());

    // Signed in at both.
    let item = format!("{}?f=json", portal.secured_item_url("abc"));
    let mut back_at_one = at_two.at(&one);
    assert_eq!(username(at_two.proxy(&item).await).await, "alice");
    assert_eq!(username(back_at_one.proxy(&item).await).await, "alice");
    let me = back_at_one.get_path("/auth/me").await;
    assert_eq!(me.status(), 200);

    // The token is refused at the portal: both processes renew it, once.
    portal.expire_access_tokens();
    let (a, b) = tokio::join!(at_two.proxy(&item), back_at_one.proxy(&item));
    assert_eq!(username(a).await, "alice");
    assert_eq!(username(b).await, "alice");
    assert_eq!(portal.calls().token(Grant::RefreshToken), 1);

    // Signed out at the second process: the first refuses the next request.
    let r = at_two.post_sign_out(Some(PUBLIC)).await;
    assert_eq!(r.status(), 204);
    assert_eq!(portal.calls().endpoint(Endpoint::RevokeToken), 1);
    assert_eq!(back_at_one.proxy(&item).await.status(), 401);
    assert_eq!(back_at_one.get_path("/auth/me").await.status(), 401);
}
