//! Web-tier sign-in end to end against the testkit's web tier: HTTP Basic
//! against a user table, and real rustls requiring a client certificate from
//! a CA made at test time. Detection, a token minted without a password,
//! requests to the portal and a federated server carrying both credentials,
//! renewal, refusals, and credentials never going anywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod web_tier_support;

use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{
    BasicCredentials, ClientCertificate, ErrorKind, Expiration, ExposeSecret, HttpClient,
    ManualClock, Portal, SignInMethod, Timestamp, TokenBinding, WebTierScheme,
};
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::{PasswordSignIn, WebTierSignIn};
use arcgis_auth_flows::{FlowErrorKind, Renewal, TokenManager, TokenSource};
use arcgis_auth_storage::{MemoryStore, SessionKind, SessionStore, WebTierCredentialId};
use arcgis_auth_testkit::{Endpoint, FakePortal, TestCa, TestCertificate, WebTier};
use web_tier_support::{REFERER, assert_ok, client, get_item, last_query_at, query};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const USER: &str = "CORP\\jdoe";
const PW: &str = "directory-pw-7731";
const KEY: &str = "web:session";
const HOUR: Duration = Duration::from_secs(3600);

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000))
}

async fn basic_portal(clock: &ManualClock) -> FakePortal {
    FakePortal::builder()
        .clock(clock.clone())
        .federated_server("server")
        .web_tier(
            WebTier::basic("GIS Directory")
                .user(USER, PW)
                .open_server_info(),
        )
        .start()
        .await
}

fn basic_http(portal: &FakePortal, password: &str) -> HttpClient {
    let credentials = BasicCredentials::new(USER, password.to_owned().into()).unwrap();
    HttpClient::new()
        .unwrap()
        .with_web_tier(credentials, portal.portal().origin().clone())
        .unwrap()
}

fn sign_in_for(portal: &FakePortal, http: HttpClient, clock: &ManualClock) -> WebTierSignIn {
    WebTierSignIn::new(portal.portal(), http, REFERER)
        .unwrap()
        .with_expiration(Expiration::minutes(60))
        .with_clock(Arc::new(clock.clone()))
}

async fn manager_for(signer: &WebTierSignIn, store: Arc<dyn SessionStore>) -> TokenManager {
    signer
        .sign_in()
        .await
        .expect("signed in through the web tier")
        .into_manager(store, KEY)
        .await
        .unwrap()
}

/// The portal's generateToken requests, as received.
async fn generate_token_requests(portal: &FakePortal) -> Vec<wiremock::Request> {
    portal
        .received_requests()
        .await
        .into_iter()
        .filter(|r| r.url.path().ends_with("/generateToken"))
        .collect()
}

#[tokio::test]
async fn basic_mints_a_token_without_a_password_and_renews_the_same_way() {
    let clock = clock();
    let portal = basic_portal(&clock).await;
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
    let signer = sign_in_for(&portal, basic_http(&portal, PW), &clock);
    let signed_in = signer.sign_in().await.unwrap();
    assert_eq!(signed_in.token().username(), Some(USER));
    let record = signed_in.record().clone();
    assert_eq!(record.kind, SessionKind::WebTier);
    assert_eq!(
        record.web_tier,
        Some(WebTierCredentialId::Basic {
            username: USER.into()
        })
    );
    assert_eq!(signer.renewal(&record), Renewal::WebTier);

    // request=getToken, referer, expiration, f=json; no username or password
    // in the form, the directory password only in the web tier's header.
    let sent = generate_token_requests(&portal).await;
    assert_eq!(sent.len(), 1);
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&sent[0].body)
        .into_owned()
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("request"), Some("getToken"));
    assert_eq!(get("referer"), Some(REFERER));
    assert_eq!(get("expiration"), Some("60"));
    assert_eq!(get("f"), Some("json"));
    assert_eq!(get("username"), None);
    assert_eq!(get("password"), None);
    assert!(
        sent[0].headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );

    let manager = signed_in.into_manager(store.clone(), KEY).await.unwrap();
    let first = manager.token().await.unwrap();
    // Past the token's end: the manager mints again over the web tier.
    clock.advance(2 * HOUR);
    let renewed = manager.token().await.unwrap();
    assert_ne!(
        first.secret().expose_secret(),
        renewed.secret().expose_secret()
    );
    assert_eq!(portal.calls().endpoint(Endpoint::GenerateToken), 2);
    let sent = generate_token_requests(&portal).await;
    assert!(
        sent.iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("password"))
    );

    // The store holds who signed in, never the directory password.
    let stored = store.load(KEY).await.unwrap().expect("saved");
    let json = stored.record.to_json().unwrap();
    assert!(json.contains("\"web_tier\""), "{json}");
    assert!(!json.contains(PW), "{json}");
    assert!(!format!("{stored:?}").contains(PW));
    assert!(!format!("{signer:?}").contains(PW));
    assert!(!format!("{:?}", signer.http()).contains(PW));

    // Sign-out deletes the session; nothing is left to serve or renew.
    let report = Account::new(manager.clone(), signer.http().clone())
        .sign_out()
        .await;
    assert!(matches!(report.deleted, Ok(true)), "{report:?}");
    assert!(store.load(KEY).await.unwrap().is_none());
    assert!(manager.token().await.is_err());
    assert_eq!(portal.calls().endpoint(Endpoint::GenerateToken), 2);
}

