//! Each exit status, with one clear line on stderr and nothing on stdout.

use std::net::TcpListener;

use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, Failure, Grant, PASSWORD,
    USERNAME,
};

use crate::support::{Setup, expire, one_line_error};

fn run(cmd: &mut assert_cmd::Command, code: i32) -> String {
    let out = cmd.assert().code(code).get_output().clone();
    one_line_error(&out)
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2() {
    let s = Setup::start().await;
    // clap's own errors are several lines (with a usage hint); they exit 2.
    s.cmd(&["frobnicate"]).assert().code(2).stdout("");
    s.cmd(&["login"]).assert().code(2).stdout("");
    s.cmd(&["login", "app"]).assert().code(2).stdout("");
    s.cmd(&["token", "--what"]).assert().code(2).stdout("");
    for bad in [["--store", "postgres://x"], ["--portal", "not a url"]] {
        let mut cmd = s.base();
        cmd.args(bad).arg("token");
        let out = assert_cmd::Command::from_std(cmd)
            .assert()
            .code(2)
            .stdout("");
        let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
        assert!(stderr.contains(bad[0]), "{stderr}");
    }
    // Our own usage errors are one line.
    let err = run(
        s.cmd(&["login", "app", "--client-id", CONFIDENTIAL_CLIENT_ID])
            .env_remove("ARCGIS_CLIENT_SECRET"),
        2,
    );
    assert!(err.contains("ARCGIS_CLIENT_SECRET"), "{err}");
    let err = run(&mut s.cmd(&["--profile", "a/b", "profiles"]), 2);
    assert!(err.contains("profile"), "{err}");
    // --timeout: whole seconds from 1, and only where a listener waits.
    for bad in ["0", "-5", "soon", "86401"] {
        s.cmd(&["login", "user", "--client-id", "x", "--timeout", bad])
            .assert()
            .code(2)
            .stdout("");
    }
    let err = run(
        &mut s.cmd(&[
            "login",
            "user",
            "--client-id",
            "x",
            "--redirect",
            "oob",
            "--timeout",
            "5",
        ]),
        2,
    );
    assert!(
        err.contains("--timeout only applies to --redirect loopback"),
        "{err}"
    );
    // Credentials never go to a remote portal over plain http.
    let mut remote = s.base();
    remote
        .args(["--portal", "http://portal.example.com/sharing/rest"])
        .args(["login", "app", "--client-id", "x"])
        .env("ARCGIS_CLIENT_SECRET", "s");
    let err = run(&mut assert_cmd::Command::from_std(remote), 2);
    assert!(err.contains("http"), "{err}");
    // --help and --version are not errors.
    s.cmd(&["--help"]).assert().success();
    s.cmd(&["token", "--help"]).assert().success();
    s.cmd(&["--version"]).assert().success();
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_required_exits_3() {
    let s = Setup::start().await;
    // No session (also in a store that lives only as long as the process).
    let mut memory = s.base();
    memory.args(["--store", "memory", "token"]);
    run(&mut assert_cmd::Command::from_std(memory), 3);
    let err = run(&mut s.cmd(&["token"]), 3);
    assert!(err.contains("login"), "{err}");
    run(&mut s.cmd(&["status"]), 3);
    run(&mut s.cmd(&["request", &s.portal.secured_item_url("x")]), 3);

    // An expired app session without its secret.
    s.login_app("app");
    expire(&s.file_store(), "app").await;
    let err = run(&mut s.cmd(&["--profile", "app", "token"]), 3);
    assert!(err.contains("ARCGIS_CLIENT_SECRET"), "{err}");

    // An expired generateToken session: its password was never stored.
    s.login_password("pw");
    expire(&s.file_store(), "pw").await;
    let err = run(
        s.cmd(&["--profile", "pw", "token"])
            .env("ARCGIS_PASSWORD", PASSWORD),
        3,
    );
    assert!(err.contains("login password"), "{err}");
    assert_eq!(s.portal.calls().endpoint(Endpoint::GenerateToken), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_refresh_token_exits_3() {
    let s = Setup::start().await;
    crate::browser::login_oob(&s, "default").await;
    s.portal.revoke_all_tokens();
    expire(&s.file_store(), "default").await;
    let err = run(&mut s.cmd(&["token"]), 3);
    assert!(err.contains("login user"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_portal_refusing_exits_4() {
    let s = Setup::start().await;
    let err = run(
        s.cmd(&["login", "app", "--client-id", CONFIDENTIAL_CLIENT_ID])
            .env("ARCGIS_CLIENT_SECRET", "wrong-secret"),
        4,
    );
    assert!(!err.contains("wrong-secret"), "{err}");
    run(
        s.cmd(&["login", "app", "--client-id", "nobody"])
            .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET),
        4,
    );
    let err = run(
        s.cmd(&["login", "password", "--username", USERNAME])
            .env("ARCGIS_PASSWORD", "wrong-password"),
        4,
    );
    assert!(!err.contains("wrong-password"), "{err}");
    // An app token on community/self: 403.
    s.login_app("default");
    run(&mut s.cmd(&["request", &s.portal.url("community/self")]), 4);
    s.cmd(&["profiles"]).assert().success().stdout("default\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn network_failures_exit_5_and_a_later_call_recovers() {
    let s = Setup::start().await;
    s.login_app("default");
    expire(&s.file_store(), "default").await;
    // More failures than the command retries.
    s.portal.fail_next_token_calls(50, Failure::HtmlPage);
    let err = run(
        s.cmd(&["token"])
            .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET),
        5,
    );
    assert!(err.contains("HTML"), "{err}");
    let attempts = s.portal.calls().token(Grant::ClientCredentials);
    assert!(attempts > 2, "retried within the command: {attempts} calls");
    // The portal recovers; the next invocation does too.
    s.portal.clear_failures();
    let token = s.token("default");
    assert!(s.is_app_token(&token));

    // Nobody listening at all.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = s.base();
    cmd.args(["--portal", &format!("http://127.0.0.1:{port}/sharing/rest")])
        .args(["login", "app", "--client-id", CONFIDENTIAL_CLIENT_ID])
        .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET);
    run(&mut assert_cmd::Command::from_std(cmd), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_token_failures_are_retried_within_the_command() {
    for failure in [
        Failure::ServiceUnavailable503,
        Failure::ConnectionReset,
        Failure::HtmlPage,
    ] {
        let s = Setup::start().await;
        s.login_app("default");
        let before = s.token("default");
        expire(&s.file_store(), "default").await;
        s.portal.fail_next_token_calls(2, failure.clone());
        let after = s.token("default");
        assert_ne!(before, after, "{failure:?}");
        assert!(s.is_app_token(&after), "{failure:?}");
        assert_eq!(
            s.portal.calls().token(Grant::ClientCredentials),
            4,
            "{failure:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anything_else_exits_1() {
    let s = Setup::start().await;
    std::fs::write(s.store_path(), "this is not a session store").unwrap();
    let err = run(&mut s.cmd(&["token"]), 1);
    assert!(err.contains("session store"), "{err}");
    // The damaged file is left alone.
    assert_eq!(
        std::fs::read_to_string(s.store_path()).unwrap(),
        "this is not a session store"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_is_not_a_panic() {
    let s = Setup::start().await;
    s.login_app("default");
    let mut child = s
        .command(&["token"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
