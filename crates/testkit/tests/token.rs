//! `oauth2/token`: the four grants, verified for real, with plain reqwest.

mod common;

use std::time::Duration;

use arcgis_auth_core::oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use arcgis_auth_core::{ManualClock, Timestamp};
use arcgis_auth_testkit::{
    App, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, Grant, PUBLIC_CLIENT_ID,
};
use common::*;
use serde_json::json;

const REDIRECT: &str = "http://127.0.0.1:8765/callback";

async fn code_for(portal: &FakePortal, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
    ];
    params.extend_from_slice(extra);
    let location = authorize_location(portal, &params).await;
    query(&location, "code").expect("code")
}

async fn exchange(portal: &FakePortal, code: &str, extra: &[(&str, &str)]) -> serde_json::Value {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", PUBLIC_CLIENT_ID),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    form.extend_from_slice(extra);
    token(portal, &form).await
}

#[tokio::test]
async fn authorization_code_answer_is_arcgis_shaped() {
    let portal = FakePortal::start().await;
    let answer = sign_in(&portal).await;
    let obj = answer.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "refresh_token_expires_in",
            "ssl",
            "username"
        ]
    );
    assert_eq!(answer["expires_in"], 1800);
    assert_eq!(answer["refresh_token_expires_in"], 20160 * 60);
    assert_eq!(answer["username"], "jdoe");
    assert_eq!(answer["ssl"], false);
    assert_eq!(portal.calls().token(Grant::AuthorizationCode), 1);

    // The access token opens the portal.
    let me = get_with_token(
        &portal.url("community/self"),
        answer["access_token"].as_str(),
    )
    .await;
    assert_eq!(me["username"], "jdoe");
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_client_and_redirect_uri() {
    let portal = FakePortal::start().await;
    let code = code_for(&portal, PUBLIC_CLIENT_ID, &[]).await;

    // Wrong redirect URI, wrong client: refused, and the code survives.
    let wrong_redirect = token(
        &portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", PUBLIC_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8766/callback"),
        ],
    )
    .await;
    assert_eq!(
        wrong_redirect["error"]["error_description"],
        "Invalid redirect_uri"
    );
    let wrong_client = token(
        &portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CONFIDENTIAL_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        wrong_client["error"]["error_description"],
        "Invalid authorization code"
    );

    let first = exchange(&portal, &code, &[]).await;
    assert!(first["access_token"].is_string(), "{first}");
    let again = exchange(&portal, &code, &[]).await;
    assert_eq!(
        again,
        json!({"error":{"code":400,"error":"invalid_request","error_description":"Invalid authorization code","message":"Invalid authorization code","details":[]}})
    );
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let portal = FakePortal::start().await;
    let code = code_for(&portal, PUBLIC_CLIENT_ID, &[]).await;
    portal.advance_clock(Duration::from_secs(10 * 60));
    let answer = exchange(&portal, &code, &[]).await;
    assert_eq!(
        answer["error"]["error_description"],
        "Invalid authorization code"
    );
}

#[tokio::test]
async fn pkce_s256_is_checked() {
    let portal = FakePortal::start().await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&portal, PUBLIC_CLIENT_ID, &pkce).await;

    let missing = exchange(&portal, &code, &[]).await;
    assert_eq!(
        missing["error"]["error_description"],
        "code_verifier not specified"
    );
    let other = PkceCodeVerifier::new("a".repeat(43));
    let wrong = exchange(&portal, &code, &[("code_verifier", other.secret())]).await;
    assert_eq!(wrong["error"]["error_description"], "Invalid code_verifier");
    // Sending the challenge itself as the verifier does not pass S256.
    let challenge_as_verifier =
        exchange(&portal, &code, &[("code_verifier", challenge.as_str())]).await;
    assert_eq!(challenge_as_verifier["error"]["code"], 400);

    let ok = exchange(&portal, &code, &[("code_verifier", verifier.secret())]).await;
    assert!(ok["access_token"].is_string(), "{ok}");
}

