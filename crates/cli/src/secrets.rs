//! Reading client secrets, passwords and codes from the environment or stdin.
//!
//! Nothing read here is ever written anywhere: secrets go straight into
//! [`SecretString`]s handed to the library, which never stores them.

use std::io::{self, BufRead, IsTerminal, Write};

use arcgis_auth_core::SecretString;

use crate::cli::SecretArgs;
use crate::exit::CliError;

/// The env var holding the password for `login password`.
pub(crate) const PASSWORD_VAR: &str = "ARCGIS_PASSWORD";

/// The client secret from `--client-secret-stdin` or the env var named by
/// `--client-secret-env`. `Ok(None)` when the variable is unset or empty and
/// `required` is false.
pub(crate) fn client_secret(
    args: &SecretArgs,
    required: bool,
) -> Result<Option<SecretString>, CliError> {
    if args.client_secret_stdin {
        return read_stdin_line()
            .map(Some)
            .map_err(|e| e.context("--client-secret-stdin"));
    }
    let var = &args.client_secret_env;
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(Some(SecretString::from(value))),
        _ if required => Err(CliError::usage(format!(
            "no client secret: set the environment variable {var}, or pass it on standard \
             input with --client-secret-stdin"
        ))),
        _ => Ok(None),
    }
}

/// The password for `login password`: stdin with `--password-stdin`, else
/// `ARCGIS_PASSWORD`, else stdin (prompting without echo on a terminal).
pub(crate) fn password(username: &str, from_stdin: bool) -> Result<SecretString, CliError> {
    if !from_stdin {
        if let Ok(value) = std::env::var(PASSWORD_VAR)
            && !value.is_empty()
        {
            return Ok(SecretString::from(value));
        }
        if io::stdin().is_terminal() {
            let prompt = format!("Password for {username}: ");
            let value = rpassword::prompt_password(prompt).map_err(|e| {
                CliError::usage(format!(
                    "could not read the password from the terminal ({e}): set {PASSWORD_VAR} \
                     or pass --password-stdin"
                ))
            })?;
            return non_empty(value, "the password");
        }
    }
    read_stdin_line().map_err(|e| e.context("password"))
}

/// Prints `prompt` on stderr (when stdin is a terminal) and reads one line.
pub(crate) fn prompt_line(prompt: &str) -> Result<SecretString, CliError> {
    if io::stdin().is_terminal() {
        let mut stderr = io::stderr();
        let _ = write!(stderr, "{prompt}");
        let _ = stderr.flush();
    }
    read_stdin_line()
}

/// One line from stdin without its line ending; an empty line is a usage error.
fn read_stdin_line() -> Result<SecretString, CliError> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::usage(format!("could not read standard input ({e})")))?;
    let value = line.trim_end_matches(['\n', '\r']).to_owned();
    non_empty(value, "standard input")
}

fn non_empty(value: String, what: &str) -> Result<SecretString, CliError> {
    if value.is_empty() {
        return Err(CliError::usage(format!(
            "{what} is empty: nothing to sign in with"
        )));
    }
    Ok(SecretString::from(value))
}
