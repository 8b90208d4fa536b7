//! Just enough of the W3C WebDriver protocol to drive Chromium through
//! chromedriver: sessions, navigation, elements, cookies.
//!
//! Why not `fantoccini` or `thirtyfour`: `fantoccini` (through the `webdriver`
//! crate) adds a second major of `http` (0.2), `cookie` and the ICU crates,
//! and `thirtyfour` another `reqwest`; the protocol is plain JSON over HTTP,
//! which our `reqwest` 0.13 already speaks.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// The key W3C WebDriver uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long to wait for a page to show what a step expects.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A chromedriver process on a free loopback port, killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Driver {
    /// Starts `chromedriver` and waits until it is ready.
    pub(crate) async fn start(chromedriver: &Path) -> Result<Driver, Error> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", chromedriver.display()))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .ok();
            if let Some(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    return Ok(driver);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("chromedriver did not become ready on {}", driver.url).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a browser session: `chromium` with `args` (and a fresh profile dir).
    pub(crate) async fn session(&self, chromium: &Path, args: &[String]) -> Result<Session, Error> {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": chromium, "args": args }
                }
            }
        });
        let answer = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.url),
            Some(capabilities),
        )
        .await?;
        let id = answer["sessionId"]
            .as_str()
            .ok_or("chromedriver answered no session id")?
            .to_owned();
        Ok(Session {
            http: self.http.clone(),
            url: format!("{}/session/{id}", self.url),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver call; returns the answer's `value`, or its error message.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, Error> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "webdriver {}: {} ({})",
            status.as_u16(),
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or("")
        )
        .into())
    }
}

/// A browser session.
pub(crate) struct Session {
    http: reqwest::Client,
    url: String,
}

/// An element on the current page.
pub(crate) struct Element(String);

impl Session {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        call(&self.http, method, &format!("{}{path}", self.url), body).await
    }

    /// Navigates to `url`.
    pub(crate) async fn goto(&self, url: &str) -> Result<(), Error> {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await?;
        Ok(())
    }

    /// A GET whose answer is a string.
    async fn get_string(&self, path: &str) -> Result<String, Error> {
        let value = self.call(reqwest::Method::GET, path, None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The current page's URL.
    pub(crate) async fn current_url(&self) -> Result<String, Error> {
        self.get_string("/url").await
    }

    /// The current page's HTML.
    pub(crate) async fn source(&self) -> Result<String, Error> {
        self.get_string("/source").await
    }

    /// The element matching `css` now, if any.
    pub(crate) async fn find(&self, css: &str) -> Result<Option<Element>, Error> {
        let answer = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        Ok(answer
            .as_array()
            .and_then(|all| all.first())
            .and_then(|e| e[ELEMENT].as_str())
            .map(|id| Element(id.to_owned())))
    }

    /// Waits up to [`WAIT`] for an element matching `css` to appear.
    pub(crate) async fn wait_for(&self, css: &str) -> Result<Element, Error> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(element) = self.find(css).await? {
                return Ok(element);
            }
            if Instant::now() > deadline {
                let url = self.current_url().await.unwrap_or_default();
                let page = self.source().await.unwrap_or_default();
                return Err(
                    format!("no `{css}` on {url} after {WAIT:?}; the page:\n{page}").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks `element`.
    pub(crate) async fn click(&self, element: &Element) -> Result<(), Error> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await?;
        Ok(())
    }

    /// Types `text` into `element`.
    pub(crate) async fn type_text(&self, element: &Element, text: &str) -> Result<(), Error> {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    /// The visible text of `element`.
    pub(crate) async fn text(&self, element: &Element) -> Result<String, Error> {
        self.get_string(&format!("/element/{}/text", element.0))
            .await
    }

    /// Runs `script` in the page as the body of an async function and
    /// returns what it returns (a promise is awaited; values as JSON).
    pub(crate) async fn run_async(&self, script: &str) -> Result<Value, Error> {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1];\n\
             (async () => {{ {script} }})().then(done, e => done({{ scriptError: String(e) }}));"
        );
        let value = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({ "script": wrapped, "args": [] })),
            )
            .await?;
        if let Some(e) = value.get("scriptError") {
            return Err(format!("the page's script failed: {e}").into());
        }
        Ok(value)
    }

    /// The cookies the browser holds for the current page.
    pub(crate) async fn cookies(&self) -> Result<Vec<Value>, Error> {
        Ok(self
            .call(reqwest::Method::GET, "/cookie", None)
            .await?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Closes the browser.
    pub(crate) async fn quit(&self) -> Result<(), Error> {
        call(&self.http, reqwest::Method::DELETE, &self.url, None).await?;
        Ok(())
    }
}

/// `var` if set, else the first of `names` found on `PATH` (or given as an absolute path).
pub(crate) fn find_program(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        let name = Path::new(name);
        if name.is_absolute() {
            return name.is_file().then(|| name.to_path_buf());
        }
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}
