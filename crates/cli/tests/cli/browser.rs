//! `login user`: the test plays the browser.

use std::io::Write;

use arcgis_auth_testkit::{Endpoint, Grant, USERNAME};

use crate::support::{Setup, expire};

/// Signs `profile` in with `login user --redirect oob`: reads the `Open:`
/// line, lets the portal approve, and types the code it shows on stdin.
pub(crate) async fn login_oob(s: &Setup, profile: &str) {
    let mut login = s.spawn_login_user(&["--profile", profile, "--redirect", "oob"]);
    let approval = s.portal.authorize_redirect(&login.url).await.unwrap();
    assert!(approval.path().ends_with("oauth2/approval"), "{approval}");
    // The user reads the code off the approval page and pastes it.
    let page = reqwest::get(approval.as_str())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let title = page
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap();
    let code = title.strip_prefix("SUCCESS code=").unwrap();
    let mut stdin = login.child.stdin.take().unwrap();
    writeln!(stdin, "{code}").unwrap();
    drop(stdin);
    let (status, stderr) = login.finish();
    assert!(status.success(), "{status}: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_login_with_the_test_as_the_browser() {
    let s = Setup::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let login = s.spawn_login_user(&["--port", &port.to_string()]);
    let url = login.url.clone();
    assert!(url.starts_with(&s.portal.url("oauth2/authorize")), "{url}");
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let redirect = format!("redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback");
    assert!(url.contains(&redirect), "{url}");
    let visit = s.portal.play_browser(&url).await.unwrap();
    assert_eq!(visit.status, Some(200), "{}", visit.body);
    let (status, stderr) = login.finish();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains(&format!("as {USERNAME}")), "{stderr}");

    assert_eq!(s.json(&["token", "--json"])["username"], USERNAME);
    let v = s.json(&["status", "--json"]);
    assert_eq!(v["kind"], "user");
    assert!(v["refresh_expires_at"].is_string(), "{v}");
    assert_eq!(s.portal.calls().token(Grant::AuthorizationCode), 1);
    assert_eq!(s.portal.calls().secrets_in_url(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn oob_login_reads_the_code_from_stdin_and_refreshes_later() {
    let s = Setup::start().await;
    login_oob(&s, "default").await;
    assert_eq!(s.portal.calls().token(Grant::AuthorizationCode), 1);
    assert_eq!(s.portal.calls().endpoint(Endpoint::Authorize), 1);
    let first = s.token("default");
    expire(&s.file_store(), "default").await;
    let second = s.token("default");
    assert_ne!(first, second);
    assert_eq!(s.portal.calls().token(Grant::RefreshToken), 1);
    let text = std::fs::read_to_string(s.store_path()).unwrap();
    assert!(
        text.contains("refresh_token"),
        "a user session keeps its refresh token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declined_sign_in_exits_3() {
    let s = Setup::start().await;
    s.portal.deny_next_authorization();
    let login = s.spawn_login_user(&[]);
    let _ = s.portal.play_browser(&login.url).await.unwrap();
    let (status, stderr) = login.finish();
    assert_eq!(status.code(), Some(3), "{stderr}");
    let errors = stderr.lines().filter(|l| l.starts_with("arcgis-auth: "));
    assert_eq!(errors.count(), 1, "{stderr}");
    s.cmd(&["profiles"]).assert().success().stdout("");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_browser_that_never_comes_back_times_out_with_status_3() {
    let s = Setup::start().await;
    // Nobody opens the URL: after --timeout seconds the login gives up.
    let login = s.spawn_login_user(&["--timeout", "1"]);
    let (status, stderr) = login.finish();
    assert_eq!(status.code(), Some(3), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("arcgis-auth: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("within 1 s"), "{stderr}");
    assert!(errors[0].contains("start the sign-in again"), "{stderr}");
    for bad in ["panicked", "backtrace"] {
        assert!(!stderr.contains(bad), "{stderr}");
    }
    // Nothing was asked of the portal, and nothing was stored.
    assert_eq!(s.portal.calls().total(), 0);
    s.cmd(&["profiles"]).assert().success().stdout("");
}
