//! Kerberos (`Negotiate`) web-tier sign-in end to end against a real MIT
//! KDC on loopback (the testkit's `KerberosRealm`) and the testkit's
//! Negotiate web tier, whose GSSAPI acceptor verifies every token against a
//! keytab: detection, sign-in, a token minted without a password, requests
//! to the portal and a federated server, renewal, sign-out, and the
//! refusals (a ticket for another service, no ticket at all), with no
//! Negotiate token ever sent to an untrusted host.
//!
//! Kerberos reads `KRB5_CONFIG`, `KRB5CCNAME` and `KRB5_KTNAME` from the
//! process environment, so each scenario runs in a worker process (this
//! binary again, the ignored `kerberos_worker` test) started with the
//! realm's environment. Without the Kerberos tools the tests are skipped
//! loudly, except under `CI=true`, where they fail.
#![cfg(feature = "kerberos")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "capture/mod.rs"]
mod capture;
mod web_tier_support;

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{
    ErrorKind, Expiration, ExposeSecret, HttpClient, KerberosCredential, ManualClock, SignInMethod,
    Timestamp, WebTierScheme,
};
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::signin::WebTierSignIn;
use arcgis_auth_flows::{FlowErrorKind, Renewal, TokenSource};
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionStore, WebTierCredentialId};
use arcgis_auth_testkit::{Endpoint, FakePortal, KerberosRealm, TestWorker, WebTier};
use web_tier_support::{REFERER, assert_ok, client, get_item, last_query_at, query};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const SCENARIO: &str = "ARCGIS_AUTH_KRB_SCENARIO";
const WORKER: &str = "kerberos_worker";
const DONE: &str = "krb-worker ok";
const KEY: &str = "krb:session";
const HOUR: Duration = Duration::from_secs(3600);
const PRINCIPAL: &str = "jdoe@ARCGIS.TEST";

/// Runs `scenario` in a worker with `env`; it must end with its `ok` line.
fn run(scenario: &str, env: Vec<(String, std::ffi::OsString)>) {
    let mut env = env;
    env.push((SCENARIO.into(), scenario.into()));
    let worker = TestWorker::spawn_ignored(WORKER, env).unwrap();
    let (status, line) = worker.finish(DONE).unwrap();
    assert!(status.success(), "the {scenario} worker failed: {status}");
    assert_eq!(line, Some(format!("{DONE} {scenario}")));
}

#[test]
fn kerberos_signs_in_mints_without_a_password_requests_renews_and_signs_out() {
    let Some(realm) = KerberosRealm::for_test("kerberos_signs_in", "127.0.0.1") else {
        return;
    };
    run("full", realm.env());
}

#[test]
fn a_ticket_for_another_service_is_rejected() {
    let Some(realm) = KerberosRealm::for_test("a_ticket_for_another_service", "127.0.0.1") else {
        return;
    };
    run("wrong_service", realm.env_with_wrong_service());
}

#[test]
fn no_negotiate_token_or_portal_token_is_logged() {
    let Some(realm) = KerberosRealm::for_test("no_negotiate_token_is_logged", "127.0.0.1") else {
        return;
    };
    run("logs", realm.env());
}

#[test]
fn no_ticket_is_an_error_naming_kinit() {
    let Some(realm) = KerberosRealm::for_test("no_ticket", "127.0.0.1") else {
        return;
    };
    run("no_ticket", realm.env_without_ticket());
}

/// The worker's part: runs only when a test above started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of the Kerberos tests, started by them"]
async fn kerberos_worker() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    match scenario.as_str() {
        "full" => full().await,
        "wrong_service" => wrong_service().await,
        "no_ticket" => no_ticket().await,
        "logs" => logs().await,
        other => panic!("unknown scenario {other}"),
    }
    println!("{DONE} {scenario}");
}

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000))
}

async fn portal(clock: &ManualClock) -> FakePortal {
    FakePortal::builder()
        .clock(clock.clone())
        .federated_server("server")
        .web_tier(WebTier::negotiate().open_server_info())
        .start()
        .await
}

async fn kerberos_http(portal: &FakePortal) -> HttpClient {
    let credential = KerberosCredential::from_default_cache().await.unwrap();
    assert_eq!(credential.principal(), PRINCIPAL);
    HttpClient::new()
        .unwrap()
        .with_web_tier(credential, portal.portal().origin().clone())
        .unwrap()
}

fn signer(portal: &FakePortal, http: HttpClient, clock: &ManualClock) -> WebTierSignIn {
    WebTierSignIn::new(portal.portal(), http, REFERER)
        .unwrap()
        .with_expiration(Expiration::minutes(60))
        .with_clock(Arc::new(clock.clone()))
}

fn negotiate(r: &wiremock::Request) -> Option<String> {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("Negotiate "))
        .map(str::to_owned)
}

