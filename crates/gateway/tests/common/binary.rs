//! The real `arcgis-auth-gateway` binary, started on a configuration file.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_arcgis-auth-gateway");

/// Starts the gateway on `config` with `env` added to its environment and
/// waits for its one stdout line: its base URL (`http://ADDR:PORT`) and the
/// process (killed when dropped).
pub async fn start_binary(config: &Path, env: &[(&str, &str)]) -> (String, Child) {
    let mut child = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the gateway");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await
        .expect("read")
        .expect("the listening line");
    let base = line
        .strip_prefix("listening on ")
        .expect("listening on http://ADDR:PORT")
        .to_owned();
    (base, child)
}
