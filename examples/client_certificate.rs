//! Client-certificate (PKI) sign-in at an Enterprise portal's web tier,
//! against the testkit: a test CA made at run time, a portal and a federated
//! server on their own origins whose TLS demands a certificate from that CA
//! on every handshake (their `rest/info` included).
//!
//! What it shows: detecting the web tier without sending anything, a token
//! minted without a password over the certificate, a request to the portal
//! and to the federated server (proven federated by the portal's own server
//! list before the certificate goes there), and sign-out.
//!
//! Run it:
//!
//! ```text
//! cargo run --example client_certificate
//! ```
//!
//! Against a real portal, read the certificate and key with
//! `ClientCertificate::from_pem` (or a `.p12` with `from_pkcs12_der`, the
//! `pkcs12` feature under rustls), and trust a private CA with
//! `HttpClient::with_root_certificates`.

use std::process::ExitCode;
use std::sync::Arc;

use arcgis_auth_core::{ClientCertificate, Expiration, HttpClient, SignInMethod};
use arcgis_auth_examples::{BoxError, exit_status};
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::WebTierSignIn;
use arcgis_auth_storage::MemoryStore;
use arcgis_auth_testkit::{FakePortal, TestCa, WebTier};

const REFERER: &str = "https://app.example.com";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let ca = TestCa::new("Example Enterprise CA")?;
    let portal = FakePortal::builder()
        .federated_server("server")
        .web_tier(WebTier::client_certificate(&ca))
        .start()
        .await;
    let ca_bundle = ca.ca_pem();

    // 1. Which sign-in? The handshake demands a certificate; none is sent.
    let security = HttpClient::with_root_certificates(ca_bundle.as_bytes())?
        .probe_portal(&portal.portal())
        .await?;
    println!("the portal's web tier asks for: {:?}", security.sign_ins());
    if security.sign_ins() != [SignInMethod::ClientCertificate] {
        return Err("expected a client-certificate web tier".into());
    }

    // 2. The certificate goes into the client, for the portal's origin only.
    let alice = ca.client_certificate("alice")?;
    let certificate = ClientCertificate::from_pem(
        alice.cert_pem.as_bytes(),
        &alice.key_pem.clone().into(),
        "alice.pem",
    )?;
    let http = HttpClient::with_root_certificates(ca_bundle.as_bytes())?
        .with_web_tier(certificate, portal.portal().origin().clone())?;

    // 3. A token minted without a password (renewed the same way).
    let signed_in = WebTierSignIn::new(portal.portal(), http.clone(), REFERER)?
        .with_expiration(Expiration::minutes(60))
        .sign_in()
        .await?;
    println!(
        "signed in as {}",
        signed_in.record().username.as_deref().unwrap_or("?")
    );
    let manager = signed_in
        .into_manager(Arc::new(MemoryStore::default()), "alice")
        .await?;

    // 4. Requests carry the certificate and the token (X-Esri-Authorization).
    let client = ArcGisAuth::new(
        manager.clone(),
        TokenRouting::new(portal.portal()),
        http.clone(),
    )
    .into_client()?;
    let item = client
        .get(format!("{}?f=json", portal.secured_item_url("abc123")))
        .header("Referer", REFERER)
        .send()
        .await?;
    println!("secured item on the portal: HTTP {}", item.status());
    let server = portal
        .server("server")
        .ok_or("the testkit portal has no server named `server`")?;
    let query = client
        .get(format!(
            "{}?f=json",
            server.service_url("Hosted/Parcels/FeatureServer/0/query")
        ))
        .header("Referer", REFERER)
        .send()
        .await?;
    println!("query on the federated server: HTTP {}", query.status());
    println!("the certificate goes to: {:?}", http.web_tier_origins());
    if !item.status().is_success() || !query.status().is_success() {
        return Err("a secured request was refused".into());
    }

    // 5. Sign-out deletes the session (a getToken token cannot be revoked).
    let report = Account::new(manager, http).sign_out().await;
    println!("signed out: session deleted = {:?}", report.deleted);
    Ok(())
}