#[tokio::test]
async fn both_credentials_go_to_the_portal_and_its_federated_server_and_nowhere_else() {
    let clock = clock();
    let portal = basic_portal(&clock).await;
    let http = basic_http(&portal, PW);
    let signer = sign_in_for(&portal, http.clone(), &clock);
    let manager = manager_for(&signer, Arc::new(MemoryStore::default())).await;
    let client = client(manager.clone(), &portal, &http);

    assert_ok(get_item(&client, &portal).await).await;
    let server = portal.server("server").unwrap();
    assert_ok(query(&client, server).await).await;
    let query = &last_query_at(server).await;
    assert!(query.headers.contains_key("x-esri-authorization"));
    assert!(
        query.headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    // The server's rest/info was read without the directory password.
    let at_server = server.mock_server().received_requests().await.unwrap();
    let info = at_server
        .iter()
        .find(|r| r.url.path().ends_with("/rest/info"))
        .unwrap();
    assert!(!info.headers.contains_key("authorization"));

    // Attack URLs: neither the token nor the Basic credential leaves.
    let evil = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&evil)
        .await;
    let portal_authority = portal.url_root().trim_start_matches("http://").to_owned();
    let evil_authority = evil.uri().trim_start_matches("http://").to_owned();
    for url in [
        format!("{}/portal/sharing/rest/portals/self", evil.uri()),
        // Reads like the portal; everything before `@` is a user name.
        format!("http://{portal_authority}@{evil_authority}/sharing/rest/portals/self"),
        format!("{}/server/rest/services/x/FeatureServer/0", evil.uri()),
    ] {
        let _ = client.get(&url).send().await;
    }
    let got = evil.received_requests().await.unwrap();
    assert!(got.len() >= 3); // the server URL also has its rest/info read
    let ours = http.web_tier_authorization().unwrap().clone();
    for r in got {
        assert!(!r.headers.contains_key("x-esri-authorization"), "{}", r.url);
        // reqwest turns a URL's own user:password into Basic; ours never goes.
        assert_ne!(r.headers.get("authorization"), Some(&ours), "{}", r.url);
    }
}

#[tokio::test]
async fn look_alike_hosts_and_plain_http_get_no_web_tier_credential() {
    let clock = clock();
    let portal = basic_portal(&clock).await;
    let http = basic_http(&portal, PW);
    let signer = sign_in_for(&portal, http.clone(), &clock);
    let manager = manager_for(&signer, Arc::new(MemoryStore::default())).await;
    let evil = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&evil)
        .await;
    let port = evil.address().port();
    // Names that look like the portal's, all resolving to `evil`.
    let names = [
        "127.0.0.1.evil.example",
        "evil-127.0.0.1.example",
        "localhost.evil.example",
    ];
    let mut builder = reqwest::Client::builder();
    for name in names {
        builder = builder.resolve(name, *evil.address());
    }
    let client = ArcGisAuth::new(manager, TokenRouting::new(portal.portal()), http.clone())
        .into_client_with(builder)
        .unwrap();
    for name in names {
        let _ = client
            .get(format!(
                "http://{name}:{port}/sharing/rest/portals/self?f=json"
            ))
            .send()
            .await;
    }
    let got = evil.received_requests().await.unwrap();
    assert_eq!(got.len(), names.len());
    for r in got {
        assert!(!r.headers.contains_key("authorization"), "{}", r.url);
        assert!(!r.headers.contains_key("x-esri-authorization"), "{}", r.url);
    }

    // An https portal's Basic credential never goes to its http:// twin or a
    // look-alike, and an http:// origin cannot be made a web-tier origin.
    let origin = Portal::parse("https://gis.example.com/portal").unwrap();
    let http = HttpClient::new()
        .unwrap()
        .with_web_tier(
            BasicCredentials::new(USER, PW.to_owned().into()).unwrap(),
            origin.origin().clone(),
        )
        .unwrap();
    for url in [
        "http://gis.example.com/portal/sharing/rest/info",
        "https://gis.example.com.evil.example/portal/sharing/rest/info",
        "https://gis.example.com:8443/portal/sharing/rest/info",
        "https://jdoe@gis.example.com/portal/sharing/rest/info",
    ] {
        assert!(
            !http.web_tier_covers(&url::Url::parse(url).unwrap()),
            "{url}"
        );
    }
    let err = HttpClient::new()
        .unwrap()
        .with_web_tier(
            BasicCredentials::new(USER, PW.to_owned().into()).unwrap(),
            arcgis_auth_core::Origin::parse("http://gis.example.com").unwrap(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InsecureTransport);
}

