//! `TestWorker`: a test binary re-run as a worker process, with its own
//! environment, that reports one line.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind};

/// One run of the current test binary, filtered to one test
/// (`--exact NAME --nocapture`, plus `--ignored` for an `#[ignore]`d
/// worker test), with environment variables given at spawn: the way to
/// give a test process-global settings (`KRB5CCNAME`, a worker's part)
/// without `std::env::set_var` in a multi-threaded test.
///
/// The test finds its variables and plays the worker's part, printing one
/// line that starts with a prefix of its choosing; [`finish`](Self::finish)
/// waits for the exit and returns that line. Standard output is read on a
/// thread of its own from the start, so the pipe never fills up.
///
/// ```no_run
/// use arcgis_auth_testkit::TestWorker;
///
/// #[test]
/// fn parent() {
///     if std::env::var("MY_WORKER").is_ok() {
///         println!("my-worker ok");
///         return;
///     }
///     let worker = TestWorker::spawn("parent", [("MY_WORKER", "1")]).unwrap();
///     let (status, line) = worker.finish("my-worker ").unwrap();
///     assert!(status.success());
///     assert_eq!(line.as_deref(), Some("my-worker ok"));
/// }
/// ```
#[derive(Debug)]
pub struct TestWorker {
    child: Child,
    lines: Option<JoinHandle<Vec<String>>>,
}

impl TestWorker {
    /// Runs `test` (exactly) in a new process of this test binary with `env` added.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when the binary cannot be found or started.
    pub fn spawn<K, V>(test: &str, env: impl IntoIterator<Item = (K, V)>) -> Result<Self, Error>
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        TestWorker::spawn_with(test, false, env)
    }

    /// [`spawn`](Self::spawn) for a worker test marked `#[ignore]` (so that it
    /// runs only when asked for): adds `--ignored`.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_ignored<K, V>(
        test: &str,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error>
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        TestWorker::spawn_with(test, true, env)
    }

    fn spawn_with<K, V>(
        test: &str,
        ignored: bool,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error>
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let failed = |e: std::io::Error| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("the test binary could not be run again as a worker ({e})"),
            )
        };
        let exe = std::env::current_exe().map_err(failed)?;
        let mut command = Command::new(exe);
        command.args(["--exact", test, "--nocapture"]);
        if ignored {
            command.arg("--ignored");
        }
        let mut child = command
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(failed)?;
        let lines = child.stdout.take().map(|stdout| {
            std::thread::spawn(move || {
                // Read to the end (closing early would break the child's pipe).
                BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .collect()
            })
        });
        Ok(TestWorker { child, lines })
    }

    /// Whether the worker has exited (never blocks).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the worker to exit; its status and the first line of its
    /// output that starts with `prefix`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when the worker cannot be waited for.
    pub fn finish(mut self, prefix: &str) -> Result<(ExitStatus, Option<String>), Error> {
        let status = self.child.wait().map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("the worker process could not be waited for ({e})"),
            )
        })?;
        let lines = self
            .lines
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        Ok((status, lines.into_iter().find(|l| l.starts_with(prefix))))
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
