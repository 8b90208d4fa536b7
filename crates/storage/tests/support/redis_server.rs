//! A loopback `redis-server` for tests.
//!
//! With `ARCGIS_AUTH_TEST_REDIS_URL` set, tests use that server (under a random
//! key prefix, never flushing it). Otherwise a `redis-server` is started on a
//! free loopback port with a temporary directory and no persistence, and
//! killed when the guard drops. When neither works, the test fails under
//! `CI=true` and is skipped loudly otherwise.
//!
//! [`TestRedis::get_tls`] always starts its own TLS-only server (plain port
//! off), with a CA and a server certificate for `127.0.0.1` (only) made at test time
//! by the `openssl` command line (Debian package `openssl`).

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
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
        or_skip(test, start())
    }

    /// A private TLS-only server whose certificate a fresh CA signed, or
    /// `None` (after a loud notice) when it cannot be started and this is
    /// not CI. Never the server named by [`URL_VAR`]: that one has no
    /// certificate this test knows the CA of.
    pub(crate) fn get_tls(test: &str) -> Option<TlsRedis> {
        or_skip(test, start_tls())
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

/// A TLS-only server and the certificates of the test's two CAs.
pub(crate) struct TlsRedis {
    /// The server, at a `rediss://127.0.0.1:PORT/` URL.
    pub(crate) server: TestRedis,
    /// PEM of the CA that signed the server's certificate.
    pub(crate) ca_pem: Vec<u8>,
    /// PEM of another CA, which signed nothing the server holds.
    pub(crate) other_ca_pem: Vec<u8>,
}

/// The server, or `None` after a loud notice; under `CI=true` a panic instead.
fn or_skip<T>(test: &str, started: Result<T, String>) -> Option<T> {
    match started {
        Ok(server) => Some(server),
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "CI=true but no Redis for `{test}`: {why}. Install redis-server and openssl \
                 (Debian: apt-get install redis-server openssl) or set \
                 {URL_VAR}=redis://127.0.0.1:PORT"
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

fn free_port() -> Result<u16, String> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port())
}

fn start() -> Result<TestRedis, String> {
    start_on(free_port()?)
}

/// Starts a private server on `port` (to bring a killed one back).
pub(crate) fn start_on(port: u16) -> Result<TestRedis, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
    let url = format!("redis://127.0.0.1:{port}/");
    spawn(&["--port", &port.to_string()], port, dir, url)
}

/// Makes a CA, a server certificate it signs for `127.0.0.1` only (not
/// `localhost`, for a name mismatch to test), and another CA, then starts a server listening on TLS only.
fn start_tls() -> Result<TlsRedis, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"))?;
    let d = dir.path();
    make_ca(d, "ca")?;
    make_ca(d, "other-ca")?;
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| format!("cannot write server.ext: {e}"))?;
    openssl(
        d,
        &format!("req {NEW_EC_KEY} -keyout server.key -out server.csr -subj /CN=localhost"),
    )?;
    openssl(
        d,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 2 \
         -extfile server.ext -out server.pem",
    )?;
    let read =
        |name: &str| std::fs::read(d.join(name)).map_err(|e| format!("cannot read {name}: {e}"));
    let ca_pem = read("ca.pem")?;
    let other_ca_pem = read("other-ca.pem")?;
    let path = |name: &str| d.join(name).to_string_lossy().into_owned();
    let (cert, key, ca) = (path("server.pem"), path("server.key"), path("ca.pem"));
    let port = free_port()?;
    let server = spawn(
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
        port,
        dir,
        format!("rediss://127.0.0.1:{port}/"),
    )?;
    Ok(TlsRedis {
        server,
        ca_pem,
        other_ca_pem,
    })
}

/// `openssl req` arguments for a new P-256 key, unencrypted.
const NEW_EC_KEY: &str = "-new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1";

/// A self-signed CA: `<name>.key` and `<name>.pem` in `dir`.
fn make_ca(dir: &Path, name: &str) -> Result<(), String> {
    openssl(
        dir,
        &format!(
            "req -x509 {NEW_EC_KEY} -keyout {name}.key -out {name}.pem -days 2 \
             -subj /CN=arcgis-auth-test-{name} -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign"
        ),
    )
}

/// Runs `openssl` in `dir` with `args` (split on whitespace; no argument holds a space).
fn openssl(dir: &Path, args: &str) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Starts `redis-server` with `listen` args (its ports) in `dir`, and waits
/// until `port` accepts connections.
fn spawn(
    listen: &[&str],
    port: u16,
    dir: tempfile::TempDir,
    url: String,
) -> Result<TestRedis, String> {
    let mut child = Command::new("redis-server")
        .args(listen.iter().map(OsStr::new))
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
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
        url,
        child: Some(child),
        _dir: Some(dir),
    })
}