#[tokio::test]
async fn pkce_plain_is_the_default_method() {
    let portal = FakePortal::start().await;
    let verifier = "plain-verifier-".repeat(4);
    let code = code_for(&portal, PUBLIC_CLIENT_ID, &[("code_challenge", &verifier)]).await;
    let wrong = exchange(&portal, &code, &[("code_verifier", &"x".repeat(60))]).await;
    assert_eq!(wrong["error"]["error_description"], "Invalid code_verifier");
    let ok = exchange(&portal, &code, &[("code_verifier", &verifier)]).await;
    assert!(ok["access_token"].is_string(), "{ok}");
}

#[tokio::test]
async fn client_credentials_checks_the_secret_and_honours_expiration() {
    let portal = FakePortal::start().await;
    let ok = app_sign_in(&portal, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET).await;
    let mut keys: Vec<&String> = ok.as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in"]);
    assert_eq!(ok["expires_in"], 7200);

    let long = token(
        &portal,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CONFIDENTIAL_CLIENT_ID),
            ("client_secret", CONFIDENTIAL_CLIENT_SECRET),
            ("expiration", "999999"),
        ],
    )
    .await;
    assert_eq!(long["expires_in"], 20160 * 60);

    let wrong = app_sign_in(&portal, CONFIDENTIAL_CLIENT_ID, "guess").await;
    assert_eq!(
        wrong,
        json!({"error":{"code":400,"error":"invalid_client","error_description":"Invalid client_secret","message":"Invalid client_secret","details":[]}})
    );
    let public = app_sign_in(&portal, PUBLIC_CLIENT_ID, "anything").await;
    assert_eq!(public["error"]["error"], "invalid_client");
    let unknown = app_sign_in(&portal, "nope", "x").await;
    assert_eq!(unknown["error"]["error"], "invalid_client_id");
    assert_eq!(portal.calls().token(Grant::ClientCredentials), 5);
}

#[tokio::test]
async fn org_cap_limits_lifetimes() {
    let portal = FakePortal::builder()
        .app(App::confidential("c", "s").redirect_uri(REDIRECT))
        .user("jdoe", "pw")
        .max_token_expiration_minutes(60)
        .omit_refresh_token_expires_in()
        .start()
        .await;
    let app = app_sign_in(&portal, "c", "s").await;
    assert_eq!(app["expires_in"], 3600);
    let code = code_for(&portal, "c", &[]).await;
    let user = token(
        &portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "c"),
            ("client_secret", "s"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert!(user["refresh_token"].is_string());
    assert!(user.get("refresh_token_expires_in").is_none(), "{user}");
    let refresh = portal
        .issued_tokens()
        .into_iter()
        .find(|t| t.kind == arcgis_auth_testkit::TokenKind::Refresh)
        .unwrap();
    assert_eq!(
        refresh
            .expires_at
            .saturating_duration_since(refresh.issued_at),
        Duration::from_secs(3600)
    );
}

#[tokio::test]
async fn refresh_token_grant_gives_only_an_access_token() {
    let portal = FakePortal::start().await;
    let signed_in = sign_in(&portal).await;
    let refresh = signed_in["refresh_token"].as_str().unwrap();
    let answer = refresh_grant(&portal, PUBLIC_CLIENT_ID, refresh).await;
    let mut keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "ssl", "username"]);
    assert_ne!(answer["access_token"], signed_in["access_token"]);

    // Another app cannot use it.
    let stolen = refresh_grant(&portal, CONFIDENTIAL_CLIENT_ID, refresh).await;
    assert_eq!(stolen["error"]["code"], 498);
    assert_eq!(portal.calls().token(Grant::RefreshToken), 2);
}

#[tokio::test]
async fn refresh_tokens_expire_with_the_portal_clock() {
    let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
    let portal = FakePortal::builder()
        .app(App::public("app").redirect_uri(REDIRECT))
        .user("jdoe", "pw")
        .clock(clock.clone())
        .start()
        .await;
    let code = code_for(&portal, "app", &[("expiration", "120")]).await;
    let signed_in = token(
        &portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(signed_in["refresh_token_expires_in"], 7200);
    let refresh = signed_in["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", refresh),
    ];

    // The shared clock moves the portal too.
    clock.advance(Duration::from_secs(7199));
    assert!(token(&portal, &form).await["access_token"].is_string());
    clock.advance(Duration::from_secs(1));
    let dead = token(&portal, &form).await;
    assert_eq!(
        dead,
        json!({"error":{"code":498,"error":"invalid_request","error_description":"refresh_token expired","message":"refresh_token expired","details":[]}})
    );
}

