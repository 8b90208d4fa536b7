//! [`RedisServer`]: a loopback `redis-server` for tests, and its TLS-only
//! variant [`TlsRedisServer`].
//!
//! With [`REDIS_URL_VAR`] set, tests use that server (under a random key
//! prefix, never flushing it). Otherwise a `redis-server` (Debian package
//! `redis-server`) is started on a free loopback port, in a private
//! temporary directory without persistence, and killed when the guard
//! drops. When neither works, [`RedisServer::for_test`] fails the test under
//! `CI=true` and skips it loudly otherwise.
//!
//! [`TlsRedisServer::for_test`] always starts its own TLS-only server (plain
//! port off), with a CA and a server certificate for `127.0.0.1` (only) made
//! at test time by the `openssl` command line (Debian package `openssl`).

use std::ffi::OsStr;
use std::fmt;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::id::random_id;

/// The environment variable naming an already running server
/// (`redis://127.0.0.1:6379/`) for the tests to use instead of their own.
pub const REDIS_URL_VAR: &str = "ARCGIS_AUTH_TEST_REDIS_URL";

/// How long a started server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis server for a test: the one named by [`REDIS_URL_VAR`], or a
/// private `redis-server` on a free loopback port, killed when this is
/// dropped.
///
/// ```no_run
/// use arcgis_auth_storage::test_util::RedisServer;
///
/// // In a test: `None` (after a loud notice) when there is no Redis, except
/// // under `CI=true`, where the test fails instead.
/// let Some(server) = RedisServer::for_test("my_test") else {
///     return;
/// };
/// // Keys under a prefix of the test's own, as the server may be shared.
/// let prefix = RedisServer::unique_prefix();
/// println!("{} {prefix}", server.url());
/// ```
pub struct RedisServer {
    url: String,
    /// Set when the server is ours.
    own: Option<Own>,
}

/// A server this process started.
struct Own {
    port: u16,
    /// The extra `redis-server` arguments it was started with.
    args: Vec<String>,
    dir: TempDir,
    child: Option<Child>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A shared server's URL may carry a password: only say whose it is.
        f.debug_struct("RedisServer")
            .field("private", &self.own.is_some())
            .field("port", &self.port())
            .finish()
    }
}

impl RedisServer {
    /// The server for the test `test`: the one named by [`REDIS_URL_VAR`],
    /// else a private one. When there is neither, `None` after a loud notice
    /// on standard error, or, under `CI=true`, a panic that fails the test:
    /// CI never skips a Redis test.
    pub fn for_test(test: &str) -> Option<RedisServer> {
        or_skip(test, Self::shared_or_start())
    }

    /// A private server (never the shared one) started with the extra
    /// arguments of [`start_with`](Self::start_with), for a test that kills
    /// or reconfigures it; when it cannot be started, as
    /// [`for_test`](Self::for_test): `None` after a loud notice, or a panic
    /// under `CI=true`.
    pub fn private_for_test(test: &str, args: &[&str]) -> Option<RedisServer> {
        or_skip(test, Self::start_with(args))
    }

    /// The server named by [`REDIS_URL_VAR`], else a private one
    /// ([`start`](Self::start)); the error says what is missing.
    pub fn shared_or_start() -> Result<RedisServer, String> {
        match std::env::var(REDIS_URL_VAR) {
            Ok(url) => Ok(RedisServer { url, own: None }),
            Err(_) => Self::start(),
        }
    }

    /// A private server on a free loopback port, in a temporary directory
    /// of its own, without persistence; the error says what is missing.
    pub fn start() -> Result<RedisServer, String> {
        Self::start_with(&[])
    }

    /// A private server as [`start`](Self::start), with extra `redis-server`
    /// arguments after the defaults (later arguments win), e.g.
    /// `["--appendonly", "yes", "--appendfsync", "always"]` for one that
    /// keeps every acknowledged write across a [`kill`](Self::kill).
    pub fn start_with(args: &[&str]) -> Result<RedisServer, String> {
        let port = free_port()?;
        let args: Vec<String> = ["--port", &port.to_string()]
            .into_iter()
            .chain(args.iter().copied())
            .map(str::to_owned)
            .collect();
        let own = Own::start(port, args, TempDir::new()?)?;
        Ok(RedisServer {
            url: format!("redis://127.0.0.1:{port}/"),
            own: Some(own),
        })
    }

    /// The server's URL: `redis://127.0.0.1:PORT/` (`rediss://` for TLS),
    /// or the value of [`REDIS_URL_VAR`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port of a server this process started; `None` for a shared one.
    pub fn port(&self) -> Option<u16> {
        self.own.as_ref().map(|own| own.port)
    }

    /// Whether this process started the server (and so may kill it).
    pub fn is_private(&self) -> bool {
        self.own.is_some()
    }

