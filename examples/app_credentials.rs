//! App credentials (`client_credentials`): a server or script that acts as
//! the app itself, not as a user.
//!
//! The app signs in with its client id and secret, a `TokenManager` keeps
//! the token valid (signing in again when it runs out; the secret stays in
//! memory and is never stored), and the token authorizes a request through
//! the middleware. Tokens are described, never printed.
//!
//! Run it:
//!
//! ```text
//! cargo run --example app_credentials
//!     # against the testkit's fake portal
//! ARCGIS_CLIENT_SECRET=... cargo run --example app_credentials -- \
//!     --portal https://www.arcgis.com --client-id YOUR_CLIENT_ID
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use arcgis_auth_core::{HttpClient, Timestamp};
use arcgis_auth_examples::target::Target;
use arcgis_auth_examples::{BoxError, exit_status, show};
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::AppSignIn;
use arcgis_auth_storage::MemoryStore;

const USAGE: &str = "\
app_credentials: sign in as an app with its client id and secret

Options:
  --client-id ID     the app's client id (with --portal); the secret is read from
                     $ARCGIS_CLIENT_SECRET";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let (args, target) = Target::from_cli(USAGE, &["client-id"], &[]).await?;
    let portal = target.portal();
    let (client_id, secret) = target.app_credentials(&args)?;
    let http = HttpClient::new()?;

    let app = AppSignIn::new(portal.clone(), client_id.as_str(), secret, http.clone());
    let signed_in = app.sign_in().await?;
    println!(
        "The app {client_id} signed in: {}",
        show::token(signed_in.token(), Timestamp::now())
    );

    // The manager serves the token to any number of callers and signs in
    // again when it is due. A MemoryStore here; a FileStore or RedisStore
    // shares it between processes.
    let manager = signed_in
        .into_manager(Arc::new(MemoryStore::new()), "app")
        .await?;

    // The middleware puts the token on requests to the portal (in a header).
    let client =
        ArcGisAuth::new(manager.clone(), TokenRouting::new(portal.clone()), http).into_client()?;
    let url = format!("{}?f=json", portal.portals_self_url());
    let answer: serde_json::Value = client.get(&url).send().await?.json().await?;
    if let Some(error) = answer.get("error") {
        return Err(format!("portals/self answered an error: {error}").into());
    }
    println!(
        "portals/self, as the app: organisation \"{}\", app {}",
        answer["name"].as_str().unwrap_or("?"),
        answer["appInfo"]["appId"].as_str().unwrap_or("(not shown)")
    );
    if let Some(fake) = target.fake() {
        let sign_ins = fake
            .calls()
            .token(arcgis_auth_testkit::Grant::ClientCredentials);
        println!(
            "The portal saw {sign_ins} client_credentials request(s): the manager reused the token."
        );
    }
    Ok(())
}