#[tokio::test]
async fn a_wrong_basic_password_is_sent_once_and_never_again() {
    let clock = clock();
    let portal = basic_portal(&clock).await;
    let signer = sign_in_for(&portal, basic_http(&portal, "wrong-password"), &clock);
    let err = signer.sign_in().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::WebTierCredentialRejected)
    );
    assert!(!err.to_string().contains("wrong-password"), "{err}");
    assert_eq!(portal.web_tier_refusals(), 1);
    assert_eq!(portal.calls().total(), 0);
}

#[tokio::test]
async fn detection_names_the_sign_in_that_will_work() {
    let clock = clock();
    let portal = basic_portal(&clock).await;
    let plain = HttpClient::new().unwrap();
    let security = plain.probe_portal(&portal.portal()).await.unwrap();
    assert_eq!(
        security.web_tier(),
        [WebTierScheme::Basic {
            realm: Some("GIS Directory".into())
        }]
    );
    assert_eq!(security.sign_ins(), vec![SignInMethod::Basic]);
    // A password sign-in without the web-tier credential says which to use.
    let password = PasswordSignIn::new(
        portal.portal(),
        plain.clone(),
        TokenBinding::Referer(REFERER.into()),
    );
    let err = password
        .sign_in(USER, PW.to_owned().into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(
        err.arcgis_kind(),
        Some(ErrorKind::WebTierCredentialRequired)
    );
    assert!(err.to_string().contains("login basic"), "{err}");
    // A probe sends no credential even from a client that holds one.
    let before = portal.web_tier_refusals();
    let security = basic_http(&portal, PW)
        .probe_portal(&portal.portal())
        .await
        .unwrap();
    assert!(!security.is_token_based());
    assert_eq!(portal.web_tier_refusals(), before + 1);

    // A PKI portal: the handshake demands a certificate.
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let pki = FakePortal::builder()
        .clock(clock.clone())
        .web_tier(WebTier::client_certificate(&ca))
        .start()
        .await;
    let trusting = HttpClient::with_root_certificates(ca.ca_pem().as_bytes()).unwrap();
    let security = trusting.probe_portal(&pki.portal()).await.unwrap();
    assert_eq!(security.sign_ins(), vec![SignInMethod::ClientCertificate]);
    let password = PasswordSignIn::new(
        pki.portal(),
        trusting,
        TokenBinding::Referer(REFERER.into()),
    );
    let err = password
        .sign_in(USER, PW.to_owned().into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(
        err.arcgis_kind(),
        Some(ErrorKind::WebTierCredentialRequired)
    );
    assert!(err.to_string().contains("login pki"), "{err}");
    // Without the CA's bundle, the error says to trust it.
    let err = HttpClient::new()
        .unwrap()
        .probe_portal(&pki.portal())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(err.to_string().contains("with_root_certificates"), "{err}");
}

fn pki_http(ca: &TestCa, cert: &TestCertificate, portal: &FakePortal) -> HttpClient {
    let identity = ClientCertificate::from_pem(
        cert.cert_pem.as_bytes(),
        &cert.key_pem.clone().into(),
        "/pki/alice.pem",
    )
    .unwrap();
    HttpClient::with_root_certificates(ca.ca_pem().as_bytes())
        .unwrap()
        .with_web_tier(identity, portal.portal().origin().clone())
        .unwrap()
}

#[tokio::test]
async fn a_client_certificate_signs_in_requests_and_renews() {
    let clock = clock();
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let portal = FakePortal::builder()
        .clock(clock.clone())
        .federated_server("server")
        .web_tier(WebTier::client_certificate(&ca).open_server_info())
        .start()
        .await;
    let alice = ca.client_certificate("alice").unwrap();
    let http = pki_http(&ca, &alice, &portal);
    let signer = sign_in_for(&portal, http.clone(), &clock);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::default());
    let signed_in = signer.sign_in().await.unwrap();
    assert_eq!(signed_in.record().username.as_deref(), Some("alice"));
    assert_eq!(
        signed_in.record().web_tier,
        Some(WebTierCredentialId::ClientCertificate {
            label: "/pki/alice.pem".into()
        })
    );
    let manager = signed_in.into_manager(store.clone(), KEY).await.unwrap();
    let client = client(manager.clone(), &portal, &http);
    assert_ok(get_item(&client, &portal).await).await;
    let server = portal.server("server").unwrap();
    assert_ok(query(&client, server).await).await;

    clock.advance(2 * HOUR);
    manager.token().await.unwrap();
    assert_eq!(portal.calls().endpoint(Endpoint::GenerateToken), 3); // sign-in, server token, renewal
    let json = store
        .load(KEY)
        .await
        .unwrap()
        .unwrap()
        .record
        .to_json()
        .unwrap();
    assert!(!json.contains("PRIVATE KEY"), "{json}");
    assert!(!format!("{signer:?}").contains("PRIVATE KEY"));

    let report = Account::new(manager.clone(), http.clone()).sign_out().await;
    assert!(matches!(report.deleted, Ok(true)), "{report:?}");
    assert!(store.load(KEY).await.unwrap().is_none());
    assert!(manager.token().await.is_err());
}

#[tokio::test]
async fn refused_certificates_are_told_apart_from_missing_ones() {
    let clock = clock();
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let portal = FakePortal::builder()
        .clock(clock.clone())
        .web_tier(WebTier::client_certificate(&ca))
        .start()
        .await;
    let other = TestCa::new("Another CA").unwrap();
    for cert in [
        ca.expired_client_certificate("alice").unwrap(),
        other.client_certificate("alice").unwrap(),
    ] {
        let signer = sign_in_for(&portal, pki_http(&ca, &cert, &portal), &clock);
        let err = signer.sign_in().await.unwrap_err();
        assert_eq!(
            err.kind(),
            FlowErrorKind::ArcGis(ErrorKind::WebTierCredentialRejected),
            "{err}"
        );
    }
    assert_eq!(portal.calls().total(), 0);
}

#[cfg(any(feature = "pkcs12", feature = "native-tls"))]
/// `openssl pkcs12 -export` packs alice's rcgen-made certificate and key
/// with `extra` options into a `.p12` under `dir`, and returns its bytes.
fn pkcs12_file(
    dir: &std::path::Path,
    alice: &TestCertificate,
    name: &str,
    extra: &[&str],
) -> Vec<u8> {
    std::fs::write(dir.join("alice.pem"), &alice.cert_pem).unwrap();
    std::fs::write(dir.join("alice-key.pem"), &alice.key_pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-in",
            "alice.pem",
            "-inkey",
            "alice-key.pem",
        ])
        .args(["-out", name, "-passout", "pass:p12-pass-8812"])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("the openssl command (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join(name)).unwrap()
}

/// PKCS#12 files sign in with their password: read in Rust under rustls
/// (the `pkcs12` feature), by the platform's library with `native-tls`
/// alone. Both the current export (PBES2 with AES, an HMAC-SHA-256 MAC) and
/// the legacy one of Windows and OpenSSL 1.x (3DES, SHA-1) are read.
#[cfg(any(feature = "pkcs12", feature = "native-tls"))]
#[tokio::test]
async fn a_pkcs12_file_signs_in_with_its_password() {
    use arcgis_auth_core::SecretString;

    let clock = clock();
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let portal = FakePortal::builder()
        .clock(clock.clone())
        .web_tier(WebTier::client_certificate(&ca))
        .start()
        .await;
    let alice = ca.client_certificate("alice").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let legacy = [
        "-certpbe",
        "PBE-SHA1-3DES",
        "-keypbe",
        "PBE-SHA1-3DES",
        "-macalg",
        "sha1",
    ];
    for (name, extra) in [("alice.p12", &[][..]), ("alice-legacy.p12", &legacy[..])] {
        let der = pkcs12_file(dir.path(), &alice, name, extra);
        let wrong = ClientCertificate::from_pkcs12_der(&der, &SecretString::from("nope"), name)
            .unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::InvalidInput, "{name}");
        assert!(!wrong.to_string().contains("p12-pass-8812"));
        let identity =
            ClientCertificate::from_pkcs12_der(&der, &SecretString::from("p12-pass-8812"), name)
                .unwrap();
        assert!(!format!("{identity:?}").contains("p12-pass-8812"));
        let http = HttpClient::with_root_certificates(ca.ca_pem().as_bytes())
            .unwrap()
            .with_web_tier(identity, portal.portal().origin().clone())
            .unwrap();
        let signed_in = sign_in_for(&portal, http, &clock).sign_in().await.unwrap();
        assert_eq!(
            signed_in.record().username.as_deref(),
            Some("alice"),
            "{name}"
        );
        let json = signed_in.record().to_json().unwrap();
        assert!(!json.contains("p12-pass-8812"), "{json}");
    }
}

