//! A scripted visitor: walks through the site the way a browser does
//! (following each redirect by hand, keeping the site's cookie), for the
//! `web_app` example's no-argument run. The real-browser test is
//! `tests/browser.rs`.

use axum::http::header::{LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use url::Url;

use super::cookie;
use crate::BoxError;

/// One page load: where it ended up and what it showed.
#[derive(Debug)]
pub struct Page {
    /// The URL of the page finally shown.
    pub url: Url,
    /// Its HTTP status.
    pub status: u16,
    /// Its HTML.
    pub body: String,
}

/// What one request led to.
#[derive(Debug)]
pub enum Step {
    /// A redirect to this URL.
    Redirect(Url),
    /// A page.
    Page(Page),
}

/// A browser stand-in with the site's session cookie.
#[derive(Debug)]
pub struct Visitor {
    http: reqwest::Client,
    cookie: Option<String>,
}

impl Visitor {
    /// A visitor with no cookie yet.
    pub fn new() -> Result<Visitor, BoxError> {
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .build()?;
        Ok(Visitor { http, cookie: None })
    }

    /// Whether the site has given this visitor a session cookie.
    pub fn has_cookie(&self) -> bool {
        self.cookie.is_some()
    }

    /// The session id the site gave this visitor (to check that it changes).
    pub fn session_id(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    /// GETs `url` and follows redirects (at most 10), printing each hop.
    pub async fn get(&mut self, url: Url) -> Result<Page, BoxError> {
        self.go(url, false).await
    }

    /// Submits a form without fields to `url` (POST) and follows redirects.
    pub async fn submit(&mut self, url: Url) -> Result<Page, BoxError> {
        self.go(url, true).await
    }

    async fn go(&mut self, mut url: Url, mut post: bool) -> Result<Page, BoxError> {
        for _ in 0..10 {
            match self.request(url, post).await? {
                Step::Redirect(next) => {
                    url = next;
                    post = false;
                }
                Step::Page(page) => return Ok(page),
            }
        }
        Err("more than 10 redirects".into())
    }

    /// One request, without following a redirect: the page, or where it redirects.
    pub async fn request(&mut self, url: Url, post: bool) -> Result<Step, BoxError> {
        println!(
            "    browser: {} {}",
            if post { "POST" } else { "GET" },
            without_query(&url)
        );
        let mut request = if post {
            self.http.post(url.clone()).form(&[("", ""); 0])
        } else {
            self.http.get(url.clone())
        };
        if let Some(id) = &self.cookie {
            request = request.header("cookie", format!("{}={id}", cookie::NAME));
        }
        let response = request.send().await?;
        for value in response.headers().get_all(SET_COOKIE) {
            self.take_cookie(value.to_str().unwrap_or_default());
        }
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or("a redirect without a Location")?;
            return Ok(Step::Redirect(url.join(location)?));
        }
        let body = response.text().await?;
        Ok(Step::Page(Page {
            url,
            status: status.as_u16(),
            body,
        }))
    }

    fn take_cookie(&mut self, set_cookie: &str) {
        let (name_value, attributes) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
        let Some((name, value)) = name_value.split_once('=') else {
            return;
        };
        if name.trim() != cookie::NAME {
            return;
        }
        if value.is_empty() || attributes.contains("Max-Age=0") {
            self.cookie = None;
        } else {
            self.cookie = Some(value.to_owned());
        }
    }
}

/// The URL without its query (which may carry a code or state).
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    let query = shown.query().is_some();
    shown.set_query(None);
    if query {
        format!("{shown}?…")
    } else {
        shown.to_string()
    }
}

/// Signs in and out of the site at `site` as a browser would, checking each
/// page; `expected_name` is the name the signed-in page must welcome.
pub async fn demo_visit(site: &Url, expected_name: &str) -> Result<(), BoxError> {
    let mut visitor = Visitor::new()?;
    println!("  1. open the site");
    let page = visitor.get(site.clone()).await?;
    check(
        page.body.contains("id=\"sign-in\""),
        "the start page shows a sign-in button",
    )?;

    println!(
        "  2. click \"Sign in with ArcGIS\": the site redirects to the portal, which approves and redirects back"
    );
    let page = visitor.submit(site.join("signin")?).await?;
    check(page.status == 200, "the browser lands back on the site")?;
    let welcome = format!("Welcome, {expected_name}.");
    check(
        page.body.contains(&welcome),
        &format!("the page says \"{welcome}\""),
    )?;
    check(
        visitor.has_cookie(),
        "the browser holds the session cookie (a random id, no token)",
    )?;

    println!("  3. click \"Sign out\": the site revokes the refresh token and deletes the session");
    let page = visitor.submit(site.join("signout")?).await?;
    check(
        page.body.contains("id=\"sign-in\""),
        "the page shows the sign-in button again",
    )?;
    check(!visitor.has_cookie(), "the cookie is gone")?;
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), BoxError> {
    if ok {
        println!("     ✓ {what}");
        Ok(())
    } else {
        Err(format!("expected: {what}").into())
    }
}
