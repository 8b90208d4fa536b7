//! `probe`, `login pki` and `login basic` against the testkit's web tier
//! (HTTP Basic, and real rustls requiring a client certificate), then
//! `token`, `request` and `status` on those profiles.

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_testkit::{Endpoint, FakePortal, TestCa, WebTier};

use crate::support::{Setup, expire, one_line_error, quiet_success, stdout_of};

const USER: &str = "CORP\\jdoe";
const PW: &str = "directory-pw-5512";
const REFERER_ITEM: &str = "abc123";

async fn basic_setup() -> Setup {
    Setup::with_portal(
        FakePortal::builder()
            .federated_server("server")
            .web_tier(WebTier::basic("GIS Directory").user(USER, PW))
            .start()
            .await,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_says_which_login_works_and_sends_nothing() {
    let token_based = Setup::start().await;
    let v = token_based.json(&["probe", "--json"]);
    assert_eq!(v["token_based"], true, "{v}");
    assert_eq!(
        v["sign_ins"],
        serde_json::json!(["user", "app", "password"])
    );

    let s = basic_setup().await;
    let v = s.json(&["probe", "--json"]);
    assert_eq!(v["token_based"], false, "{v}");
    assert_eq!(
        v["web_tier"],
        serde_json::json!([{"scheme": "basic", "realm": "GIS Directory"}])
    );
    assert_eq!(v["sign_ins"], serde_json::json!(["basic"]));
    let out = s
        .cmd(&["probe"])
        .env("ARCGIS_PASSWORD", PW)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stdout_of(&out).contains("`arcgis-auth login basic`"),
        "{}",
        stdout_of(&out)
    );
    for r in s.portal.received_requests().await {
        assert!(!r.headers.contains_key("authorization"), "{}", r.url);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_basic_then_token_request_and_renewal() {
    let s = basic_setup().await;
    quiet_success(
        s.cmd(&["login", "basic", "--username", USER])
            .env("ARCGIS_PASSWORD", PW),
    );
    let stored = std::fs::read_to_string(s.store_path()).unwrap();
    assert!(!stored.contains(PW), "{stored}");
    let status = s.json(&["status", "--json"]);
    assert_eq!(status["kind"], "web_tier", "{status}");
    assert_eq!(status["username"], USER, "{status}");

    // `request` sends the Basic credential, the token and its referer.
    let out = s
        .cmd(&["request", &s.portal.secured_item_url(REFERER_ITEM)])
        .env("ARCGIS_PASSWORD", PW)
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stdout_of(&out).contains(REFERER_ITEM),
        "{}",
        stdout_of(&out)
    );

    // An expired token is minted again over the web tier when the password is at hand...
    expire(&s.file_store(), "default").await;
    let before = s.portal.calls().endpoint(Endpoint::GenerateToken);
    let out = s
        .cmd(&["token"])
        .env("ARCGIS_PASSWORD", PW)
        .assert()
        .success()
        .get_output()
        .clone();
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
    // ...and is a sign-in-required error (3) naming the variable otherwise.
    expire(&s.file_store(), "default").await;
    let out = s.cmd(&["token"]).assert().code(3).get_output().clone();
    assert!(one_line_error(&out).contains("ARCGIS_PASSWORD"));

    // `logout` deletes the session (a getToken token cannot be revoked).
    s.cmd(&["logout"]).assert().success();
    s.cmd(&["status"]).assert().code(3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_basic_password_is_refused_once_with_status_4() {
    let s = basic_setup().await;
    let out = s
        .cmd(&["login", "basic", "--username", USER])
        .env("ARCGIS_PASSWORD", "not-the-password")
        .assert()
        .code(4)
        .get_output()
        .clone();
    let line = one_line_error(&out);
    assert!(!line.contains("not-the-password"), "{line}");
    assert_eq!(s.portal.web_tier_refusals(), 1);
    // `login password` on a web-tier portal: status 3, naming the login to use.
    let out = s
        .cmd(&["login", "password", "--username", USER])
        .env("ARCGIS_PASSWORD", PW)
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert!(one_line_error(&out).contains("login basic"));
}

async fn pki_setup(ca: &TestCa) -> (Setup, String) {
    let s = Setup::with_portal(
        FakePortal::builder()
            .federated_server("server")
            .web_tier(WebTier::client_certificate(ca))
            .start()
            .await,
    );
    let ca_path = s.dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.ca_pem()).unwrap();
    (s, ca_path.display().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn login_pki_with_pem_files_then_token_request_and_renewal() {
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let (s, ca_path) = pki_setup(&ca).await;
    let alice = ca.client_certificate("alice").unwrap();
    let cert = s.dir.path().join("alice.pem");
    let key = s.dir.path().join("alice-key.pem");
    std::fs::write(&cert, &alice.cert_pem).unwrap();
    std::fs::write(&key, &alice.key_pem).unwrap();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());

    // Without the CA: the error names --ca-cert.
    let out = s.cmd(&["probe"]).assert().code(5).get_output().clone();
    assert!(one_line_error(&out).contains("--ca-cert"));
    let out = s
        .cmd(&["--ca-cert", &ca_path, "probe", "--json"])
        .assert()
        .success()
        .get_output()
        .clone();
    let v: serde_json::Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(v["sign_ins"], serde_json::json!(["pki"]));

    // `login password` there: status 3, naming `login pki`.
    let out = s
        .cmd(&[
            "--ca-cert",
            &ca_path,
            "login",
            "password",
            "--username",
            "alice",
        ])
        .env("ARCGIS_PASSWORD", "x")
        .assert()
        .code(3)
        .get_output()
        .clone();
    assert!(one_line_error(&out).contains("login pki"));

    quiet_success(&mut s.cmd(&[
        "--ca-cert",
        &ca_path,
        "login",
        "pki",
        "--cert",
        &cert,
        "--key",
        &key,
    ]));
    let stored = std::fs::read_to_string(s.store_path()).unwrap();
    assert!(!stored.contains("PRIVATE KEY"), "{stored}");
    assert!(stored.contains("alice.pem"), "{stored}");
    let out = s
        .cmd(&[
            "--ca-cert",
            &ca_path,
            "request",
            &s.portal.secured_item_url(REFERER_ITEM),
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        stdout_of(&out).contains(REFERER_ITEM),
        "{}",
        stdout_of(&out)
    );

    expire(&s.file_store(), "default").await;
    let before = s.portal.calls().endpoint(Endpoint::GenerateToken);
    s.cmd(&["--ca-cert", &ca_path, "token"]).assert().success();
    assert_eq!(
        s.portal.calls().endpoint(Endpoint::GenerateToken),
        before + 1
    );

    // A certificate from another CA is refused: status 4.
    let other = TestCa::new("Another CA")
        .unwrap()
        .client_certificate("alice")
        .unwrap();
    std::fs::write(s.dir.path().join("other.pem"), &other.cert_pem).unwrap();
    std::fs::write(s.dir.path().join("other-key.pem"), &other.key_pem).unwrap();
    let other_cert = s.dir.path().join("other.pem").display().to_string();
    let other_key = s.dir.path().join("other-key.pem").display().to_string();
    s.cmd(&[
        "--ca-cert",
        &ca_path,
        "--profile",
        "other",
        "login",
        "pki",
        "--cert",
        &other_cert,
        "--key",
        &other_key,
    ])
    .assert()
    .code(4);
}

#[tokio::test(flavor = "multi_thread")]
async fn pki_options_are_checked_before_anything_is_sent() {
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let (s, ca_path) = pki_setup(&ca).await;
    let p12 = s.dir.path().join("alice.p12");
    std::fs::write(&p12, b"not read without its password").unwrap();
    let p12 = p12.display().to_string();
    // A certificate and a PKCS#12 file, or a certificate without its key: usage (2).
    s.cmd(&["login", "pki", "--cert", "a.pem", "--pkcs12", &p12])
        .assert()
        .code(2);
    s.cmd(&["login", "pki", "--cert", "a.pem"]).assert().code(2);
    s.cmd(&["login", "pki"]).assert().code(2);
    // No PKCS#12 password: usage (2), naming where it is read from.
    let out = s
        .cmd(&["--ca-cert", &ca_path, "login", "pki", "--pkcs12", &p12])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(one_line_error(&out).contains("ARCGIS_PKCS12_PASSWORD"));
    assert_eq!(s.portal.calls().total(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn login_pki_with_a_pkcs12_file_then_token_and_renewal() {
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let (s, ca_path) = pki_setup(&ca).await;
    let alice = ca.client_certificate("alice").unwrap();
    std::fs::write(s.dir.path().join("alice.pem"), &alice.cert_pem).unwrap();
    std::fs::write(s.dir.path().join("alice-key.pem"), &alice.key_pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-in",
            "alice.pem",
            "-inkey",
            "alice-key.pem",
        ])
        .args(["-out", "alice.p12", "-passout", "pass:p12-pass-4410"])
        .current_dir(s.dir.path())
        .output()
        .expect("the openssl command (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p12 = s.dir.path().join("alice.p12").display().to_string();

    // A wrong password: the file cannot be read, nothing is sent.
    s.cmd(&["--ca-cert", &ca_path, "login", "pki", "--pkcs12", &p12])
        .env("ARCGIS_PKCS12_PASSWORD", "wrong")
        .assert()
        .code(2);
    assert_eq!(s.portal.calls().total(), 0);

    quiet_success(
        s.cmd(&["--ca-cert", &ca_path, "login", "pki", "--pkcs12", &p12])
            .env("ARCGIS_PKCS12_PASSWORD", "p12-pass-4410"),
    );
    let stored = std::fs::read_to_string(s.store_path()).unwrap();
    assert!(stored.contains("alice.p12"), "{stored}");
    assert!(!stored.contains("p12-pass-4410"), "{stored}");

    // Renewal opens the file again with the password from the environment.
    expire(&s.file_store(), "default").await;
    let before = s.portal.calls().endpoint(Endpoint::GenerateToken);
    s.cmd(&["--ca-cert", &ca_path, "token"])
        .env("ARCGIS_PKCS12_PASSWORD", "p12-pass-4410")
        .assert()
        .success();
    assert_eq!(
        s.portal.calls().endpoint(Endpoint::GenerateToken),
        before + 1
    );
}
