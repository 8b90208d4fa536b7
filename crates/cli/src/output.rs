//! Where things are printed: results on stdout, everything else on stderr.

use std::fmt::Display;
use std::io::{self, Write};

use crate::exit::{CliError, OTHER};

/// `arcgis-auth: <message>` on stderr. Failures to write are ignored: there
/// is nowhere left to report them.
pub(crate) fn error(message: impl Display) {
    let _ = writeln!(io::stderr().lock(), "arcgis-auth: {message}");
}

/// A progress or status line for the user, on stderr.
pub(crate) fn progress(message: impl Display) {
    let _ = writeln!(io::stderr().lock(), "{message}");
}

/// Writes a result to stdout and flushes it.
pub(crate) fn result(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new(OTHER, format!("cannot write to standard output ({e})")))
}

/// One line of result on stdout.
pub(crate) fn result_line(line: impl Display) -> Result<(), CliError> {
    result(format!("{line}\n").as_bytes())
}

/// A JSON value on stdout, on one line.
pub(crate) fn result_json(value: &serde_json::Value) -> Result<(), CliError> {
    result_line(value)
}
