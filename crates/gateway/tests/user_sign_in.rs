//! The gateway signs users in (`[user_sign_in]`): real sign-ins through the
//! fake portal's sign-in form, each "browser" a cookie jar of its own.

mod common;

use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, ManualClock, Timestamp};
use arcgis_auth_testkit::{Endpoint, Grant, TokenKind};
use common::arcgis_error;
use common::bff::*;

#[tokio::test]
async fn a_user_signs_in_and_only_the_gateway_holds_the_tokens() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    let back = alice
        .sign_in("alice", "alice-password-1", "/map?layer=1")
        .await;
    assert_eq!(back, "/map?layer=1");

    // The cookies, exactly as promised: the session id alone, host-only,
    // Secure (even on loopback http), HttpOnly, SameSite=Lax, Path=/.
    let session = alice.cookie(COOKIE).expect("session cookie").to_owned();
    assert_eq!(session.len(), 32);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    let set = alice
        .set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{COOKIE}={session}")))
        .expect("Set-Cookie");
    assert_eq!(
        set,
        &format!("{COOKIE}={session}; Path=/; Max-Age=1209600; Secure; HttpOnly; SameSite=Lax")
    );
    let pending = alice
        .set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("{PENDING_COOKIE}=")) && !c.contains("Max-Age=0"))
        .expect("pending cookie");
    assert!(
        pending.ends_with("; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax"),
        "{pending}"
    );
    assert!(
        alice.cookie(PENDING_COOKIE).is_none(),
        "cleared at the callback"
    );
    assert!(
        !alice.set_cookies.iter().any(|c| c.contains("Domain")),
        "no Domain"
    );

    // Who is signed in, never a token.
    let me = alice.get_path("/auth/me").await;
    assert_eq!(me.status(), 200);
    assert_eq!(
        me.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let me_text = me.text().await.expect("body");
    let me: serde_json::Value = serde_json::from_str(&me_text).expect("JSON");
    assert_eq!(me["username"], "alice");
    assert_eq!(me["portal"], bff.portal.portal_url());
    let ends = me["expires_at"].as_i64().expect("expires_at");
    let now = bff.portal.now().as_unix_millis();
    assert!(
        (ends - now - 1_209_600_000).abs() < 60_000,
        "two weeks from now"
    );

    // A user route: alice's own token, in X-Esri-Authorization only.
    let item = alice.proxy(&bff.item()).await;
    assert_eq!(item.status(), 200);
    let item_text = item.text().await.expect("body");
    let item: serde_json::Value = serde_json::from_str(&item_text).expect("JSON");
    assert_eq!(item["accessedBy"], "alice");
    let presented = bff.presented().await;
    assert_eq!(presented.len(), 1);
    assert!(bff.tokens_of("alice").contains(&presented[0]));
    let requests = bff.portal.received_requests().await;
    let to_item = requests
        .iter()
        .find(|r| r.url.path().contains("content/items"))
        .expect("item request");
    assert!(!to_item.url.as_str().contains("token"), "{}", to_item.url);
    assert!(
        to_item.headers.get("cookie").is_none(),
        "no cookie upstream"
    );

    // Nothing the browser saw holds a token; the store holds no session id.
    for token in bff.every_token() {
        assert!(!me_text.contains(&token) && !item_text.contains(&token));
        assert!(!alice.set_cookies.iter().any(|c| c.contains(&token)));
    }
    let keys = bff.keys(USER_PREFIX).await;
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(&session), "the key is the id's digest");
    assert!(
        bff.keys(PENDING_PREFIX).await.is_empty(),
        "pending sign-in used up"
    );
    let stored = bff
        .store
        .load(&keys[0])
        .await
        .expect("load")
        .expect("session");
    assert_eq!(stored.record.username.as_deref(), Some("alice"));
    assert!(stored.record.refresh_token.is_some());
}

