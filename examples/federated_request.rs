//! An authenticated request to a federated ArcGIS Server, through the
//! `reqwest-middleware` middleware.
//!
//! A portal token is not accepted by the ArcGIS Servers federated with the
//! portal: each needs its own server token. The middleware finds out by
//! itself: it reads the server's `rest/info`, checks that its
//! `owningSystemUrl` is this portal (exactly: scheme, host, port), trades the
//! portal token for a server token with `generateToken` (`serverUrl`), keeps
//! it, and puts it on the request, in a header. A 498 from the server gets a
//! fresh token and one retry. URLs that belong to neither get no token.
//!
//! Run it:
//!
//! ```text
//! cargo run --example federated_request
//! cargo run --example federated_request -- \
//!     --portal https://gis.example.com/portal --client-id YOUR_CLIENT_ID \
//!     --service https://gis.example.com/server/rest/services/SampleWorldCities/MapServer
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use arcgis_auth_core::{AuthorizeOptions, HttpClient};
use arcgis_auth_examples::browser::sign_in_with_loopback;
use arcgis_auth_examples::target::Target;
use arcgis_auth_examples::{BoxError, exit_status};
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::UserSignIn;
use arcgis_auth_storage::MemoryStore;
use arcgis_auth_testkit::{Endpoint, SERVER_NAME};

const USAGE: &str = "\
federated_request: call a secured service on a federated ArcGIS Server

Options:
  --client-id ID     the app's client id (with --portal)
  --service URL      the service to call (with --portal), e.g.
                     https://HOST/server/rest/services/NAME/MapServer
  --port PORT        the sign-in listener's port (default 0: any free port)";

#[tokio::main]
async fn main() -> ExitCode {
    exit_status(run().await)
}

async fn run() -> Result<(), BoxError> {
    let (args, target) = Target::from_cli(USAGE, &["client-id", "service", "port"], &[]).await?;
    let service = match (args.value("service"), target.fake()) {
        (Some(url), _) => url.to_owned(),
        (None, Some(fake)) => fake
            .server(SERVER_NAME)
            .ok_or("the fake portal has no server")?
            .service_url("SampleWorldCities/MapServer"),
        (None, None) => return Err("with --portal, pass --service URL".into()),
    };
    let port: u16 = args.value("port").unwrap_or("0").parse()?;
    let http = HttpClient::new()?;

    println!("Signing in:");
    let sign_in = UserSignIn::new(
        target.portal(),
        target.public_client_id(&args)?,
        http.clone(),
    );
    let manager = sign_in_with_loopback(&target, &sign_in, port, &AuthorizeOptions::new())
        .await?
        .into_manager(Arc::new(MemoryStore::new()), "user")
        .await?;

    let auth = ArcGisAuth::new(manager, TokenRouting::new(target.portal()), http);
    let client = auth.into_client()?;
    println!("GET {service}?f=json");
    let answer: serde_json::Value = client
        .get(format!("{service}?f=json"))
        .send()
        .await?
        .json()
        .await?;
    if let Some(error) = answer.get("error") {
        return Err(format!("the service answered an error: {error}").into());
    }
    let text = answer.to_string();
    println!(
        "The service answered: {}",
        text.chars().take(200).collect::<String>()
    );
    if let Some(fake) = target.fake() {
        let calls = fake.calls();
        println!(
            "On the way: {} read of the server's rest/info, {} generateToken for a server token, {} service call.",
            calls.server(SERVER_NAME, Endpoint::ServerInfo),
            calls.endpoint(Endpoint::GenerateToken),
            calls.server(SERVER_NAME, Endpoint::ServerServices)
        );
    }
    Ok(())
}
