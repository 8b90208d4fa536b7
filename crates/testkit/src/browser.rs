//! Playing the user's browser through a sign-in, for tests of code that
//! builds an authorize URL and waits for the redirect.

use url::Url;

use crate::error::{Error, ErrorKind};
use crate::portal::FakePortal;

/// Where a browser ended up after [`FakePortal::play_browser`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrowserVisit {
    /// Where the portal sent the browser: the redirect URI with
    /// `?code=…&state=…` (or `?error=…`), with `#access_token=…` for the
    /// implicit grant, or the approval page for out-of-band sign-in.
    pub redirected_to: Url,
    /// The HTTP status the redirect target answered (`None` when it was not
    /// visited: a non-http(s) redirect URI such as `myapp://callback`).
    pub status: Option<u16>,
    /// The body of the page the redirect target answered (empty when not visited).
    pub body: String,
}

fn browser_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Browser, message)
}

/// A client that behaves like a browser for redirects: it does not follow them
/// (so each step can be checked) and goes straight to loopback (no proxy).
fn client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| browser_error(format!("cannot build an HTTP client: {e}")))
}

/// The `<title>` of an HTML page, for error messages.
fn title(page: &str) -> Option<&str> {
    let start = page.find("<title>")? + "<title>".len();
    let end = start + page.get(start..)?.find("</title>")?;
    page.get(start..end)
}

impl FakePortal {
    /// Plays the user's browser on `authorize_url` (a URL your code built for
    /// this portal's `oauth2/authorize`) and returns where the portal sends
    /// the browser, without going there: the redirect URI with the code (or
    /// the error), the fragment of the implicit grant, or the approval page.
    ///
    /// The portal approves for the signed-in user (see
    /// [`FakePortal::set_signed_in_user`]). Fails with [`ErrorKind::Browser`]
    /// when the URL is not this portal's authorize endpoint or the portal shows
    /// a page instead of redirecting (an unknown client id or redirect URI,
    /// or the sign-in page because nobody is signed in).
    pub async fn authorize_redirect(&self, authorize_url: &str) -> Result<Url, Error> {
        let url = Url::parse(authorize_url)
            .map_err(|e| browser_error(format!("`{authorize_url}` is not a URL: {e}")))?;
        let endpoint = self.portal().authorize_url();
        let same_endpoint = url.scheme() == endpoint.scheme()
            && url.host_str() == endpoint.host_str()
            && url.port_or_known_default() == endpoint.port_or_known_default()
            && url.path().trim_end_matches('/') == endpoint.path();
        if !same_endpoint {
            return Err(browser_error(format!(
                "{endpoint} is this portal's authorize endpoint; refusing to browse elsewhere"
            )));
        }
        let response = client()?
            .get(url)
            .send()
            .await
            .map_err(|e| browser_error(format!("opening the authorize page failed: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| browser_error("the portal redirected without a Location"))?;
            return Url::parse(location).map_err(|e| {
                browser_error(format!("the portal redirected to an invalid URL: {e}"))
            });
        }
        let page = response.text().await.unwrap_or_default();
        Err(browser_error(format!(
            "the portal showed a page instead of redirecting (HTTP {}, \"{}\"): {}",
            status.as_u16(),
            title(&page).unwrap_or("no title"),
            if title(&page) == Some("Sign In") {
                "nobody is signed in; call FakePortal::set_signed_in_user"
            } else {
                "check the client id and redirect URI"
            }
        )))
    }

    /// Plays the user's browser to the end: [`authorize_redirect`](Self::authorize_redirect),
    /// then a GET of the redirect target when it is an `http(s)` URL (as a
    /// browser would: without the fragment), which delivers the code to a
    /// loopback listener or opens the out-of-band approval page.
    ///
    /// Run it next to the code under test (e.g. `tokio::spawn`) when that code
    /// waits for the redirect on a listener.
    pub async fn play_browser(&self, authorize_url: &str) -> Result<BrowserVisit, Error> {
        let redirected_to = self.authorize_redirect(authorize_url).await?;
        if !matches!(redirected_to.scheme(), "http" | "https") {
            return Ok(BrowserVisit {
                redirected_to,
                status: None,
                body: String::new(),
            });
        }
        let mut target = redirected_to.clone();
        target.set_fragment(None);
        let response = client()?.get(target).send().await.map_err(|e| {
            browser_error(format!(
                "the redirect target did not answer (is the listener running?): {e}"
            ))
        })?;
        let status = Some(response.status().as_u16());
        let body = response.text().await.map_err(|e| {
            browser_error(format!("reading the redirect target's page failed: {e}"))
        })?;
        Ok(BrowserVisit {
            redirected_to,
            status,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            title("<html><title>SUCCESS code=x</title>"),
            Some("SUCCESS code=x")
        );
        assert_eq!(title("<title>unterminated"), None);
        assert_eq!(title("none"), None);
    }
}