#[tokio::test]
async fn federated_servers_get_the_users_server_token() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let r = alice.proxy(&bff.fed_service()).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let server_tokens: Vec<String> = bff
        .portal
        .issued_tokens()
        .into_iter()
        .filter(|t| matches!(&t.kind, TokenKind::Server { server } if server == FED))
        .filter(|t| t.username.as_deref() == Some("alice"))
        .map(|t| t.token.expose_secret().to_owned())
        .collect();
    assert_eq!(server_tokens.len(), 1, "one server token, made for alice");
    let presented = bff.presented().await;
    assert_eq!(presented.last(), server_tokens.first());
}

#[tokio::test]
async fn two_browsers_never_cross() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    let mut bob = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    bob.sign_in("bob", "bob-password-2", "/").await;
    assert_ne!(alice.cookie(COOKIE), bob.cookie(COOKIE));

    let item = bff.item();
    for _ in 0..5 {
        let (a, b) = tokio::join!(alice.proxy(&item), bob.proxy(&item));
        assert_eq!(json(a).await["accessedBy"], "alice");
        assert_eq!(json(b).await["accessedBy"], "bob");
    }
    let alices = bff.tokens_of("alice");
    let bobs = bff.tokens_of("bob");
    let presented = bff.presented().await;
    assert_eq!(presented.len(), 10);
    assert_eq!(presented.iter().filter(|t| alices.contains(t)).count(), 5);
    assert_eq!(presented.iter().filter(|t| bobs.contains(t)).count(), 5);

    let me_a = json(alice.get_path("/auth/me").await).await;
    let me_b = json(bob.get_path("/auth/me").await).await;
    assert_eq!(
        (me_a["username"].as_str(), me_b["username"].as_str()),
        (Some("alice"), Some("bob"))
    );
}

#[tokio::test]
async fn without_a_valid_session_a_user_route_answers_401_and_sends_nothing() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let before = bff.portal.calls().endpoint(Endpoint::ContentItem);

    let mut nobody = bff.browser();
    let forged = "0123456789abcdef0123456789abcdef";
    let mut forger = bff.browser();
    forger.jar.insert(COOKIE.into(), forged.into());
    let mut garbage = bff.browser();
    garbage
        .jar
        .insert(COOKIE.into(), "../../gateway/app/x".into());
    // Alice's session's store key (the digest) as a cookie is no session either.
    let mut digest = bff.browser();
    let key = bff.keys(USER_PREFIX).await.remove(0);
    digest
        .jar
        .insert(COOKIE.into(), key.trim_start_matches(USER_PREFIX).into());
    for b in [&mut nobody, &mut forger, &mut garbage, &mut digest] {
        let r = b.proxy(&bff.item()).await;
        assert_eq!(r.status(), 401);
        let body = arcgis_error(r).await;
        assert_eq!(body["error"]["code"], 401);
        let me = b.get_path("/auth/me").await;
        assert_eq!(me.status(), 401);
        arcgis_error(me).await;
    }
    assert_eq!(bff.portal.calls().endpoint(Endpoint::ContentItem), before);
    assert!(bff.presented().await.is_empty());
}

#[tokio::test]
async fn open_redirects_are_refused_in_every_form() {
    let bff = Bff::start().await;
    let mut b = bff.browser();
    for bad in [
        "//evil.example/x",
        "/\\evil.example",
        "https://evil.example/",
        "https:evil.example",
        "evil.example",
        "/%2F%2Fevil.example",
        "/%2fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%252F%252Fevil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
    ] {
        let query = percent_encoding::utf8_percent_encode(bad, percent_encoding::NON_ALPHANUMERIC);
        let r = b
            .get_path(&format!("/auth/sign-in?return_to={query}"))
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.headers().get("location").is_none(), "{bad}");
        let page = r.text().await.expect("page");
        assert!(!page.contains("evil"), "{bad} echoed: {page}");
    }
    // Two return_to: refused too.
    let r = b
        .get_path("/auth/sign-in?return_to=/a&return_to=//evil.example")
        .await;
    assert_eq!(r.status(), 400);
    assert!(bff.keys(PENDING_PREFIX).await.is_empty());
    assert!(b.cookie(PENDING_COOKIE).is_none());
    assert_eq!(bff.portal.calls().endpoint(Endpoint::Authorize), 0);
}

