//! A loopback `redis-server` for tests.
//!
//! With `ARCGIS_AUTH_TEST_REDIS_URL` set, tests use that server (under a random
//! key prefix, never flushing it). Otherwise a `redis-server` is started on a
//! free loopback port with a temporary directory and no persistence, and
//! killed when the guard drops. When neither works, the test fails under
//! `CI=true` and is skipped loudly otherwise.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The env var naming an already running server.
pub(crate) const URL_VAR: &str = "ARCGIS_AUTH_TEST_REDIS_URL";

/// A server for one test; kills the server it started on drop.
pub(crate) struct TestRedis {
    pub(crate) url: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl TestRedis {
    /// A server, or `None` (after a loud notice) when there is none and this is not CI.
    pub(crate) fn get(test: &str) -> Option<TestRedis> {
        if let Ok(url) = std::env::var(URL_VAR) {
            return Some(TestRedis {
                url,
                child: None,
                _dir: None,
            });
        }
        match start() {
            Ok(server) => Some(server),
            Err(why) => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(
                    !ci,
                    "CI=true but no Redis for `{test}`: {why}. Install redis-server \
                     (Debian: apt-get install redis-server) or set {URL_VAR}=redis://127.0.0.1:PORT"
                );
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !! SKIPPED `{test}`: no Redis ({why}).\n\
                     !! Install redis-server or set {URL_VAR}; CI=true makes this a failure.\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
                None
            }
        }
    }

    /// A random key prefix, so tests sharing a server never see each other.
    pub(crate) fn prefix() -> String {
        use std::hash::{BuildHasher, RandomState};
        format!(
            "arcgis-auth-test-{:016x}",
            RandomState::new().hash_one(Instant::now())
        )
    }
}

fn start() -> Result<TestRedis, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    start_on(port)
}

/// Starts a private server on `port` (to bring a killed one back).
pub(crate) fn start_on(port: u16) -> Result<TestRedis, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
    let mut child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start redis-server: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited at start: {status}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("redis-server did not listen within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(TestRedis {
        url: format!("redis://127.0.0.1:{port}/"),
        child: Some(child),
        _dir: Some(dir),
    })
}
