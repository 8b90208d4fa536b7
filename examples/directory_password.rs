//! HTTP Basic sign-in at an Enterprise portal's web tier (LDAP or Active
//! Directory users), against the testkit: a portal whose web tier answers
//! 401 `WWW-Authenticate: Basic` to every request without a directory user.
//!
//! What it shows: detecting the web tier without sending anything, a token
//! minted without an ArcGIS password (the directory password goes only to
//! the portal's origin, as `Authorization: Basic`; the token travels in
//! `X-Esri-Authorization`), a request, a wrong password refused once and
//! never retried, and sign-out.
//!
//! Run it:
//!
//! ```text
//! cargo run --example directory_password
//! ```
//!
//! Against a real portal, read the password from a prompt or a secret
//! store, never from the command line.

use std::process::ExitCode;
use std::sync::Arc;

use arcgis_auth_core::{BasicCredentials, ErrorKind, Expiration, HttpClient, SignInMethod};
use arcgis_auth_examples::{BoxError, exit_status};
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::WebTierSignIn;
use arcgis_auth_storage::MemoryStore;
use arcgis_auth_testkit::{FakePortal, WebTier};

const REFERER: &str = "https://app.example.com";
const USER: &str = "CORP\\jdoe";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let portal = FakePortal::builder()
        .web_tier(WebTier::basic("GIS Directory").user(USER, "directory-pw"))
        .start()
        .await;

    // 1. Which sign-in? (no credential is sent)
    let security = HttpClient::new()?.probe_portal(&portal.portal()).await?;
    println!("the portal's web tier asks for: {:?}", security.sign_ins());
    if security.sign_ins() != [SignInMethod::Basic] {
        return Err("expected an HTTP Basic web tier".into());
    }

    // 2. A wrong password is refused once; it is never sent again.
    let wrong = BasicCredentials::new(USER, "not-the-password".to_owned().into())?;
    let http = HttpClient::new()?.with_web_tier(wrong, portal.portal().origin().clone())?;
    match WebTierSignIn::new(portal.portal(), http, REFERER)?
        .sign_in()
        .await
    {
        Err(err) if err.arcgis_kind() == Some(ErrorKind::WebTierCredentialRejected) => {
            println!("wrong password: {err}");
        }
        other => return Err(format!("a wrong password was not refused: {other:?}").into()),
    }

    // 3. The right one: a token minted without an ArcGIS password.
    let directory = BasicCredentials::new(USER, "directory-pw".to_owned().into())?;
    let http = HttpClient::new()?.with_web_tier(directory, portal.portal().origin().clone())?;
    let signed_in = WebTierSignIn::new(portal.portal(), http.clone(), REFERER)?
        .with_expiration(Expiration::minutes(60))
        .sign_in()
        .await?;
    println!(
        "signed in as {}",
        signed_in.record().username.as_deref().unwrap_or("?")
    );
    let manager = signed_in
        .into_manager(Arc::new(MemoryStore::default()), "jdoe")
        .await?;

    // 4. Requests carry both: Basic for the web tier, the token beside it.
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
    println!("secured item: HTTP {}", item.status());
    if !item.status().is_success() {
        return Err(format!("the secured item answered {}", item.status()).into());
    }

    // 5. Sign-out deletes the session.
    let report = Account::new(manager, http).sign_out().await;
    println!("signed out: session deleted = {:?}", report.deleted);
    Ok(())
}
