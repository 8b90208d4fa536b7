//! `arcgis-auth-gateway` processes on one Redis sign users in as one: a
//! sign-in started at one completes at the other's callback, the session
//! serves at all of them, each expiry is renewed once for the fleet (while
//! the portal ends tokens every few hundred milliseconds, with no failed or
//! crossed answer), a process killed in the middle of a refresh loses no
//! session, and a sign-out at one ends it at all.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arcgis_auth_storage::test_util::RedisServer;
use arcgis_auth_testkit::{App, Endpoint, Failure, FakePortal, Grant, TokenKind};
use common::bff::Browser;
use common::binary::start_binary;

/// The origin of the load balancer in front of the fleet (never contacted:
/// the test's browser goes to each process itself).
const PUBLIC: &str = "http://127.0.0.1:9";

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
    let (one, _p1) = start_binary(&config, &[]).await;
    let (two, _p2) = start_binary(&config, &[]).await;

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

/// A portal with two users and a fleet's configuration file for it.
struct Fleet {
    portal: Arc<FakePortal>,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

const USERS: [(&str, &str); 2] = [("alice", "alice-password-1"), ("bob", "bob-password-2")];

async fn fleet(redis: &RedisServer) -> Fleet {
    let portal = FakePortal::builder()
        .app(App::public("web").redirect_uri(format!("{PUBLIC}/auth/callback")))
        .user(USERS[0].0, USERS[0].1)
        .user(USERS[1].0, USERS[1].1)
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
    Fleet {
        portal: Arc::new(portal),
        _dir: dir,
        config,
    }
}

/// Signs `user` in at `gateway` (the portal's redirect to the public URL
/// taken to that same process).
async fn signed_in(gateway: &str, user: &str, password: &str) -> Browser {
    let mut browser = Browser::new(gateway);
    let callback = browser
        .sign_in_until_callback(user, password, "/")
        .await
        .replacen(PUBLIC, gateway, 1);
    let r = browser.get(&callback).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
    browser
}

/// What a run of requests saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    crossed: AtomicUsize,
}

