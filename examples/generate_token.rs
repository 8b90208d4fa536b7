//! `generateToken`: a script signs in with a username and password.
//!
//! For scripts and services on ArcGIS Enterprise with built-in users, where
//! OAuth is not available. The token is bound to the requesting IP
//! (`client=requestip`; `client=referer` is the choice for web apps), its
//! expiry arrives as epoch milliseconds, and the password stays in memory
//! (never in the stored session) so the manager can sign in again when the
//! token runs out. Prefer OAuth (`user_sign_in`) wherever you can.
//!
//! Run it:
//!
//! ```text
//! cargo run --example generate_token
//! ARCGIS_PASSWORD=... cargo run --example generate_token -- \
//!     --portal https://gis.example.com/portal --username jdoe
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use arcgis_auth_core::{ExposeSecret, HttpClient, Timestamp, TokenBinding};
use arcgis_auth_examples::target::Target;
use arcgis_auth_examples::{BoxError, exit_status, show};
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::signin::PasswordSignIn;
use arcgis_auth_storage::{MemoryStore, SessionStore};

const USAGE: &str = "\
generate_token: sign in with a username and password (generateToken)

Options:
  --username NAME    the user (with --portal); the password is read from $ARCGIS_PASSWORD";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let (args, target) = Target::from_cli(USAGE, &["username"], &[]).await?;
    let (username, password) = target.user_credentials(&args)?;
    let http = HttpClient::new()?;

    let signer = PasswordSignIn::new(target.portal(), http.clone(), TokenBinding::RequestIp);
    let signed_in = signer.sign_in(username.as_str(), password.clone()).await?;
    println!(
        "{username} signed in: {}",
        show::token(signed_in.token(), Timestamp::now())
    );

    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let manager = signed_in.into_manager(store.clone(), "script").await?;
    let stored = store
        .load("script")
        .await?
        .ok_or("the session was not stored")?;
    let json = stored.record.to_json()?;
    if json.contains(password.expose_secret()) {
        return Err("the stored session must not contain the password".into());
    }
    println!(
        "The stored session ({} bytes of JSON) holds the token, not the password.",
        json.len()
    );

    let me = Account::new(manager, http).user().await?;
    println!(
        "community/self: {}",
        me.full_name.as_deref().unwrap_or(&me.username)
    );
    Ok(())
}