#[tokio::test]
async fn a_callback_with_another_state_never_reaches_the_token_endpoint() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    let callback = alice
        .sign_in_until_callback("alice", "alice-password-1", "/")
        .await;
    let mut url = url::Url::parse(&callback).expect("callback URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "<script>alert(1)</script>".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(&pairs);
    let r = alice.get(url.as_str()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/html; charset=utf-8")
    );
    let page = r.text().await.expect("page");
    assert!(page.contains("does not belong to the sign-in"), "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(alice.cookie(COOKIE).is_none());
    assert!(alice.cookie(PENDING_COOKIE).is_none());
    assert_eq!(bff.portal.calls().token(Grant::AuthorizationCode), 0);
    assert!(bff.keys(USER_PREFIX).await.is_empty());
    // The pending sign-in was used up: the genuine callback now finds none.
    let r = alice.get(&callback).await;
    assert_eq!(r.status(), 400);
    assert_eq!(bff.portal.calls().endpoint(Endpoint::Token), 0);
}

#[tokio::test]
async fn a_sign_in_completes_only_in_the_browser_that_started_it() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    let callback = alice
        .sign_in_until_callback("alice", "alice-password-1", "/map")
        .await;
    // The attacker's browser (no pending cookie) replays alice's callback.
    let mut attacker = bff.browser();
    let r = attacker.get(&callback).await;
    assert_eq!(r.status(), 400);
    let page = r.text().await.expect("page");
    assert!(
        page.contains("No sign-in was started in this browser"),
        "{page}"
    );
    assert!(attacker.cookie(COOKIE).is_none());
    assert_eq!(bff.portal.calls().endpoint(Endpoint::Token), 0);
    // Alice's own browser still completes.
    let r = alice.get(&callback).await;
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), "/map");
    assert!(alice.cookie(COOKIE).is_some());
}

#[tokio::test]
async fn a_declined_sign_in_shows_a_page_and_echoes_nothing() {
    let bff = Bff::start().await;
    bff.portal.deny_next_authorization();
    let mut alice = bff.browser();
    let callback = alice
        .sign_in_until_callback("alice", "alice-password-1", "/")
        .await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    // The description could hold markup: it is not shown.
    let callback = format!("{callback}&error_description=%3Cb%3Eowned%3C%2Fb%3E");
    let r = alice.get(&callback).await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.expect("page");
    assert!(page.contains("declined"), "{page}");
    assert!(!page.contains("owned") && !page.contains("<b>"), "{page}");
    assert!(alice.cookie(COOKIE).is_none());
    assert_eq!(bff.portal.calls().endpoint(Endpoint::Token), 0);
    assert!(bff.keys(USER_PREFIX).await.is_empty());
    let me = alice.get_path("/auth/me").await;
    assert_eq!(me.status(), 401);
}

#[tokio::test]
async fn sign_out_takes_a_same_origin_post_and_revokes_at_the_portal() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;

    // GET is refused; POST without Origin, or from another origin, too.
    let r = alice.get_path("/auth/sign-out").await;
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    for origin in [None, Some("https://evil.example"), Some("null")] {
        let r = alice.post_sign_out(origin).await;
        assert_eq!(r.status(), 403, "{origin:?}");
        arcgis_error(r).await;
    }
    assert_eq!(alice.get_path("/auth/me").await.status(), 200);
    assert_eq!(bff.portal.calls().endpoint(Endpoint::RevokeToken), 0);

    let origin = bff.base.clone();
    let r = alice.post_sign_out(Some(&origin)).await;
    assert_eq!(r.status(), 204);
    assert!(
        alice
            .set_cookies
            .iter()
            .any(|c| c == &format!("{COOKIE}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")),
        "{:?}",
        alice.set_cookies
    );
    assert_eq!(bff.portal.calls().endpoint(Endpoint::RevokeToken), 1);
    let refresh: Vec<_> = bff
        .portal
        .issued_tokens()
        .into_iter()
        .filter(|t| t.kind == TokenKind::Refresh && t.username.as_deref() == Some("alice"))
        .collect();
    assert_eq!(refresh.len(), 1);
    assert!(refresh[0].revoked, "the refresh token was revoked");
    assert!(bff.keys(USER_PREFIX).await.is_empty());
}

