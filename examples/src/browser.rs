//! The user's part of a sign-in.
//!
//! Against the testkit portal the examples play the browser themselves
//! ([`FakePortal::play_browser`]): the portal approves for its signed-in
//! user and the redirect reaches the example's loopback listener, exactly as
//! a browser would deliver it. Against a real portal the sign-in page is
//! opened in the user's browser (and printed, in case that fails).

use std::io::BufRead;
use std::time::Duration;

use arcgis_auth_core::AuthorizeOptions;
use arcgis_auth_flows::signin::SignedIn;
use arcgis_auth_flows::signin::{Loopback, UserSignIn};
use arcgis_auth_testkit::FakePortal;
use tokio::sync::oneshot;
use url::Url;

use crate::BoxError;
use crate::target::Target;

/// How long a person gets to sign in before the listener gives up.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);

/// User sign-in with PKCE through a loopback listener on `port` (0: any
/// free port), in the one call [`UserSignIn::sign_in_with_loopback`]: it
/// listens, begins the sign-in, has the browser visit the portal, waits for
/// the redirect, and trades the code for tokens.
pub async fn sign_in_with_loopback(
    target: &Target,
    sign_in: &UserSignIn,
    port: u16,
    options: &AuthorizeOptions,
) -> Result<SignedIn<UserSignIn>, BoxError> {
    let loopback = Loopback::new().port(port).timeout(SIGN_IN_TIMEOUT);
    let (opened, sign_in_page) = oneshot::channel::<Url>();
    let finish = sign_in.sign_in_with_loopback(&loopback, options, move |pending| {
        println!(
            "   listening for the sign-in callback at {}",
            pending.redirect_uri()
        );
        let _ = opened.send(pending.url().clone());
    });
    let signed_in = match target.fake() {
        Some(fake) => {
            let browser = async {
                let url = sign_in_page.await?;
                println!(
                    "   the example plays the browser: it opens the sign-in page, the portal approves"
                );
                Ok::<_, BoxError>(fake.play_browser(url.as_str()).await?)
            };
            let (signed_in, visit) = tokio::join!(finish, browser);
            let visit = visit?;
            println!(
                "   the browser was sent back to the listener ({}{}), which answered HTTP {}",
                visit.redirected_to.origin().ascii_serialization(),
                visit.redirected_to.path(),
                visit.status.unwrap_or_default()
            );
            signed_in?
        }
        None => {
            let browser = async {
                if let Ok(url) = sign_in_page.await {
                    open_in_browser(&url);
                }
            };
            tokio::join!(finish, browser).0?
        }
    };
    Ok(signed_in)
}

/// The user's part of an out-of-band sign-in: visits `url` and returns what
/// the user would paste (the approval page's title, `SUCCESS code=...`).
/// With a real portal the user signs in in their browser and pastes the code here.
pub async fn out_of_band_code(fake: Option<&FakePortal>, url: &Url) -> Result<String, BoxError> {
    match fake {
        Some(fake) => {
            println!(
                "   the example plays the user: it opens the sign-in page and copies the code shown"
            );
            let visit = fake.play_browser(url.as_str()).await?;
            let title = visit
                .body
                .split_once("<title>")
                .and_then(|(_, rest)| rest.split_once("</title>"))
                .map(|(title, _)| title.trim().to_owned())
                .ok_or("the approval page has no title")?;
            Ok(title)
        }
        None => {
            open_in_browser(url);
            println!("   sign in, then paste the code the portal shows and press Enter:");
            let line = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).map(|_| line)
            })
            .await??;
            Ok(line)
        }
    }
}

/// Prints `url` and tries to open it in the user's browser (`webbrowser`
/// honours `$BROWSER`, WSL, macOS and Windows, and never hands the terminal
/// to a text-mode browser).
pub fn open_in_browser(url: &Url) {
    println!("   open this page to sign in (trying to open it for you):\n     {url}");
    if webbrowser::open(url.as_str()).is_err() {
        println!("   (could not start a browser: open the page by hand)");
    }
}