/// Every truncation of a real PKCS#12 file is a typed error; a byte
/// flipped anywhere is never a panic (most flips fail the MAC; one in a
/// field the MAC does not cover, such as the version, may still read).
#[cfg(all(
    feature = "pkcs12",
    any(feature = "rustls", feature = "rustls-no-provider")
))]
#[test]
fn a_damaged_pkcs12_file_is_invalid_input() {
    use arcgis_auth_core::SecretString;

    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let alice = ca.client_certificate("alice").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let der = pkcs12_file(dir.path(), &alice, "alice.p12", &[]);
    let password = SecretString::from("p12-pass-8812");
    for n in 0..der.len() {
        let err =
            ClientCertificate::from_pkcs12_der(&der[..n], &password, "alice.p12").unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "truncated to {n} bytes"
        );
    }
    let (mut refused, mut tried) = (0, 0);
    for i in (0..der.len()).step_by(5) {
        tried += 1;
        let mut flipped = der.clone();
        flipped[i] ^= 0x5a;
        if let Err(err) = ClientCertificate::from_pkcs12_der(&flipped, &password, "alice.p12") {
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "byte {i} flipped");
            refused += 1;
        }
    }
    assert!(
        refused > tried * 9 / 10,
        "{refused} of {tried} flips refused"
    );
}