#[tokio::test]
async fn access_tokens_expire_after_thirty_minutes() {
    let portal = FakePortal::start().await;
    let signed_in = sign_in(&portal).await;
    let access = signed_in["access_token"].as_str().unwrap();
    portal.advance_clock(Duration::from_secs(1799));
    assert_eq!(
        get_with_token(&portal.url("community/self"), Some(access)).await["username"],
        "jdoe"
    );
    portal.advance_clock(Duration::from_secs(1));
    let expired = get_with_token(&portal.url("community/self"), Some(access)).await;
    assert_eq!(
        expired,
        json!({"error":{"code":498,"message":"Invalid token.","details":[]}})
    );
}

#[tokio::test]
async fn exchange_rotates_and_kills_the_old_refresh_token() {
    let portal = FakePortal::start().await;
    let signed_in = sign_in(&portal).await;
    let old = signed_in["refresh_token"].as_str().unwrap();

    let wrong_redirect = token(
        &portal,
        &[
            ("grant_type", "exchange_refresh_token"),
            ("client_id", PUBLIC_CLIENT_ID),
            ("refresh_token", old),
            ("redirect_uri", "http://127.0.0.1:1/other"),
        ],
    )
    .await;
    assert_eq!(
        wrong_redirect["error"]["error_description"],
        "Invalid redirect_uri"
    );

    let exchanged = token(
        &portal,
        &[
            ("grant_type", "exchange_refresh_token"),
            ("client_id", PUBLIC_CLIENT_ID),
            ("refresh_token", old),
            ("redirect_uri", "http://127.0.0.1:8765/callback"),
        ],
    )
    .await;
    let new = exchanged["refresh_token"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(exchanged["expires_in"], 1800);
    assert_eq!(exchanged["refresh_token_expires_in"], 20160 * 60);
    assert_eq!(exchanged["username"], "jdoe");

    // The old one is dead for both grants; the new one works.
    for grant in ["refresh_token", "exchange_refresh_token"] {
        let dead = token(
            &portal,
            &[
                ("grant_type", grant),
                ("client_id", PUBLIC_CLIENT_ID),
                ("refresh_token", old),
                ("redirect_uri", "http://127.0.0.1:8765/callback"),
            ],
        )
        .await;
        assert_eq!(dead["error"]["code"], 498, "{grant}: {dead}");
        assert_eq!(dead["error"]["error_description"], "Invalid refresh_token");
    }
    let fresh = refresh_grant(&portal, PUBLIC_CLIENT_ID, new).await;
    assert!(fresh["access_token"].is_string());
    assert_eq!(portal.calls().token(Grant::ExchangeRefreshToken), 3);

    // Any redirect URI registered for the app will do (here: another loopback port).
    let again = token(
        &portal,
        &[
            ("grant_type", "exchange_refresh_token"),
            ("client_id", PUBLIC_CLIENT_ID),
            ("refresh_token", new),
            ("redirect_uri", "http://127.0.0.1:9999/callback"),
        ],
    )
    .await;
    assert!(again["refresh_token"].is_string(), "{again}");
}

#[tokio::test]
async fn malformed_requests_get_arcgis_errors() {
    let portal = FakePortal::start().await;
    let unsupported = token(
        &portal,
        &[("grant_type", "password"), ("client_id", PUBLIC_CLIENT_ID)],
    )
    .await;
    assert_eq!(unsupported["error"]["error"], "unsupported_grant_type");
    let missing = token(&portal, &[("client_id", PUBLIC_CLIENT_ID)]).await;
    assert_eq!(
        missing["error"]["error_description"],
        "grant_type not specified"
    );
    let no_client = token(&portal, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        no_client["error"]["error_description"],
        "client_id not specified"
    );
    assert_eq!(portal.calls().token(Grant::Other), 2);

    // GET is refused: secrets do not belong in URLs. And it is counted.
    let response = client()
        .get(with_query(
            &portal.url("oauth2/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", CONFIDENTIAL_CLIENT_ID),
                ("client_secret", CONFIDENTIAL_CLIENT_SECRET),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 405);
    assert_eq!(portal.calls().secrets_in_url(), 1);
}