/// One user's requests, each to the next process in turn, until `stop`.
async fn round_robin(
    mut browsers: Vec<Browser>,
    user: &'static str,
    item: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    first: usize,
) {
    let mut i = first;
    while !stop.load(Ordering::Relaxed) {
        let n = browsers.len();
        let r = browsers[i % n].proxy(&item).await;
        i += 1;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        if status != 200 || body.get("error").is_some() {
            eprintln!("{user}: {status} {body}");
            tally.failed.fetch_add(1, Ordering::Relaxed);
        } else if body["accessedBy"] != user {
            eprintln!("{user} was answered for {}", body["accessedBy"]);
            tally.crossed.fetch_add(1, Ordering::Relaxed);
        } else {
            tally.ok.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_serve_two_users_while_the_portal_expires_tokens() {
    let Some(redis) = RedisServer::private_for_test(
        "three_processes_serve_two_users_while_the_portal_expires_tokens",
        &[],
    ) else {
        return;
    };
    let fleet = fleet(&redis).await;
    let mut gateways = Vec::new();
    let mut children = Vec::new();
    for _ in 0..3 {
        let (base, child) = start_binary(&fleet.config, &[]).await;
        gateways.push(base);
        children.push(child);
    }
    let item = format!("{}?f=json", fleet.portal.secured_item_url("abc"));

    // Each user signs in at a process of their own, then sends requests to
    // the three in turn, two at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut load = Vec::new();
    for (n, (user, password)) in USERS.into_iter().enumerate() {
        let browser = signed_in(&gateways[n], user, password).await;
        for lane in 0..2 {
            let browsers = gateways.iter().map(|g| browser.at(g)).collect();
            load.push(tokio::spawn(round_robin(
                browsers,
                user,
                item.clone(),
                Arc::clone(&stop),
                Arc::clone(&tally),
                lane,
            )));
        }
    }
    let refreshes_before = fleet.portal.calls().token(Grant::RefreshToken);
    assert_eq!(refreshes_before, 0);

    // The portal ends every access token every 400 ms for 5 s.
    const EVERY: Duration = Duration::from_millis(400);
    const FOR: Duration = Duration::from_secs(5);
    let started = Instant::now();
    let mut expiries = 0;
    while started.elapsed() < FOR {
        tokio::time::sleep(EVERY).await;
        fleet.portal.expire_access_tokens();
        expiries += 1;
    }
    // The load outlives the last expiry, so every expiry is met.
    tokio::time::sleep(EVERY / 2).await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }

    let ok = tally.ok.load(Ordering::Relaxed);
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "failed requests");
    assert_eq!(
        tally.crossed.load(Ordering::Relaxed),
        0,
        "answers for the other user"
    );
    assert!(ok > 100, "only {ok} requests were answered");

    // One renewal per expiry and user for the whole fleet (10% either way),
    // not one per process.
    let expected = (expiries * USERS.len()) as u64;
    let refreshes = fleet.portal.calls().token(Grant::RefreshToken);
    let margin = expected.div_ceil(10);
    assert!(
        (expected - margin..=expected + margin).contains(&refreshes),
        "{refreshes} refreshes for {expiries} expiries of {} users ({ok} requests)",
        USERS.len()
    );
    for (user, _) in USERS {
        let theirs = fleet
            .portal
            .issued_tokens()
            .into_iter()
            .filter(|t| {
                t.kind
                    == TokenKind::UserAccess {
                        grant: Grant::RefreshToken,
                    }
                    && t.username.as_deref() == Some(user)
            })
            .count();
        assert!(
            (expiries - expiries.div_ceil(10)..=expiries + expiries.div_ceil(10)).contains(&theirs),
            "{user}: {theirs} refreshes for {expiries} expiries"
        );
    }
    eprintln!("{ok} requests, {expiries} expiries, {refreshes} refreshes");
    for mut child in children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_during_a_refresh_loses_no_session() {
    let Some(redis) =
        RedisServer::private_for_test("a_process_killed_during_a_refresh_loses_no_session", &[])
    else {
        return;
    };
    let fleet = fleet(&redis).await;
    let portal = &fleet.portal;
    let mut gateways = Vec::new();
    let mut children = Vec::new();
    for _ in 0..3 {
        let (base, child) = start_binary(&fleet.config, &[]).await;
        gateways.push(base);
        children.push(child);
    }
    let item = format!("{}?f=json", portal.secured_item_url("abc"));
    let (user, password) = USERS[0];
    let browser = signed_in(&gateways[0], user, password).await;
    let mut at: Vec<Browser> = gateways.iter().map(|g| browser.at(g)).collect();
    for b in &mut at {
        assert_eq!(username(b.proxy(&item).await).await, user);
    }

    // The token ends; the first process starts the refresh, which the
    // portal answers slowly, and is killed (SIGKILL) while it waits.
    portal.fail_next_token_calls(1, Failure::Slow(Duration::from_secs(5)));
    portal.expire_access_tokens();
    let first = at.remove(0);
    // (Its answer never comes: the process dies.)
    let in_flight = first
        .request(
            reqwest::Method::GET,
            &format!("{}/proxy?{item}", gateways[0]),
        )
        .send();
    let in_flight = tokio::spawn(in_flight);
    let deadline = Instant::now() + Duration::from_secs(10);
    while portal.calls().token(Grant::RefreshToken) == 0 {
        assert!(
            Instant::now() < deadline,
            "the refresh never reached the portal"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut killed = children.remove(0);
    killed.start_kill().expect("SIGKILL");
    killed.wait().await.expect("reaped");
    let _ = in_flight.await;

    // The other two still serve the session: one of them takes the refresh
    // over once the dead process's lock lease (6 s) runs out.
    let started = Instant::now();
    let [second, third] = &mut at[..] else {
        unreachable!("two processes are left")
    };
    let (a, b) = tokio::join!(second.proxy(&item), third.proxy(&item));
    let took = started.elapsed();
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 200);
    assert_eq!(username(a).await, user);
    assert_eq!(username(b).await, user);
    assert!(took < Duration::from_secs(12), "taken over in {took:?}");
    assert_eq!(
        portal.calls().token(Grant::RefreshToken),
        2,
        "the dead process's refresh, then one by the survivors"
    );
    for b in &mut at {
        assert_eq!(b.get_path("/auth/me").await.status(), 200);
        assert_eq!(username(b.proxy(&item).await).await, user);
    }
    for mut child in children {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}
