//! `probe`, `login kerberos`, then `request`, `token` (renewal), `status`
//! and `logout` through the real binary, against the testkit's Negotiate
//! web tier and a real MIT KDC on loopback.
//!
//! Kerberos reads its settings from the process environment, so the test
//! runs as a worker (this test binary again, the ignored
//! `kerberos_cli_worker`) started with the realm's environment: the fake
//! portal's acceptor reads the keytab from it, and the binary inherits the
//! credential cache.

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_testkit::{Endpoint, FakePortal, KerberosRealm, TestWorker, WebTier};

use crate::support::{Setup, expire, one_line_error, quiet_success, stdout_of};

const SCENARIO: &str = "ARCGIS_AUTH_CLI_KRB_SCENARIO";
const DONE: &str = "krb-cli-worker ok";
const PRINCIPAL: &str = "jdoe@ARCGIS.TEST";

fn run(scenario: &str, mut env: Vec<(String, std::ffi::OsString)>) {
    env.push((SCENARIO.into(), scenario.into()));
    let worker = TestWorker::spawn_ignored("kerberos::kerberos_cli_worker", env).unwrap();
    let (status, line) = worker.finish(DONE).unwrap();
    assert!(status.success(), "the {scenario} worker failed: {status}");
    assert_eq!(line, Some(format!("{DONE} {scenario}")));
}

#[test]
fn login_kerberos_then_request_token_renewal_and_logout() {
    let Some(realm) = KerberosRealm::for_test("login_kerberos", "127.0.0.1") else {
        return;
    };
    run("login", realm.env());
}

#[test]
fn login_kerberos_without_a_ticket_names_kinit() {
    let Some(realm) = KerberosRealm::for_test("login_kerberos_without_a_ticket", "127.0.0.1")
    else {
        return;
    };
    run("no_ticket", realm.env_without_ticket());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a worker process of the Kerberos CLI tests, started by them"]
async fn kerberos_cli_worker() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let s = Setup::with_portal(
        FakePortal::builder()
            .federated_server("server")
            .web_tier(WebTier::negotiate())
            .start()
            .await,
    );
    match scenario.as_str() {
        "login" => login(&s).await,
        "no_ticket" => no_ticket(&s),
        other => panic!("unknown scenario {other}"),
    }
    println!("{DONE} {scenario}");
}

async fn login(s: &Setup) {
    let v = s.json(&["probe", "--json"]);
    assert_eq!(v["sign_ins"], serde_json::json!(["kerberos"]), "{v}");
    let out = s.cmd(&["probe"]).assert().success().get_output().clone();
    assert!(
        stdout_of(&out).contains("`arcgis-auth login kerberos`"),
        "{}",
        stdout_of(&out)
    );

    quiet_success(&mut s.cmd(&["login", "kerberos", "--expiration", "30"]));
    let stored = std::fs::read_to_string(s.store_path()).unwrap();
    assert!(stored.contains(PRINCIPAL), "{stored}");
    assert!(!stored.contains("Negotiate"), "{stored}");
    let status = s.json(&["status", "--json"]);
    assert_eq!(status["kind"], "web_tier", "{status}");
    assert_eq!(status["username"], PRINCIPAL, "{status}");
    let minted = s
        .portal
        .received_requests()
        .await
        .into_iter()
        .find(|r| r.url.path().ends_with("/generateToken"))
        .unwrap();
    let form = String::from_utf8_lossy(&minted.body).into_owned();
    assert!(form.contains("request=getToken"), "{form}");
    assert!(form.contains("expiration=30"), "{form}");
    assert!(!form.contains("password"), "{form}");

    // `request` sends a Negotiate token and the portal token.
    let out = s
        .cmd(&["request", &s.portal.secured_item_url("abc123")])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(stdout_of(&out).contains("abc123"), "{}", stdout_of(&out));

    // An expired token is minted again over Kerberos, with nothing but the cache.
    expire(&s.file_store(), "default").await;
    let before = s.portal.calls().endpoint(Endpoint::GenerateToken);
    let out = s.cmd(&["token"]).assert().success().get_output().clone();
    let token = stdout_of(&out).trim().to_owned();
    assert_eq!(
        s.portal.calls().endpoint(Endpoint::GenerateToken),
        before + 1
    );
    assert!(
        s.portal
            .issued_tokens()
            .iter()
            .any(|t| t.token.expose_secret() == token)
    );

    s.cmd(&["logout"]).assert().success();
    s.cmd(&["status"]).assert().code(3);
}

fn no_ticket(s: &Setup) {
    let out = s
        .cmd(&["login", "kerberos"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    let err = one_line_error(&out);
    assert!(err.contains("kinit"), "{err}");
    assert_eq!(s.portal.calls().total(), 0);
}