async fn full() {
    let clock = clock();
    let portal = portal(&clock).await;

    // Detection: no credential sent, and the answer names Kerberos.
    let security = HttpClient::new()
        .unwrap()
        .probe_portal(&portal.portal())
        .await
        .unwrap();
    assert_eq!(security.web_tier(), [WebTierScheme::Negotiate]);
    assert_eq!(security.sign_ins(), vec![SignInMethod::Kerberos]);
    assert!(
        security.advice().contains("login kerberos"),
        "{}",
        security.advice()
    );

    let http = kerberos_http(&portal).await;
    let signer = signer(&portal, http.clone(), &clock);
    let signed_in = signer.sign_in().await.unwrap();
    assert_eq!(signed_in.token().username(), Some(PRINCIPAL));
    let record = signed_in.record().clone();
    assert_eq!(record.kind, SessionKind::WebTier);
    assert_eq!(
        record.web_tier,
        Some(WebTierCredentialId::Kerberos {
            principal: PRINCIPAL.into()
        })
    );
    assert_eq!(signer.renewal(&record), Renewal::WebTier);

    // request=getToken without a password, a Negotiate token in the header.
    let minted: Vec<_> = portal
        .received_requests()
        .await
        .into_iter()
        .filter(|r| r.url.path().ends_with("/generateToken"))
        .collect();
    assert_eq!(minted.len(), 1);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&minted[0].body)
        .into_owned()
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("request"), Some("getToken"));
    assert_eq!(get("username"), None);
    assert_eq!(get("password"), None);
    assert!(negotiate(&minted[0]).is_some());

    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
    let manager = signed_in.into_manager(store.clone(), KEY).await.unwrap();
    let client = client(manager.clone(), &portal, &http);
    assert_ok(get_item(&client, &portal).await).await;
    let server = portal.server("server").unwrap();
    assert_ok(query(&client, server).await).await;
    let query = &last_query_at(server).await;
    assert!(query.headers.contains_key("x-esri-authorization"));
    assert!(negotiate(query).is_some());
    // Every token is fresh: Kerberos acceptors refuse one seen before.
    let mut tokens: Vec<String> = portal
        .received_requests()
        .await
        .iter()
        .filter_map(negotiate)
        .collect();
    let all = tokens.len();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), all);

    // Attack URLs: neither the token nor a Negotiate token leaves.
    let evil = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&evil)
        .await;
    let portal_authority = portal.url_root().trim_start_matches("http://").to_owned();
    let evil_authority = evil.uri().trim_start_matches("http://").to_owned();
    for url in [
        format!("{}/portal/sharing/rest/portals/self", evil.uri()),
        format!("http://{portal_authority}@{evil_authority}/sharing/rest/portals/self"),
        format!("{}/server/rest/services/x/FeatureServer/0", evil.uri()),
    ] {
        let _ = client.get(&url).send().await;
    }
    let got = evil.received_requests().await.unwrap();
    assert!(got.len() >= 3);
    for r in &got {
        assert!(!r.headers.contains_key("x-esri-authorization"), "{}", r.url);
        assert!(negotiate(r).is_none(), "{}", r.url);
    }
    let evil_url = url::Url::parse(&format!("{}/sharing/rest/info", evil.uri())).unwrap();
    assert!(
        http.web_tier_authorization_for(&evil_url)
            .await
            .unwrap()
            .is_none()
    );

    // Renewal mints again over Kerberos, with no password anywhere.
    let first = manager.token().await.unwrap();
    let before = portal.calls().endpoint(Endpoint::GenerateToken);
    clock.advance(2 * HOUR);
    let renewed = manager.token().await.unwrap();
    assert_ne!(
        first.secret().expose_secret(),
        renewed.secret().expose_secret()
    );
    assert_eq!(portal.calls().endpoint(Endpoint::GenerateToken), before + 1);
    let json = store
        .load(KEY)
        .await
        .unwrap()
        .unwrap()
        .record
        .to_json()
        .unwrap();
    assert!(json.contains(PRINCIPAL), "{json}");
    assert!(!json.contains("Negotiate"), "{json}");

    // Sign-out deletes the session; the manager then has none to serve.
    let report = Account::new(manager.clone(), http.clone()).sign_out().await;
    assert!(matches!(report.deleted, Ok(true)));
    assert!(store.load(KEY).await.unwrap().is_none());
    assert!(manager.token().await.is_err());
}

async fn wrong_service() {
    let clock = clock();
    let portal = portal(&clock).await;
    let http = kerberos_http(&portal).await;
    let err = signer(&portal, http, &clock).sign_in().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::WebTierCredentialRejected),
        "{err}"
    );
    assert!(err.to_string().contains("Kerberos"), "{err}");
    assert_eq!(portal.web_tier_refusals(), 1);
    assert_eq!(portal.calls().total(), 0);
}

async fn no_ticket() {
    let err = KerberosCredential::from_default_cache().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebTierCredentialRequired);
    assert!(err.to_string().contains("kinit"), "{err}");
}

async fn logs() {
    let capture = capture::Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let clock = clock();
    let portal = portal(&clock).await;
    let http = kerberos_http(&portal).await;
    let signer = signer(&portal, http.clone(), &clock);
    let signed_in = signer.sign_in().await.unwrap();
    let mut texts = vec![
        format!("{signed_in:?}"),
        format!("{signer:?}"),
        format!("{http:?}"),
    ];
    let mut secrets = vec![signed_in.token().access_token().expose_secret().to_owned()];
    let manager = signed_in
        .into_manager(Arc::new(MemoryStore::default()), KEY)
        .await
        .unwrap();
    let client = client(manager, &portal, &http);
    assert_ok(get_item(&client, &portal).await).await;
    let logs = capture.text();
    assert!(logs.contains("signed in through the web tier"), "{logs}");
    texts.push(logs);
    let sent: Vec<String> = portal
        .received_requests()
        .await
        .iter()
        .filter_map(negotiate)
        .map(|h| h.trim_start_matches("Negotiate ").to_owned())
        .collect();
    assert!(sent.len() >= 2, "{sent:?}");
    secrets.extend(sent);
    for text in &texts {
        for secret in &secrets {
            // The last 40 characters (the encrypted part) find any copy of a token.
            let piece = &secret[secret.len().saturating_sub(40)..];
            assert!(!text.contains(piece), "a secret in: {text}");
        }
    }
}
