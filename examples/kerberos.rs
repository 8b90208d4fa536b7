//! Kerberos (`Negotiate`) sign-in at an Enterprise portal's web tier, against
//! the testkit: a throwaway MIT realm on loopback (its own KDC, `kinit` into
//! a private credential cache) and a fake portal whose web tier verifies
//! every Negotiate token against the realm's keytab.
//!
//! Kerberos reads `KRB5_CONFIG`, `KRB5CCNAME` and `KRB5_KTNAME` from the
//! process environment, so the example runs itself again as a second
//! process with the realm's environment; against a real portal, `kinit`
//! first and use the default cache as the second part does. Needs Debian's
//! krb5-kdc, krb5-admin-server and krb5-user.
//!
//! Run it:
//!
//! ```text
//! cargo run --example kerberos
//! ```

use std::process::{Command, ExitCode};
use std::sync::Arc;

use arcgis_auth_core::{Expiration, HttpClient, KerberosCredential, SignInMethod};
use arcgis_auth_examples::{BoxError, exit_status};
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::WebTierSignIn;
use arcgis_auth_storage::MemoryStore;
use arcgis_auth_testkit::{FakePortal, KerberosRealm, WebTier};

/// Set in the second process, which holds the realm's environment.
const SIGNED_IN_PART: &str = "ARCGIS_AUTH_EXAMPLE_KERBEROS";
const REFERER: &str = "https://app.example.com";

#[tokio::main]
async fn main() -> ExitCode {
    let result = if std::env::var_os(SIGNED_IN_PART).is_some() {
        sign_in().await
    } else {
        with_realm()
    };
    exit_status(result)
}

/// Starts the realm and runs the second part with its environment.
fn with_realm() -> Result<(), BoxError> {
    let realm = KerberosRealm::start("127.0.0.1")?;
    eprintln!(
        "realm {} on loopback; {} holds a ticket",
        realm.realm(),
        realm.user_principal()
    );
    let status = Command::new(std::env::current_exe()?)
        .envs(realm.env())
        .env(SIGNED_IN_PART, "1")
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the signed-in part failed: {status}").into())
    }
}

/// The user's part: what a program on a machine with a Kerberos ticket does.
async fn sign_in() -> Result<(), BoxError> {
    let portal = FakePortal::builder()
        .federated_server("server")
        .web_tier(WebTier::negotiate().open_server_info())
        .start()
        .await;

    // 1. Which sign-in? (no credential is sent)
    let security = HttpClient::new()?.probe_portal(&portal.portal()).await?;
    println!("the portal's web tier asks for: {:?}", security.sign_ins());
    assert_eq!(security.sign_ins(), vec![SignInMethod::Kerberos]);

    // 2. The ticket stays in the credential cache; only the principal is read.
    let kerberos = KerberosCredential::from_default_cache().await?;
    println!("Kerberos principal: {}", kerberos.principal());
    let http = HttpClient::new()?.with_web_tier(kerberos, portal.portal().origin().clone())?;

    // 3. A token minted without a password, renewed the same way.
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

    // 4. Requests carry a fresh Negotiate token and the ArcGIS token.
    let client =
        ArcGisAuth::new(manager, TokenRouting::new(portal.portal()), http).into_client()?;
    let item = client
        .get(format!("{}?f=json", portal.secured_item_url("abc123")))
        .header("Referer", REFERER)
        .send()
        .await?;
    println!("secured item: HTTP {}", item.status());
    if !item.status().is_success() {
        return Err(format!("the secured item answered {}", item.status()).into());
    }
    Ok(())
}
