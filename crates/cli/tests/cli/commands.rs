//! Every command's happy path.

use std::os::unix::fs::PermissionsExt;

use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, Grant, PASSWORD, SERVER_NAME,
    USERNAME,
};
use serde_json::Value;

use crate::support::{Setup, expire, quiet_success, stdout_of};

#[tokio::test(flavor = "multi_thread")]
async fn login_app_then_token_prints_only_the_token() {
    let s = Setup::start().await;
    let login = ["login", "app", "--client-id", CONFIDENTIAL_CLIENT_ID];
    let stderr = quiet_success(
        s.cmd(&login)
            .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET),
    );
    assert!(stderr.contains("Signed in to"), "{stderr}");

    let token = s.token("default");
    assert!(s.is_app_token(&token));
    // A fresh token is served from the store: no second request.
    assert_eq!(s.token("default"), token);
    assert_eq!(s.portal.calls().token(Grant::ClientCredentials), 1);
    assert_eq!(s.portal.calls().secrets_in_url(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_can_come_from_another_variable_or_stdin() {
    let s = Setup::start().await;
    s.cmd(&[
        "--profile",
        "env",
        "login",
        "app",
        "--client-id",
        CONFIDENTIAL_CLIENT_ID,
        "--client-secret-env",
        "MY_SECRET",
    ])
    .env("MY_SECRET", CONFIDENTIAL_CLIENT_SECRET)
    .assert()
    .success();
    s.cmd(&[
        "--profile",
        "stdin",
        "login",
        "app",
        "--client-id",
        CONFIDENTIAL_CLIENT_ID,
        "--client-secret-stdin",
    ])
    .write_stdin(format!("{CONFIDENTIAL_CLIENT_SECRET}\n"))
    .assert()
    .success();
    assert_eq!(s.portal.calls().token(Grant::ClientCredentials), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn token_json_has_the_documented_shape() {
    let s = Setup::start().await;
    s.login_app("default");
    let out = s
        .cmd(&["token", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = stdout_of(&out);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["expires_at", "portal", "ssl", "token", "username"]);
    assert!(s.is_app_token(v["token"].as_str().unwrap()));
    assert_eq!(v["portal"], s.portal.portal_url());
    assert_eq!(v["ssl"], false);
    assert_eq!(v["username"], Value::Null);
    let expires = v["expires_at"].as_str().unwrap();
    // RFC 3339 in UTC: 2026-11-21T08:30:00.000Z
    assert_eq!(expires.len(), 24, "{expires}");
    assert!(
        expires.ends_with('Z') && expires.as_bytes()[10] == b'T',
        "{expires}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_app_session_signs_in_again_with_the_secret() {
    let s = Setup::start().await;
    s.login_app("default");
    let first = s.token("default");
    expire(&s.file_store(), "default").await;
    let second = s.token("default");
    assert_ne!(first, second);
    assert!(s.is_app_token(&second));
    assert_eq!(s.portal.calls().token(Grant::ClientCredentials), 2);
    // The renewed session was saved: the next call needs no request.
    assert_eq!(s.token("default"), second);
    assert_eq!(s.portal.calls().token(Grant::ClientCredentials), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_password_and_token() {
    let s = Setup::start().await;
    s.cmd(&[
        "login",
        "password",
        "--username",
        USERNAME,
        "--password-stdin",
    ])
    .write_stdin(format!("{PASSWORD}\n"))
    .assert()
    .success()
    .stdout("");
    let v = s.json(&["token", "--json"]);
    assert_eq!(v["username"], USERNAME);
    assert_eq!(s.portal.calls().endpoint(Endpoint::GenerateToken), 1);

    // The password may also come from ARCGIS_PASSWORD, or stdin without the flag.
    s.login_password("env");
    s.cmd(&[
        "--profile",
        "piped",
        "login",
        "password",
        "--username",
        USERNAME,
    ])
    .write_stdin(PASSWORD)
    .assert()
    .success();
    assert_eq!(s.portal.calls().endpoint(Endpoint::GenerateToken), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_file_is_0600_and_holds_no_password_or_secret() {
    let s = Setup::start().await;
    s.login_app("app");
    s.login_password("pw");
    let mode = std::fs::metadata(s.store_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let text = std::fs::read_to_string(s.store_path()).unwrap();
    assert!(
        text.contains("profile/app") && text.contains("profile/pw"),
        "{text}"
    );
    assert!(!text.contains(CONFIDENTIAL_CLIENT_SECRET));
    assert!(!text.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_session_and_never_a_token() {
    let s = Setup::start().await;
    s.login_app("default");
    let token = s.token("default");
    let out = s.cmd(&["status"]).assert().success().get_output().clone();
    let text = stdout_of(&out);
    for expected in [
        "profile:       default",
        "kind:          app",
        CONFIDENTIAL_CLIENT_ID,
        "valid until",
        &s.portal.portal_url(),
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    let v = s.json(&["status", "--json"]);
    let json = v.to_string();
    assert_eq!(v["kind"], "app");
    assert_eq!(v["expired"], false);
    assert_eq!(v["client_id"], CONFIDENTIAL_CLIENT_ID);
    for shown in [&text, &json] {
        assert!(!shown.contains(&token));
    }
    // No network: status is read from the store.
    assert_eq!(s.portal.calls().endpoint(Endpoint::Token), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_lists_every_profile_sorted() {
    let s = Setup::start().await;
    s.cmd(&["profiles"]).assert().success().stdout("");
    s.login_app("work");
    s.login_app("ci");
    s.cmd(&["profiles"]).assert().success().stdout("ci\nwork\n");
    // Each profile is its own session.
    assert_ne!(s.token("ci"), s.token("work"));
}

#[tokio::test(flavor = "multi_thread")]
async fn global_options_come_from_the_environment() {
    let s = Setup::start().await;
    let mut cmd = std::process::Command::new(crate::support::BIN);
    cmd.env_clear()
        .env("HOME", s.dir.path())
        .env("ARCGIS_PORTAL", s.portal.portal_url())
        .env("ARCGIS_AUTH_STORE", &s.store)
        .env("ARCGIS_AUTH_PROFILE", "from-env")
        .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET)
        .args(["login", "app", "--client-id", CONFIDENTIAL_CLIENT_ID]);
    assert_cmd::Command::from_std(cmd).assert().success();
    s.cmd(&["profiles"]).assert().success().stdout("from-env\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_store_is_in_the_config_directory() {
    let s = Setup::start().await;
    let xdg = s.dir.path().join("xdg");
    for (var, dir, file) in [
        (
            "HOME",
            s.dir.path().to_path_buf(),
            s.dir.path().join(".config/arcgis-auth/sessions.json"),
        ),
        (
            "XDG_CONFIG_HOME",
            xdg.clone(),
            xdg.join("arcgis-auth/sessions.json"),
        ),
    ] {
        let mut cmd = std::process::Command::new(crate::support::BIN);
        cmd.env_clear()
            .env("HOME", s.dir.path())
            .env(var, &dir)
            .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET)
            .args(["--portal", &s.portal.portal_url()])
            .args(["login", "app", "--client-id", CONFIDENTIAL_CLIENT_ID]);
        assert_cmd::Command::from_std(cmd).assert().success();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_attaches_the_token_in_a_header_and_adds_f_json() {
    let s = Setup::start().await;
    s.login_app("default");
    let token = s.token("default");
    let url = s.portal.secured_item_url("abc");
    let out = s
        .cmd(&["request", &url])
        .assert()
        .success()
        .get_output()
        .clone();
    let body: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert!(body.get("error").is_none(), "{body}");
    assert_eq!(s.portal.calls().endpoint(Endpoint::ContentItem), 1);
    assert_eq!(s.portal.calls().secrets_in_url(), 0);

    let requests = s.portal.received_requests().await;
    let item = requests
        .iter()
        .find(|r| r.url.path().ends_with("content/items/abc"))
        .unwrap();
    assert!(
        item.url.query_pairs().any(|(k, v)| k == "f" && v == "json"),
        "{}",
        item.url
    );
    assert!(!item.url.as_str().contains(&token));
    let header = item
        .headers
        .get("x-esri-authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(header, format!("Bearer {token}"));

    // POST with --data: a form body, still no token in the URL.
    s.cmd(&["request", &url, "--method", "POST", "--data", "a=1=2"])
        .assert()
        .success();
    assert_eq!(s.portal.calls().endpoint(Endpoint::ContentItem), 2);
    assert_eq!(s.portal.calls().secrets_in_url(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_renews_and_retries_once_after_a_498() {
    let s = Setup::start().await;
    s.login_app("default");
    // The portal stops accepting the token the CLI still believes in.
    s.portal.expire_access_tokens();
    s.cmd(&["request", &s.portal.secured_item_url("abc")])
        .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET)
        .assert()
        .success();
    assert_eq!(s.portal.calls().token(Grant::ClientCredentials), 2);
    assert_eq!(s.portal.calls().endpoint(Endpoint::ContentItem), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_a_user_session_and_deletes_it() {
    let s = Setup::start().await;
    crate::browser::login_oob(&s, "default").await;
    let revoked_before = s.portal.calls().endpoint(Endpoint::RevokeToken);
    let stderr = quiet_success(&mut s.cmd(&["logout"]));
    assert!(stderr.contains("refresh token was revoked"), "{stderr}");
    assert_eq!(
        s.portal.calls().endpoint(Endpoint::RevokeToken),
        revoked_before + 1
    );
    assert!(
        s.portal
            .issued_tokens()
            .iter()
            .filter(|t| t.kind == arcgis_auth_testkit::TokenKind::Refresh)
            .all(|t| t.revoked)
    );
    s.cmd(&["profiles"]).assert().success().stdout("");
    s.cmd(&["token"]).assert().code(3);
    // Logging out of nothing is fine.
    s.cmd(&["logout"]).assert().success();
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_of_an_app_session_deletes_it() {
    let s = Setup::start().await;
    s.login_app("default");
    let stderr = quiet_success(&mut s.cmd(&["logout"]));
    assert!(stderr.contains("cannot be revoked"), "{stderr}");
    s.cmd(&["profiles"]).assert().success().stdout("");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_to_a_federated_server_uses_a_server_token() {
    let s = Setup::start().await;
    s.login_password("default");
    let server = s.portal.server(SERVER_NAME).unwrap();
    let url = server.service_url("Parcels/FeatureServer/0/query");
    let out = s
        .cmd(&["request", &url, "--data", "where=1=1"])
        .assert()
        .success()
        .get_output()
        .clone();
    let body: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert!(body.get("error").is_none(), "{body}");
    assert_eq!(
        s.portal
            .calls()
            .server(SERVER_NAME, Endpoint::ServerServices),
        1
    );
    assert_eq!(s.portal.calls().secrets_in_url(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_sends_no_token_to_another_origin() {
    let s = Setup::start().await;
    s.login_app("default");
    let token = s.token("default");
    let other = arcgis_auth_testkit::FakePortal::start().await;
    // The other portal wants a token (499) and gets none: exit 4.
    let out = s
        .cmd(&["request", &other.secured_item_url("x")])
        .assert()
        .code(4)
        .get_output()
        .clone();
    crate::support::one_line_error(&out);
    for request in other.received_requests().await {
        assert!(request.headers.get("x-esri-authorization").is_none());
        assert!(request.headers.get("authorization").is_none());
        assert!(!request.url.as_str().contains(&token));
    }
    assert!(!other.received_requests().await.is_empty());
}
