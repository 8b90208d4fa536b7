//! `KerberosRealm`: a throwaway MIT Kerberos realm on loopback (its own
//! KDC, principals, keytabs and a signed-in user's credential cache).

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind};

/// The realm every [`KerberosRealm`] is named.
pub const KERBEROS_REALM: &str = "ARCGIS.TEST";

/// The user principal's name (without the realm) in a [`KerberosRealm`].
pub const KERBEROS_USER: &str = "jdoe";

/// The second service of a [`KerberosRealm`], whose keytab
/// ([`KerberosRealm::env_with_wrong_service`]) cannot verify tickets for
/// `HTTP/<host>`.
pub const WRONG_SERVICE: &str = "HTTP/other.arcgis.test";

/// A throwaway MIT realm ([`KERBEROS_REALM`]) in a temporary directory:
/// `krb5.conf`/`kdc.conf`, a database made with `kdb5_util create -s`, a KDC
/// (`krb5kdc -n`) on a free loopback port, the principals
/// [`KERBEROS_USER`], `HTTP/<host>` and [`WRONG_SERVICE`] with their keytabs,
/// and a FILE credential cache filled by `kinit -k -t user.keytab`. The KDC
/// stops and the directory is removed on drop.
///
/// Kerberos reads its configuration from process-global environment
/// variables (`KRB5_CONFIG`, `KRB5CCNAME`, `KRB5_KTNAME`): give
/// [`env`](Self::env) to a child process when spawning it (the CLI binary,
/// or a test binary re-run as a worker with [`TestWorker`](crate::TestWorker)),
/// never `std::env::set_var` in a multi-threaded test.
///
/// Needs Debian's `krb5-kdc`, `krb5-admin-server` and `krb5-user`.
#[derive(Debug)]
pub struct KerberosRealm {
    dir: PathBuf,
    host: String,
    kdc: Child,
    port: u16,
}

fn realm_error(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("the Kerberos test realm could not be set up ({what}: {detail})"),
    )
}

impl KerberosRealm {
    /// Starts a realm whose web service is `HTTP/<host>` (`host` as the
    /// client dials it: `127.0.0.1` for the testkit's URLs).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when a Kerberos tool is missing or fails
    /// (the message names it and what it said).
    pub fn start(host: &str) -> Result<Self, Error> {
        let dir = unique_dir()?;
        let port = free_port()?;
        let realm = KerberosRealm::configure(&dir, host, port)?;
        Ok(realm)
    }