#[tokio::test]
async fn a_stolen_cookie_stops_working_after_sign_out() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let mut copy = bff.browser();
    copy.jar = alice.jar.clone();
    assert_eq!(copy.proxy(&bff.item()).await.status(), 200);
    let origin = bff.base.clone();
    assert_eq!(alice.post_sign_out(Some(&origin)).await.status(), 204);
    assert_eq!(copy.proxy(&bff.item()).await.status(), 401);
    assert_eq!(copy.get_path("/auth/me").await.status(), 401);
}

#[tokio::test]
async fn a_sign_out_elsewhere_takes_effect_on_the_next_request() {
    let bff = Bff::start().await;
    let other = bff.another_gateway().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    // Signed in at one gateway: signed in at every gateway on the store.
    let mut alice_there = alice.at(&other);
    assert_eq!(
        json(alice_there.get_path("/auth/me").await).await["username"],
        "alice"
    );
    assert_eq!(alice.proxy(&bff.item()).await.status(), 200);
    assert_eq!(alice_there.proxy(&bff.item()).await.status(), 200);
    // Signed out at the other gateway (the fleet has one public_url): the
    // next request here is refused.
    let origin = bff.base.clone();
    assert_eq!(alice_there.post_sign_out(Some(&origin)).await.status(), 204);
    assert_eq!(alice.proxy(&bff.item()).await.status(), 401);
    assert_eq!(alice.get_path("/auth/me").await.status(), 401);

    // Bob's session deleted straight from the store (as a command line on
    // the same store would): gone on the next request, although his token
    // manager holds a valid token in memory.
    let mut bob = bff.browser();
    bob.sign_in("bob", "bob-password-2", "/").await;
    assert_eq!(bob.proxy(&bff.item()).await.status(), 200);
    for key in bff.keys(USER_PREFIX).await {
        assert!(bff.store.delete(&key, None).await.expect("delete"));
    }
    assert_eq!(bob.proxy(&bff.item()).await.status(), 401);
    assert_eq!(bob.get_path("/auth/me").await.status(), 401);
}

#[tokio::test]
async fn every_sign_in_starts_a_new_session() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let first = alice.cookie(COOKIE).expect("cookie").to_owned();
    let mut old = bff.browser();
    old.jar = alice.jar.clone();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let second = alice.cookie(COOKIE).expect("cookie").to_owned();
    assert_ne!(first, second, "a new id at every sign-in");
    // The session of the first id is gone (signed out: no fixation).
    assert_eq!(old.get_path("/auth/me").await.status(), 401);
    assert_eq!(bff.keys(USER_PREFIX).await.len(), 1);
    assert_eq!(
        json(alice.get_path("/auth/me").await).await["username"],
        "alice"
    );

    // An id planted before the sign-in is never the one after it.
    let mut planted = bff.browser();
    planted
        .jar
        .insert(COOKIE.into(), "00000000000000000000000000000000".into());
    planted.sign_in("bob", "bob-password-2", "/").await;
    let after = planted.cookie(COOKIE).expect("cookie");
    assert_ne!(after, "00000000000000000000000000000000");
}

#[tokio::test]
async fn a_refused_token_is_renewed_with_the_refresh_token_and_retried() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    assert_eq!(alice.proxy(&bff.item()).await.status(), 200);
    bff.portal.expire_access_tokens();
    let r = alice.proxy(&bff.item()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["accessedBy"], "alice");
    assert_eq!(bff.portal.calls().token(Grant::RefreshToken), 1);
    // Revoked at the portal (an administrator's doing): the session ends.
    bff.portal.revoke_all_tokens();
    let r = alice.proxy(&bff.item()).await;
    assert_eq!(r.status(), 401, "{}", r.text().await.unwrap_or_default());
    assert_eq!(alice.get_path("/auth/me").await.status(), 401);
    assert!(bff.keys(USER_PREFIX).await.is_empty());
}

