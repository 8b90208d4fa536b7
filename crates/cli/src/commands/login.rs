//! `login app|user|password|pki|basic`.

use std::time::Duration;

use arcgis_auth_core::{
    AuthorizeOptions, Expiration, ExposeSecret, HttpClient, OOB_REDIRECT_URI, Portal, TokenBinding,
};
use arcgis_auth_flows::TokenSource;
use arcgis_auth_flows::signin::SignedIn;
use arcgis_auth_flows::signin::{AppSignIn, Loopback, PasswordSignIn, UserSignIn, WebTierSignIn};

use super::{Context, refresh_expiration};
use crate::cli::{LoginMethod, Redirect, WebTierLoginArgs};
use crate::exit::CliError;
use crate::output::progress;
use crate::secrets;
use crate::web_tier;

pub(super) async fn run(ctx: &Context, method: LoginMethod) -> Result<(), CliError> {
    let portal = ctx.login_portal();
    match method {
        LoginMethod::App {
            client_id,
            secret,
            expiration,
        } => {
            let secret = secrets::client_secret(&secret, true)?
                .ok_or_else(|| CliError::usage("no client secret given"))?;
            let mut app = AppSignIn::new(portal, client_id, secret, ctx.http.clone());
            if let Some(minutes) = expiration {
                app = app.with_expiration(Expiration::minutes(minutes));
            }
            keep(ctx, app.sign_in().await?).await
        }
        LoginMethod::User {
            client_id,
            redirect,
            port,
            no_browser,
            timeout,
            expiration,
        } => {
            let mut options = AuthorizeOptions::new();
            if let Some(e) = refresh_expiration(expiration)? {
                options = options.expiration(e);
            }
            let user = UserSignIn::new(portal, client_id, ctx.http.clone());
            let signed_in = match redirect {
                Redirect::Loopback => {
                    // How long to wait for the browser: five minutes unless `--timeout` says.
                    let loopback = Loopback::new()
                        .port(port.unwrap_or(0))
                        .timeout(timeout.map_or(Loopback::DEFAULT_TIMEOUT, Duration::from_secs));
                    user.sign_in_with_loopback(&loopback, &options, |pending| {
                        show_sign_in_page(pending.url(), no_browser);
                        progress("Waiting for the browser to come back...");
                    })
                    .await?
                }
                Redirect::Oob => {
                    let loopback_only = match (port, timeout) {
                        (Some(_), _) => Some("--port"),
                        (None, Some(_)) => Some("--timeout"),
                        (None, None) => None,
                    };
                    if let Some(option) = loopback_only {
                        return Err(CliError::usage(format!(
                            "{option} only applies to --redirect loopback"
                        )));
                    }
                    let pending = user.begin(OOB_REDIRECT_URI, &options)?;
                    show_sign_in_page(pending.url(), no_browser);
                    let pasted = secrets::prompt_line("Paste the code shown after signing in: ")?;
                    user.complete_oob(&pending, pasted.expose_secret()).await?
                }
            };
            keep(ctx, signed_in).await
        }
        LoginMethod::Password {
            username,
            password_stdin,
            referer,
            expiration,
        } => {
            let password = secrets::password(&username, password_stdin)?;
            let binding = match referer {
                Some(referer) => TokenBinding::Referer(referer),
                None => TokenBinding::RequestIp,
            };
            let mut signer = PasswordSignIn::new(portal, ctx.http.clone(), binding);
            if let Some(minutes) = expiration {
                signer = signer.with_expiration(Expiration::minutes(minutes));
            }
            keep(ctx, signer.sign_in(username, password).await?).await
        }
        LoginMethod::Pki {
            certificate,
            options,
        } => {
            let identity = web_tier::certificate(&certificate)?;
            let http = web_tier::client(&ctx.http, identity, &portal)?;
            keep(ctx, web_tier_sign_in(portal, http, options).await?).await
        }
        LoginMethod::Basic {
            username,
            password_stdin,
            options,
        } => {
            let credentials = web_tier::basic(&username, password_stdin)?;
            let http = web_tier::client(&ctx.http, credentials, &portal)?;
            keep(ctx, web_tier_sign_in(portal, http, options).await?).await
        }
        #[cfg(feature = "kerberos")]
        LoginMethod::Kerberos { options } => {
            let credential = arcgis_auth_core::KerberosCredential::from_default_cache().await?;
            let http = web_tier::client(&ctx.http, credential, &portal)?;
            keep(ctx, web_tier_sign_in(portal, http, options).await?).await
        }
    }
}

/// A token minted without a password over the web-tier credential `http` holds.
async fn web_tier_sign_in(
    portal: Portal,
    http: HttpClient,
    options: WebTierLoginArgs,
) -> Result<SignedIn<WebTierSignIn>, CliError> {
    // The token is bound to a referer: the portal's URL unless told otherwise.
    let referer = options.referer.unwrap_or_else(|| portal.to_string());
    let mut signer = WebTierSignIn::new(portal, http, referer)?;
    if let Some(minutes) = options.expiration {
        signer = signer.with_expiration(Expiration::minutes(minutes));
    }
    Ok(signer.sign_in().await?)
}

/// Prints the `Open: <url>` line on stderr and opens the browser unless told not to.
fn show_sign_in_page(url: &url::Url, no_browser: bool) {
    progress(format_args!("Open: {url}"));
    if !no_browser && webbrowser::open(url.as_str()).is_err() {
        progress("Could not start a browser: open the URL above yourself.");
    }
}

/// Stores the sign-in in the profile and says so on stderr.
async fn keep<S: TokenSource + 'static>(
    ctx: &Context,
    signed_in: SignedIn<S>,
) -> Result<(), CliError> {
    let who = match (
        signed_in.record().username.as_deref(),
        &signed_in.record().client_id,
    ) {
        (Some(user), _) => format!(" as {user}"),
        (None, Some(app)) => format!(" as app {app}"),
        (None, None) => String::new(),
    };
    let portal = signed_in.record().portal.clone();
    let expires = signed_in.token().expires_at();
    ctx.profiles.keep(&ctx.profile, signed_in).await?;
    progress(format_args!(
        "Signed in to {portal}{who} (profile `{}`); the token is valid until {}.",
        ctx.profile,
        expires.to_rfc3339()
    ));
    Ok(())
}