    /// [`start`](Self::start) for the test named `test`: `None` after a
    /// loud notice on standard error when the Kerberos tools are missing,
    /// or, under `CI=true`, a panic that fails the test: CI never skips a
    /// Kerberos test.
    pub fn for_test(test: &str, host: &str) -> Option<Self> {
        let missing = ["krb5kdc", "kdb5_util", "kadmin.local", "kinit"]
            .into_iter()
            .find(|tool| find_tool(tool).is_none());
        let started = match missing {
            Some(tool) => Err(format!("`{tool}` is not installed")),
            None => KerberosRealm::start(host).map_err(|e| e.to_string()),
        };
        match started {
            Ok(realm) => Some(realm),
            Err(why) => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(
                    !ci,
                    "CI=true but no Kerberos realm for `{test}`: {why}. Install krb5-kdc, \
                     krb5-admin-server and krb5-user (Debian: apt-get install krb5-kdc \
                     krb5-admin-server krb5-user)"
                );
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !! SKIPPED `{test}`: no Kerberos realm ({why}).\n\
                     !! Install krb5-kdc, krb5-admin-server and krb5-user; CI=true makes \
                     this a failure.\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
                None
            }
        }
    }

    fn configure(dir: &Path, host: &str, port: u16) -> Result<Self, Error> {
        let d = dir.display();
        let krb5_conf = format!(
            "[libdefaults]\n\
             \tdefault_realm = {KERBEROS_REALM}\n\
             \tdns_lookup_kdc = false\n\
             \tdns_lookup_realm = false\n\
             \tdns_canonicalize_hostname = false\n\
             \trdns = false\n\
             \tudp_preference_limit = 1\n\
             \tticket_lifetime = 10h\n\
             [realms]\n\
             \t{KERBEROS_REALM} = {{\n\
             \t\tkdc = 127.0.0.1:{port}\n\
             \t}}\n\
             [domain_realm]\n\
             \t{host} = {KERBEROS_REALM}\n\
             \t127.0.0.1 = {KERBEROS_REALM}\n\
             \tlocalhost = {KERBEROS_REALM}\n"
        );
        let kdc_conf = format!(
            "[kdcdefaults]\n\
             \tkdc_ports = {port}\n\
             \tkdc_tcp_ports = {port}\n\
             [realms]\n\
             \t{KERBEROS_REALM} = {{\n\
             \t\tdatabase_name = {d}/principal\n\
             \t\tkey_stash_file = {d}/stash\n\
             \t\tacl_file = {d}/kadm5.acl\n\
             \t\tkdc_ports = {port}\n\
             \t\tkdc_tcp_ports = {port}\n\
             \t}}\n\
             [logging]\n\
             \tkdc = FILE:{d}/kdc.log\n"
        );
        write(&dir.join("krb5.conf"), &krb5_conf)?;
        write(&dir.join("kdc.conf"), &kdc_conf)?;
        write(&dir.join("kadm5.acl"), "")?;
        let tool = |name: &str| -> Command {
            let mut c = Command::new(find_tool(name).unwrap_or_else(|| PathBuf::from(name)));
            c.env("KRB5_CONFIG", dir.join("krb5.conf"))
                .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"))
                .env("KRB5CCNAME", format!("FILE:{d}/admin-ccache"))
                .stdin(Stdio::null());
            c
        };
        run(
            tool("kdb5_util").args(["create", "-s", "-r", KERBEROS_REALM, "-P", "test-master"]),
            "kdb5_util create",
        )?;
        let service = format!("HTTP/{host}");
        for principal in [KERBEROS_USER, service.as_str(), WRONG_SERVICE] {
            run(
                tool("kadmin.local").args([
                    "-r",
                    KERBEROS_REALM,
                    "-q",
                    &format!("addprinc -randkey {principal}"),
                ]),
                "kadmin.local addprinc",
            )?;
        }
        for (principal, keytab) in [
            (KERBEROS_USER, "user.keytab"),
            (service.as_str(), "http.keytab"),
            (WRONG_SERVICE, "wrong.keytab"),
        ] {
            run(
                tool("kadmin.local").args([
                    "-r",
                    KERBEROS_REALM,
                    "-q",
                    &format!("ktadd -k {d}/{keytab} -norandkey {principal}"),
                ]),
                "kadmin.local ktadd",
            )?;
        }
        let kdc = tool("krb5kdc")
            .args(["-n", "-r", KERBEROS_REALM])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| realm_error("krb5kdc", e))?;
        let mut realm = KerberosRealm {
            dir: dir.to_owned(),
            host: host.to_owned(),
            kdc,
            port,
        };
        realm.wait_for_kdc()?;
        run(
            tool("kinit")
                .env("KRB5CCNAME", realm.ccache())
                .args(["-k", "-t"])
                .arg(dir.join("user.keytab"))
                .arg(realm.user_principal()),
            "kinit -k -t user.keytab",
        )?;
        Ok(realm)
    }

    /// Waits (at most 20 s) until the KDC accepts TCP connections.
    fn wait_for_kdc(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Ok(Some(status)) = self.kdc.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("kdc.log")).unwrap_or_default();
                return Err(realm_error("krb5kdc exited", format!("{status}: {log}")));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(realm_error("krb5kdc", "not listening after 20 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The realm's name ([`KERBEROS_REALM`]).
    pub fn realm(&self) -> &str {
        KERBEROS_REALM
    }

    /// The signed-in user, `jdoe@ARCGIS.TEST`: the web-tier user the
    /// Negotiate web tier reports.
    pub fn user_principal(&self) -> String {
        format!("{KERBEROS_USER}@{KERBEROS_REALM}")
    }

    /// The web service's principal, `HTTP/<host>@ARCGIS.TEST`.
    pub fn service_principal(&self) -> String {
        format!("HTTP/{}@{KERBEROS_REALM}", self.host)
    }

    /// The user's FILE credential cache (`FILE:<dir>/ccache`).
    pub fn ccache(&self) -> String {
        format!("FILE:{}/ccache", self.dir.display())
    }

    /// The environment of a process that is both the signed-in user
    /// (`KRB5CCNAME`: the user's ticket cache) and the web tier
    /// (`KRB5_KTNAME`: the keytab of `HTTP/<host>`): `KRB5_CONFIG`,
    /// `KRB5CCNAME`, `KRB5_KTNAME` and `KRB5RCACHEDIR` (the acceptor's replay
    /// cache, kept in the realm's directory).
    pub fn env(&self) -> Vec<(String, OsString)> {
        let d = &self.dir;
        vec![
            ("KRB5_CONFIG".into(), d.join("krb5.conf").into()),
            ("KRB5CCNAME".into(), self.ccache().into()),
            ("KRB5_KTNAME".into(), keytab(&d.join("http.keytab"))),
            ("KRB5RCACHEDIR".into(), d.as_os_str().to_owned()),
        ]
    }

    /// [`env`](Self::env) with an empty credential cache: a user who never ran `kinit`.
    pub fn env_without_ticket(&self) -> Vec<(String, OsString)> {
        let mut env = self.env();
        let empty = format!("FILE:{}/empty-ccache", self.dir.display());
        set(&mut env, "KRB5CCNAME", empty.into());
        env
    }

    /// [`env`](Self::env) with a web tier whose keytab holds only
    /// [`WRONG_SERVICE`]'s key: the user's ticket for `HTTP/<host>` is
    /// for a service this web server is not.
    pub fn env_with_wrong_service(&self) -> Vec<(String, OsString)> {
        let mut env = self.env();
        set(
            &mut env,
            "KRB5_KTNAME",
            keytab(&self.dir.join("wrong.keytab")),
        );
        env
    }
}

impl Drop for KerberosRealm {
    fn drop(&mut self) {
        let _ = self.kdc.kill();
        let _ = self.kdc.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn keytab(path: &Path) -> OsString {
    let mut s = OsString::from("FILE:");
    s.push(path);
    s
}

fn set(env: &mut [(String, OsString)], name: &str, value: OsString) {
    for (k, v) in env.iter_mut() {
        if k == name {
            *v = value.clone();
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| realm_error(&path.display().to_string(), e))
}

/// Runs a set-up command, its output in the error when it fails.
fn run(command: &mut Command, what: &str) -> Result<(), Error> {
    let out = command.output().map_err(|e| realm_error(what, e))?;
    if !out.status.success() {
        return Err(realm_error(
            what,
            format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(())
}

/// `name` on `PATH`, or in `/usr/sbin` and `/sbin` (where Debian puts the KDC tools).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A new private directory under the system's temporary directory.
fn unique_dir() -> Result<PathBuf, Error> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "arcgis-auth-krb5-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let dir = std::env::temp_dir().join(name);
    std::fs::create_dir(&dir).map_err(|e| realm_error("temporary directory", e))?;
    Ok(dir)
}

/// A loopback port free for both TCP and UDP (the KDC listens on both).
fn free_port() -> Result<u16, Error> {
    for _ in 0..20 {
        let tcp = TcpListener::bind("127.0.0.1:0").map_err(|e| realm_error("free port", e))?;
        let port = tcp
            .local_addr()
            .map_err(|e| realm_error("free port", e))?
            .port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(realm_error("free port", "no port free for TCP and UDP"))
}