#[tokio::test]
async fn the_gateways_cookies_never_reach_an_upstream() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    alice.jar.insert("theme".into(), "dark".into());
    let target = format!("{}?f=json", bff.portal.url("info"));
    let r = alice.proxy(&target).await;
    assert_eq!(r.status(), 200);
    let requests = bff.portal.received_requests().await;
    let info = requests
        .iter()
        .rev()
        .find(|r| r.url.path().ends_with("/info"))
        .expect("info request");
    let cookies: Vec<_> = info.headers.get_all("cookie").iter().collect();
    assert_eq!(cookies, vec!["theme=dark"]);
}

#[tokio::test]
async fn navigations_from_other_sites_cannot_act_as_the_user() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let url = format!("{}/proxy?{}", bff.base, bff.item());
    for (site, status) in [
        ("cross-site", 403),
        ("same-site", 403),
        ("same-origin", 200),
        ("none", 200),
    ] {
        let request = alice
            .request(reqwest::Method::GET, &url)
            .header("sec-fetch-site", site);
        let r = alice.send(request).await;
        assert_eq!(r.status(), status, "{site}");
    }
    assert_eq!(bff.presented().await.len(), 2);
}

#[tokio::test]
async fn stale_sign_ins_and_ended_sessions_are_cleaned_out_of_the_store() {
    let clock = ManualClock::new(Timestamp::now());
    let bff = Bff::start_with_clock(Some(clock.clone())).await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let mut slow = bff.browser();
    let callback = slow
        .sign_in_until_callback("bob", "bob-password-2", "/")
        .await;
    assert_eq!(bff.keys(PENDING_PREFIX).await.len(), 1);

    // Eleven minutes later the pending sign-in is stale: its callback is
    // refused without a call to the token endpoint, and a sweep deletes the rest.
    clock.advance(Duration::from_secs(11 * 60));
    let r = slow.get(&callback).await;
    assert_eq!(r.status(), 400);
    assert_eq!(bff.portal.calls().token(Grant::AuthorizationCode), 1);
    let mut late = bff.browser();
    let mut other = bff.browser();
    other
        .sign_in_until_callback("bob", "bob-password-2", "/")
        .await;
    clock.advance(Duration::from_secs(11 * 60));
    late.get_path("/auth/sign-in").await;
    assert_eq!(bff.keys(PENDING_PREFIX).await.len(), 1, "only the newest");
    assert_eq!(bff.keys(USER_PREFIX).await.len(), 1);

    // Two weeks on, alice's session has ended: swept without her visiting.
    clock.advance(Duration::from_secs(336 * 3600));
    late.get_path("/auth/sign-in").await;
    assert!(bff.keys(USER_PREFIX).await.is_empty());
    assert_eq!(alice.get_path("/auth/me").await.status(), 401);
}

#[tokio::test]
async fn a_confidential_app_signs_users_in_with_its_secret() {
    let bff = Bff::start_with(Options {
        confidential: true,
        ..Options::default()
    })
    .await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    assert_eq!(
        json(alice.proxy(&bff.item()).await).await["accessedBy"],
        "alice"
    );
    bff.portal.expire_access_tokens();
    assert_eq!(
        json(alice.proxy(&bff.item()).await).await["accessedBy"],
        "alice"
    );
    assert_eq!(bff.portal.calls().token(Grant::RefreshToken), 1);
    let requests = bff.portal.received_requests().await;
    let token_bodies: Vec<String> = requests
        .iter()
        .filter(|r| r.url.path().ends_with("oauth2/token"))
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(token_bodies.len(), 2);
    for body in &token_bodies {
        assert!(body.contains("client_secret="), "{body}");
    }
    let origin = bff.base.clone();
    assert_eq!(alice.post_sign_out(Some(&origin)).await.status(), 204);
    assert!(
        bff.portal
            .issued_tokens()
            .iter()
            .filter(|t| t.kind == TokenKind::Refresh)
            .all(|t| t.revoked)
    );
}

