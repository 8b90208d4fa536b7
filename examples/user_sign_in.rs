//! User sign-in with the authorization-code flow and PKCE, receiving the
//! code on a loopback listener: the way command-line and desktop apps sign a
//! person in.
//!
//! The example listens on `http://127.0.0.1:<port>/callback`, opens the
//! portal's sign-in page in the browser, waits for the redirect, trades the
//! code (and the PKCE verifier) for an access token and a refresh token,
//! greets the user by name (`community/self`), and signs out (revoking the
//! refresh token). Against the testkit's fake portal (the default) the
//! example plays the browser itself.
//!
//! Run it:
//!
//! ```text
//! cargo run --example user_sign_in
//! cargo run --example user_sign_in -- \
//!     --portal https://www.arcgis.com --client-id YOUR_CLIENT_ID --port 8765
//!     # register http://127.0.0.1:8765/callback as a redirect URI of the app
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use arcgis_auth_core::{AuthorizeOptions, HttpClient, Timestamp};
use arcgis_auth_examples::browser::sign_in_with_loopback;
use arcgis_auth_examples::target::Target;
use arcgis_auth_examples::{BoxError, exit_status, show};
use arcgis_auth_flows::account::Account;
use arcgis_auth_flows::signin::UserSignIn;
use arcgis_auth_storage::MemoryStore;

const USAGE: &str = "\
user_sign_in: a person signs in with PKCE; the code comes back to a loopback listener

Options:
  --client-id ID     the app's client id (with --portal)
  --port PORT        the listener's port (default 0: any free port); the app must
                     have http://127.0.0.1:PORT/callback as a redirect URI";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let (args, target) = Target::from_cli(USAGE, &["client-id", "port"], &[]).await?;
    let port: u16 = args.value("port").unwrap_or("0").parse()?;
    let http = HttpClient::new()?;
    let sign_in = UserSignIn::new(
        target.portal(),
        target.public_client_id(&args)?,
        http.clone(),
    );

    println!("Signing in:");
    let signed_in =
        sign_in_with_loopback(&target, &sign_in, port, &AuthorizeOptions::new()).await?;
    let now = Timestamp::now();
    println!("Signed in: {}", show::token(signed_in.token(), now));
    if let Some(refresh) = signed_in.token().refresh_token() {
        let left = refresh
            .expires_at()
            .map(|t| show::duration(t.saturating_duration_since(now)))
            .unwrap_or_else(|| "an unknown time".to_owned());
        println!(
            "with a refresh token valid for {left}: the manager renews the access token with it"
        );
    }

    let manager = signed_in
        .into_manager(Arc::new(MemoryStore::new()), "user")
        .await?;
    let account = Account::new(manager, http);
    let me = account.user().await?;
    println!(
        "community/self: {} ({})",
        me.full_name.as_deref().unwrap_or(&me.username),
        me.username
    );

    let report = account.sign_out().await;
    println!(
        "Signed out: revoked {:?}, session deleted: {:?}",
        report.revoked.as_ref().map_err(ToString::to_string),
        report.deleted.as_ref().map_err(ToString::to_string)
    );
    if !report.is_complete() {
        return Err("sign-out did not complete".into());
    }
    Ok(())
}