    /// Kills a private server with `SIGKILL` (no shutdown, no final save),
    /// keeping its directory and port for [`restart`](Self::restart). Does
    /// nothing to a shared server.
    pub fn kill(&mut self) {
        if let Some(own) = &mut self.own {
            own.kill();
        }
    }

    /// Starts a killed private server again, on the same port, in the same
    /// directory, with the same arguments; waits until it listens. A running
    /// or shared server is left alone.
    pub fn restart(&mut self) -> Result<(), String> {
        match &mut self.own {
            Some(own) if own.child.is_none() => own.spawn(),
            _ => Ok(()),
        }
    }

    /// A random key prefix (`arcgis-auth-test-<hex>`), so tests sharing a
    /// server never see each other's keys.
    pub fn unique_prefix() -> String {
        format!("arcgis-auth-test-{}", random_id())
    }
}

impl Own {
    fn start(port: u16, args: Vec<String>, dir: TempDir) -> Result<Own, String> {
        let mut own = Own {
            port,
            args,
            dir,
            child: None,
        };
        own.spawn()?;
        Ok(own)
    }

    /// Starts `redis-server` and waits until the port accepts connections.
    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(self.args.iter().map(OsStr::new))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start redis-server ({e}): install it (Debian: apt-get install \
                     redis-server) or set {REDIS_URL_VAR}"
                )
            })?;
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited at start: {status}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "redis-server did not listen on 127.0.0.1:{} within {START_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        // Before the directory goes (`dir` drops after this).
        self.kill();
    }
}

/// A private TLS-only `redis-server` (its plain port off), at a
/// `rediss://127.0.0.1:PORT/` URL, and the certificates of two CAs made for
/// it with the `openssl` command line: the one that signed the server's
/// certificate (for `127.0.0.1` only, not `localhost`, so a name mismatch
/// can be tested), and another that signed nothing the server holds.
///
/// Never the server named by [`REDIS_URL_VAR`]: that one has no certificate
/// a test knows the CA of.
#[derive(Debug)]
pub struct TlsRedisServer {
    server: RedisServer,
    ca_pem: Vec<u8>,
    other_ca_pem: Vec<u8>,
}

impl TlsRedisServer {
    /// The server for the test `test`; when it cannot be started (no
    /// `redis-server` or no `openssl`), `None` after a loud notice, or under
    /// `CI=true` a panic that fails the test.
    pub fn for_test(test: &str) -> Option<TlsRedisServer> {
        or_skip(test, Self::start())
    }

    /// Makes the CAs and the server certificate, then starts the server;
    /// the error says what is missing.
    pub fn start() -> Result<TlsRedisServer, String> {
        let dir = TempDir::new()?;
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
        let read = |name: &str| {
            std::fs::read(d.join(name)).map_err(|e| format!("cannot read {name}: {e}"))
        };
        let ca_pem = read("ca.pem")?;
        let other_ca_pem = read("other-ca.pem")?;
        let path = |name: &str| d.join(name).to_string_lossy().into_owned();
        let port = free_port()?;
        let args = [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            path("server.pem"),
            "--tls-key-file".to_owned(),
            path("server.key"),
            "--tls-ca-cert-file".to_owned(),
            path("ca.pem"),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ];
        let own = Own::start(port, args.to_vec(), dir)?;
        Ok(TlsRedisServer {
            server: RedisServer {
                url: format!("rediss://127.0.0.1:{port}/"),
                own: Some(own),
            },
            ca_pem,
            other_ca_pem,
        })
    }

    /// The server, at a `rediss://127.0.0.1:PORT/` URL.
    pub fn server(&self) -> &RedisServer {
        &self.server
    }

    /// The server's URL, `rediss://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        self.server.url()
    }

    /// PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// PEM of another CA, which signed nothing the server holds.
    pub fn other_ca_pem(&self) -> &[u8] {
        &self.other_ca_pem
    }
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
                 {REDIS_URL_VAR}=redis://127.0.0.1:PORT"
            );
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED `{test}`: no Redis ({why}).\n\
                 !! Install redis-server or set {REDIS_URL_VAR}; CI=true makes this a failure.\n\
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
        .map_err(|e| {
            format!("cannot run openssl ({e}): install it (Debian: apt-get install openssl)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "openssl {args} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A fresh private directory under the system's temporary directory,
/// removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<TempDir, String> {
        let path = std::env::temp_dir().join(format!("arcgis-auth-redis-{}", random_id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_server_listens_until_killed_and_comes_back_on_its_port() {
        let Some(mut server) = RedisServer::for_test("test_util_private_server") else {
            return;
        };
        let Some(port) = server.port() else {
            return; // A shared server is never killed.
        };
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}/"));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        server.kill();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        server.restart().unwrap();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        let dir = server.own.as_ref().unwrap().dir.path().to_path_buf();
        assert!(dir.is_dir());
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        assert!(!dir.exists());
    }

    #[test]
    fn prefixes_differ() {
        assert_ne!(RedisServer::unique_prefix(), RedisServer::unique_prefix());
    }
}
