//! Operations of the real process: SIGTERM drains, SIGHUP reloads; each on
//! one worker thread (the current-thread runtime) and on two (multi-thread).
#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{mpsc, oneshot};

const BIN: &str = env!("CARGO_BIN_EXE_arcgis-auth-gateway");

/// `TOKIO_WORKER_THREADS` for each run: the current-thread runtime, then the multi-thread one.
const THREADS: [&str; 2] = ["1", "2"];

/// An upstream that tells when a request arrived and answers only when released.
async fn held_upstream() -> (u16, mpsc::Receiver<()>, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (arrived_tx, arrived) = mpsc::channel(4);
    let (release, released) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let _ = arrived_tx.send(()).await;
        let _ = released.await;
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nfinished")
            .await;
    });
    (port, arrived, release)
}

struct Process {
    child: Child,
    addr: String,
    stderr: Lines<BufReader<ChildStderr>>,
    client: reqwest::Client,
}

impl Process {
    async fn start(config: &std::path::Path, threads: &str) -> Process {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .env("TOKIO_WORKER_THREADS", threads)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the gateway");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let line = stdout.next_line().await.expect("read").expect("a line");
        let addr = line
            .strip_prefix("listening on http://")
            .expect("the listening line")
            .to_owned();
        let stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        Process {
            child,
            addr,
            stderr,
            client: reqwest::Client::new(),
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Reads log lines until one contains `text`.
    async fn log_until(&mut self, text: &str) -> String {
        while let Some(line) = self.stderr.next_line().await.expect("stderr") {
            if line.contains(text) {
                return line;
            }
        }
        panic!("the gateway exited without logging {text:?}");
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("http://{}{path}", self.addr))
            .send()
            .await
            .expect("the gateway answers")
    }
}

fn config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test]
async fn sigterm_drains_then_exits_0() {
    for threads in THREADS {
        sigterm_drains_then_exits_0_on(threads).await;
    }
}

async fn sigterm_drains_then_exits_0_on(threads: &str) {
    let (port, mut arrived, release) = held_upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(
        &dir,
        &format!(
            "listen = \"127.0.0.1:0\"\n[[routes]]\nurl = \"http://127.0.0.1:{port}/held\"\nmatch_all = true\n"
        ),
    );
    let mut p = Process::start(&path, threads).await;
    assert_eq!(p.get("/readyz").await.status(), 200);
    let held = {
        let client = p.client.clone();
        let url = format!("http://{}/proxy?http://127.0.0.1:{port}/held/x", p.addr);
        tokio::spawn(async move { client.get(url).send().await?.text().await })
    };
    arrived
        .recv()
        .await
        .expect("the request reached the upstream");

    p.signal("TERM");
    p.log_until("shutting down").await;
    // The listener stays open: readiness fails, new proxied requests get 503, liveness holds.
    let r = p.get("/readyz").await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<serde_json::Value>().await.expect("json")["status"],
        "draining"
    );
    let r = p
        .get(&format!("/proxy?http://127.0.0.1:{port}/held/y"))
        .await;
    assert_eq!(r.status(), 503);
    assert_eq!(p.get("/healthz").await.status(), 200);

    // The request in flight finishes, then the process exits 0.
    release.send(()).expect("release");
    let body = held
        .await
        .expect("task")
        .expect("the held request finished");
    assert_eq!(body, "finished");
    let status = p.child.wait().await.expect("exit");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigterm_cuts_off_after_the_grace_period_and_exits_0() {
    for threads in THREADS {
        sigterm_cuts_off_after_the_grace_period_and_exits_0_on(threads).await;
    }
}

async fn sigterm_cuts_off_after_the_grace_period_and_exits_0_on(threads: &str) {
    let (port, mut arrived, _release) = held_upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(
        &dir,
        &format!(
            "listen = \"127.0.0.1:0\"\nshutdown_grace_seconds = 1\n[[routes]]\nurl = \"http://127.0.0.1:{port}/held\"\nmatch_all = true\n"
        ),
    );
    let mut p = Process::start(&path, threads).await;
    let held = {
        let client = p.client.clone();
        let url = format!("http://{}/proxy?http://127.0.0.1:{port}/held/x", p.addr);
        tokio::spawn(async move { client.get(url).send().await })
    };
    arrived
        .recv()
        .await
        .expect("the request reached the upstream");
    p.signal("TERM");
    p.log_until("grace period is over").await;
    let status = p.child.wait().await.expect("exit");
    assert_eq!(status.code(), Some(0));
    assert!(
        held.await.expect("task").is_err(),
        "the held request was cut off"
    );
}

#[tokio::test]
async fn sighup_reloads_and_a_bad_config_keeps_the_old_one() {
    for threads in THREADS {
        sighup_reloads_and_a_bad_config_keeps_the_old_one_on(threads).await;
    }
}

async fn sighup_reloads_and_a_bad_config_keeps_the_old_one_on(threads: &str) {
    let upstream = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&upstream)
        .await;
    let port = upstream.address().port();
    let dir = tempfile::tempdir().expect("tempdir");
    let route = |name: &str| {
        format!(
            "listen = \"127.0.0.1:0\"\n[[routes]]\nurl = \"http://127.0.0.1:{port}/{name}\"\nmatch_all = true\n"
        )
    };
    let path = config(&dir, &route("a"));
    let mut p = Process::start(&path, threads).await;
    let a = format!("/proxy?http://127.0.0.1:{port}/a/x");
    let b = format!("/proxy?http://127.0.0.1:{port}/b/x");
    assert_eq!(p.get(&a).await.status(), 200);
    assert_eq!(p.get(&b).await.status(), 403);

    config(&dir, &route("b"));
    p.signal("HUP");
    p.log_until("configuration reloaded").await;
    assert_eq!(p.get(&a).await.status(), 403);
    assert_eq!(p.get(&b).await.status(), 200);

    // A bad configuration: logged with its place, the old one stays.
    config(
        &dir,
        "[[routes]]\nurl = \"https://h.example/a\"\nauth = \"app:missing\"\n",
    );
    p.signal("HUP");
    let line = p.log_until("reload refused").await;
    assert!(line.contains("routes[0].auth"), "{line}");
    assert_eq!(p.get(&b).await.status(), 200);
    assert_eq!(p.get("/readyz").await.status(), 200);

    p.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(60), p.child.wait())
        .await
        .expect("the gateway exits")
        .expect("exit");
    assert_eq!(status.code(), Some(0));
}
