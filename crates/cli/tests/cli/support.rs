//! The harness: a fake portal in this process, the real binary in others.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, Timestamp};
use arcgis_auth_storage::{FileStore, SaveMode, SessionStore};
use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, FakePortal, PASSWORD, PUBLIC_CLIENT_ID,
    USERNAME,
};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_arcgis-auth");

/// Env vars that must not leak from the developer's shell into the binary.
const CLEARED: &[&str] = &[
    "ARCGIS_PORTAL",
    "ARCGIS_AUTH_STORE",
    "ARCGIS_AUTH_PROFILE",
    "ARCGIS_CLIENT_SECRET",
    "ARCGIS_PASSWORD",
    "ARCGIS_PKCS12_PASSWORD",
    "ARCGIS_CA_CERT",
    "XDG_CONFIG_HOME",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "BROWSER",
    "RUST_BACKTRACE",
];

/// A fake portal, a temporary home with a file store, and ways to run the binary.
pub(crate) struct Setup {
    pub(crate) portal: FakePortal,
    pub(crate) dir: tempfile::TempDir,
    /// `--store` for every command (default: the file store in `dir`).
    pub(crate) store: String,
}

impl Setup {
    pub(crate) async fn start() -> Setup {
        Setup::with_portal(FakePortal::start().await)
    }

    /// As [`start`](Self::start), with `portal` instead of the default one.
    pub(crate) fn with_portal(portal: FakePortal) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("file:{}", dir.path().join("sessions.json").display());
        Setup { portal, dir, store }
    }

    /// The store file.
    pub(crate) fn store_path(&self) -> PathBuf {
        self.dir.path().join("sessions.json")
    }

    /// The binary with a clean environment (`HOME` in the temporary
    /// directory), without `--portal` or `--store`.
    pub(crate) fn base(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for var in CLEARED {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// The binary with a clean environment, `--portal` and `--store`, then `args`.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.base();
        cmd.arg("--portal")
            .arg(self.portal.portal_url())
            .arg("--store")
            .arg(&self.store)
            .args(args);
        cmd
    }

    /// As [`command`](Self::command), for `assert_cmd` assertions.
    pub(crate) fn cmd(&self, args: &[&str]) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command(args))
    }

    /// `login app` with the testkit's confidential app, as profile `profile`.
    pub(crate) fn login_app(&self, profile: &str) {
        let args = [
            "--profile",
            profile,
            "login",
            "app",
            "--client-id",
            CONFIDENTIAL_CLIENT_ID,
        ];
        quiet_success(
            self.cmd(&args)
                .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET),
        );
    }

    /// `login password` as the testkit's user (password from `ARCGIS_PASSWORD`).
    pub(crate) fn login_password(&self, profile: &str) {
        quiet_success(
            self.cmd(&[
                "--profile",
                profile,
                "login",
                "password",
                "--username",
                USERNAME,
            ])
            .env("ARCGIS_PASSWORD", PASSWORD),
        );
    }

    /// Runs `args`, which must succeed and print one JSON value.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cmd(args).assert().success().get_output().clone();
        serde_json::from_str(&stdout_of(&out)).unwrap()
    }

    /// Starts `login user --client-id <public app> --no-browser` plus `extra`,
    /// with piped stdio, and reads its `Open:` line.
    pub(crate) fn spawn_login_user(&self, extra: &[&str]) -> LoginInProgress {
        let mut child = self
            .command(&[
                "login",
                "user",
                "--client-id",
                PUBLIC_CLIENT_ID,
                "--no-browser",
            ])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (url, stderr) = read_open_line(&mut child);
        LoginInProgress { child, url, stderr }
    }

    /// `token` for `profile`, which must succeed; returns the token.
    pub(crate) fn token(&self, profile: &str) -> String {
        let out = self
            .cmd(&["--profile", profile, "token"])
            .env("ARCGIS_CLIENT_SECRET", CONFIDENTIAL_CLIENT_SECRET)
            .assert()
            .success()
            .get_output()
            .clone();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let token = stdout
            .strip_suffix('\n')
            .expect("a newline after the token");
        assert!(
            !token.is_empty() && !token.contains(char::is_whitespace),
            "{stdout:?}"
        );
        token.to_owned()
    }

    /// The file store, opened by this process (the store's own crate).
    pub(crate) fn file_store(&self) -> Arc<dyn SessionStore> {
        Arc::new(FileStore::new(self.store_path()).unwrap())
    }

    /// Whether the portal issued `token` to the confidential app.
    pub(crate) fn is_app_token(&self, token: &str) -> bool {
        self.portal.issued_tokens().iter().any(|t| {
            t.token.expose_secret() == token
                && t.client_id.as_deref() == Some(CONFIDENTIAL_CLIENT_ID)
        })
    }
}

/// Makes the stored session of `profile` expire a minute ago, as the CLI's
/// (system) clock sees it, keeping everything else.
pub(crate) async fn expire(store: &Arc<dyn SessionStore>, profile: &str) {
    let key = format!("profile/{profile}");
    let stored = store.load(&key).await.unwrap().expect("a stored session");
    let mut record = stored.record;
    record.expires_at = Some(Timestamp::now().saturating_sub(Duration::from_secs(60)));
    store
        .save(&key, &record, SaveMode::Update(stored.version))
        .await
        .unwrap();
}

/// A `login user` process waiting for the browser (or the pasted code).
pub(crate) struct LoginInProgress {
    pub(crate) child: Child,
    /// The URL of the `Open:` line.
    pub(crate) url: String,
    stderr: BufReader<ChildStderr>,
}

impl LoginInProgress {
    /// Waits for the process; returns its status and the rest of its stderr,
    /// after checking it printed nothing on stdout.
    pub(crate) fn finish(mut self) -> (ExitStatus, String) {
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).unwrap();
        }
        assert_eq!(stdout, "", "nothing on stdout from login");
        (status, rest)
    }
}

/// Runs `cmd`, which must succeed without printing on stdout; returns stderr.
pub(crate) fn quiet_success(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().success().stdout("").get_output().clone();
    stderr_of(&out)
}

/// Reads the child's stderr until the `Open: <url>` line; returns the URL and
/// the rest of stderr (to keep the pipe open).
fn read_open_line(child: &mut Child) -> (String, BufReader<ChildStderr>) {
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr piped"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stderr.read_line(&mut line).unwrap();
        assert!(
            n > 0,
            "the binary exited before printing `Open:`; stderr: {seen}"
        );
        if let Some(url) = line.trim_end().strip_prefix("Open: ") {
            return (url.to_owned(), stderr);
        }
        seen.push_str(&line);
    }
}

/// The stdout of a finished command, as text.
pub(crate) fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The stderr of a finished command, as text.
pub(crate) fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts an error went to stderr as one line of `arcgis-auth: ...`, with no
/// panic or backtrace, and returns it.
pub(crate) fn one_line_error(output: &std::process::Output) -> String {
    let stderr = stderr_of(output);
    assert!(
        stdout_of(output).is_empty(),
        "stdout: {}",
        stdout_of(output)
    );
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("arcgis-auth: "), "stderr: {stderr}");
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "stderr: {stderr}");
    }
    stderr
}