/// A server on its own origin behind a certificate tier that also guards
/// `rest/info`: it is proven federated by the portal's own server list
/// (asked with the portal token, on the portal's origin), and only then gets
/// the certificate. A server the portal does not list never gets it.
#[tokio::test]
async fn a_server_behind_a_closed_certificate_tier_is_vouched_for_by_the_portal() {
    use arcgis_auth_testkit::Server;

    let clock = clock();
    let ca = TestCa::new("Test Enterprise CA").unwrap();
    let portal = FakePortal::builder()
        .clock(clock.clone())
        .federated_server("server")
        .server(Server::standalone("elsewhere"))
        .web_tier(WebTier::client_certificate(&ca))
        .start()
        .await;
    let alice = ca.client_certificate("alice").unwrap();
    let http = pki_http(&ca, &alice, &portal);
    let signer = sign_in_for(&portal, http.clone(), &clock);
    let manager = manager_for(&signer, Arc::new(MemoryStore::default())).await;
    let client = client(manager, &portal, &http);

    let server = portal.server("server").unwrap();
    assert!(!http.web_tier_covers(server.server_root().as_url()));
    assert_ok(query(&client, server).await).await;
    assert_eq!(portal.calls().endpoint(Endpoint::PortalServers), 1);
    assert_eq!(portal.calls().server("server", Endpoint::ServerInfo), 1);
    assert!(http.web_tier_covers(server.server_root().as_url()));

    // Not on the portal's list: no certificate in the handshake, so the
    // server's tier refuses it before any request reaches the server.
    let other = portal.server("elsewhere").unwrap();
    let refused = query(&client, other).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(portal.calls().server_total("elsewhere"), 0);
    assert!(!http.web_tier_covers(other.server_root().as_url()));
    assert_eq!(
        http.web_tier_origins().len(),
        2,
        "{:?}",
        http.web_tier_origins()
    );
}