#[tokio::test]
async fn a_users_token_goes_only_to_the_portal_and_its_federated_servers() {
    let bff = Bff::start().await;
    let mut alice = bff.browser();
    alice.sign_in("alice", "alice-password-1", "/").await;
    let r = alice.proxy("http://127.0.0.1:1/elsewhere/x").await;
    assert_eq!(r.status(), 403);
    arcgis_error(r).await;
}

#[tokio::test]
async fn sign_ins_are_rate_limited_per_client() {
    let bff = Bff::start_with(Options {
        top: "token_rate_limit = { requests = 2, per_seconds = 3600 }".into(),
        ..Options::default()
    })
    .await;
    let mut b = bff.browser();
    for _ in 0..2 {
        assert_eq!(b.get_path("/auth/sign-in").await.status(), 302);
    }
    let r = b.get_path("/auth/sign-in").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(bff.keys(PENDING_PREFIX).await.len(), 2);
}

#[tokio::test]
async fn without_user_sign_in_there_are_no_auth_endpoints() {
    let b = common::Bench::start().await;
    for path in ["/auth/sign-in", "/auth/callback", "/auth/me"] {
        let r = b
            .client
            .get(format!("{}{path}", b.base))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = b
        .client
        .post(format!("{}/auth/sign-out", b.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 404);
}

#[test]
fn check_refuses_plain_http_public_urls_but_for_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |public_url: &str| {
        let path = dir.path().join("gateway.toml");
        std::fs::write(
            &path,
            format!(
                "[user_sign_in]\nclient_id = \"web\"\npublic_url = \"{public_url}\"\n\
                 [[routes]]\nurl = \"https://services.arcgis.com/ORG/arcgis/rest/services\"\n\
                 match_all = true\nauth = \"user\"\n"
            ),
        )
        .expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_arcgis-auth-gateway"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .expect("run check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run("http://app.example.com");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("user_sign_in.public_url"), "{stderr}");
    assert_eq!(run("http://127.0.0.1:8080").0, Some(0));
    assert_eq!(run("https://app.example.com").0, Some(0));
    let (code, stderr) = run("https://app.example.com/app");
    assert_eq!(code, Some(2), "{stderr}");
}

/// What a browser sends with a same-origin `fetch` from a page at `page`.
async fn fetch_from(
    browser: &mut Browser,
    url: &str,
    page: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut r = browser
        .request(reqwest::Method::GET, url)
        .header("referer", page)
        .header("sec-fetch-site", "same-origin");
    if let Some(o) = origin {
        r = r.header("origin", o);
    }
    browser.send(r).await
}

#[tokio::test]
async fn the_gateways_own_pages_may_use_the_proxy_whatever_allowed_origins_says() {
    // Browsers send a Referer (and on some requests an Origin) with every
    // fetch: the public_url's own pages must pass with no allowed_origins,
    // and with a list that does not name the gateway.
    for top in ["", r#"allowed_origins = ["https://maps.example.com"]"#] {
        let bff = Bff::start_with(Options {
            top: top.to_owned(),
            ..Options::default()
        })
        .await;
        let mut alice = bff.browser();
        alice.sign_in("alice", "alice-password-1", "/").await;
        let url = format!("{}/proxy?{}", bff.base, bff.item());
        let page = format!("{}/app", bff.base);
        let r = fetch_from(&mut alice, &url, &page, None).await;
        assert_eq!(r.status(), 200, "{top}: Referer of the gateway's page");
        let r = fetch_from(&mut alice, &url, &page, Some(&bff.base)).await;
        assert_eq!(r.status(), 200, "{top}: Origin of the gateway");
        assert_eq!(json(r).await["accessedBy"], "alice");

        // Another site's page: refused when a list is configured, let
        // through without one (the route still needs the user's session).
        let other = "https://other.example.net";
        let r = fetch_from(&mut alice, &url, &format!("{other}/x"), Some(other)).await;
        if top.is_empty() {
            assert_eq!(r.status(), 200, "no allowed_origins: any caller");
        } else {
            assert_eq!(arcgis_error(r).await["error"]["code"], 403);
        }
    }
}
