//! Out-of-band user sign-in: for apps that cannot receive a redirect (no
//! browser on this machine, no port to listen on).
//!
//! The sign-in names the redirect URI `urn:ietf:wg:oauth:2.0:oob`: after
//! signing in, the portal shows the code on its approval page (its title
//! reads `SUCCESS code=...`) and the user pastes it back. PKCE still binds
//! the code to this sign-in, so a code from someone else's sign-in is refused.
//! Against the testkit's fake portal (the default) the example plays the
//! user and copies the code from the page.
//!
//! Run it:
//!
//! ```text
//! cargo run --example out_of_band
//! cargo run --example out_of_band -- \
//!     --portal https://www.arcgis.com --client-id YOUR_CLIENT_ID
//!     # the app must have urn:ietf:wg:oauth:2.0:oob as a redirect URI
//! ```

use arcgis_auth_core::{AuthorizeOptions, HttpClient, OOB_REDIRECT_URI, Timestamp};
use arcgis_auth_examples::browser::out_of_band_code;
use arcgis_auth_examples::target::Target;
use arcgis_auth_examples::{BoxError, exit_status, show};
use arcgis_auth_flows::signin::UserSignIn;
use std::process::ExitCode;

const USAGE: &str = "\
out_of_band: a person signs in and pastes the code the portal shows

Options:
  --client-id ID     the app's client id (with --portal)";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let (args, target) = Target::from_cli(USAGE, &["client-id"], &[]).await?;
    let sign_in = UserSignIn::new(
        target.portal(),
        target.public_client_id(&args)?,
        HttpClient::new()?,
    );

    let pending = sign_in.begin(OOB_REDIRECT_URI, &AuthorizeOptions::new())?;
    println!(
        "Signing in out of band (redirect URI {}):",
        pending.redirect_uri()
    );
    let pasted = out_of_band_code(target.fake(), pending.url()).await?;
    println!(
        "   the user pasted {} characters",
        pasted.trim().chars().count()
    );
    let signed_in = sign_in.complete_oob(&pending, &pasted).await?;
    println!(
        "Signed in: {}",
        show::token(signed_in.token(), Timestamp::now())
    );
    if signed_in.token().refresh_token().is_none() {
        return Err("an out-of-band sign-in should give a refresh token".into());
    }
    println!(
        "with a refresh token: hand it to a TokenManager (SignedIn::into_manager) to keep the session alive"
    );
    Ok(())
}
