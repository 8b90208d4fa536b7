//! Exit statuses, and the one-sentence error a user sees.
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | anything else |
//! | 2 | usage error |
//! | 3 | sign-in required |
//! | 4 | the portal refused |
//! | 5 | network failure or an unusable response (or an unreachable store) |

use std::fmt;

use arcgis_auth_core::{Error as CoreError, ErrorKind};
use arcgis_auth_flows::{FlowError, FlowErrorKind};
use arcgis_auth_storage::{StoreError, StoreErrorKind};

/// Anything else: a damaged store, an internal error.
pub(crate) const OTHER: u8 = 1;
/// A bad option, value or URL.
pub(crate) const USAGE: u8 = 2;
/// No session, or it can only be renewed by signing in again.
pub(crate) const SIGN_IN: u8 = 3;
/// The portal refused (credentials, permissions, other ArcGIS errors).
pub(crate) const REFUSED: u8 = 4;
/// The network failed, or the answer could not be used.
pub(crate) const NETWORK: u8 = 5;

/// A failed command: the exit status and the sentence printed on stderr.
#[derive(Debug)]
pub(crate) struct CliError {
    code: u8,
    message: String,
}

impl CliError {
    /// An error with exit status `code`.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// A usage error (status 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::new(USAGE, message)
    }

    /// The exit status.
    pub(crate) fn code(&self) -> u8 {
        self.code
    }

    /// Adds context in front of the message (`context: message`).
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    /// One line: library messages are single sentences, but a stray newline
    /// (from an I/O error, say) must not break the "one line on stderr" rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for part in self
            .message
            .split(['\n', '\r'])
            .filter(|p| !p.trim().is_empty())
        {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(part.trim())?;
            first = false;
        }
        Ok(())
    }
}

/// The exit status for a core error kind.
pub(crate) fn for_core(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidUrl | ErrorKind::InsecureTransport | ErrorKind::InvalidInput => USAGE,
        ErrorKind::RefreshTokenExpired
        | ErrorKind::AccessDenied
        | ErrorKind::StateMismatch
        | ErrorKind::WebTierCredentialRequired => SIGN_IN,
        ErrorKind::WebTierCredentialRejected
        | ErrorKind::InvalidToken
        | ErrorKind::TokenRequired
        | ErrorKind::Forbidden
        | ErrorKind::InvalidClient
        | ErrorKind::InvalidGrant
        | ErrorKind::InvalidRequest
        | ErrorKind::ArcGis => REFUSED,
        ErrorKind::RateLimited
        | ErrorKind::Server
        | ErrorKind::Transport
        | ErrorKind::UnparseableResponse => NETWORK,
        _ => OTHER,
    }
}

/// The exit status for a store error kind.
pub(crate) fn for_store(kind: StoreErrorKind) -> u8 {
    match kind {
        StoreErrorKind::Unavailable => NETWORK,
        StoreErrorKind::InvalidInput => USAGE,
        _ => OTHER,
    }
}

/// The exit status for a flows error kind.
pub(crate) fn for_flow(kind: FlowErrorKind) -> u8 {
    match kind {
        FlowErrorKind::ArcGis(k) => for_core(k),
        FlowErrorKind::Store(k) => for_store(k),
        FlowErrorKind::NotRenewable => SIGN_IN,
        k if k.needs_sign_in() => SIGN_IN,
        FlowErrorKind::InvalidInput | FlowErrorKind::InvalidConfig => USAGE,
        _ => OTHER,
    }
}

/// `message`, followed by the operating system's reason when `err`'s cause
/// chain ends in an I/O error ("Connection refused (os error 111)"): the
/// libraries' messages say what failed and what to do, and leave the causes
/// to `source()`. Only an I/O error's text is added: other causes (a Redis
/// reply, say) may quote data.
fn with_os_reason(message: &str, err: &(dyn std::error::Error + 'static)) -> String {
    let mut reason = None;
    let mut next = err.source();
    while let Some(cause) = next {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            reason = Some(io.to_string());
        }
        next = cause.source();
    }
    match reason {
        Some(reason) if !message.contains(&reason) => format!("{message} ({reason})"),
        _ => message.to_owned(),
    }
}

/// The library's advice in the command line's words.
fn cli_wording(message: String) -> String {
    message
        .replace(
            "(HttpClient::with_root_certificates)",
            "with --ca-cert PEM or ARCGIS_CA_CERT",
        )
        .replace(
            "with RedisStoreBuilder::root_certificates",
            "with --ca-cert PEM or ARCGIS_CA_CERT",
        )
}

impl From<FlowError> for CliError {
    fn from(err: FlowError) -> Self {
        CliError::new(
            for_flow(err.kind()),
            cli_wording(with_os_reason(err.message(), &err)),
        )
    }
}

impl From<CoreError> for CliError {
    fn from(err: CoreError) -> Self {
        CliError::new(
            for_core(err.kind()),
            cli_wording(with_os_reason(err.message(), &err)),
        )
    }
}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        CliError::new(
            for_store(err.kind()),
            cli_wording(format!("session store: {}", err.message())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_reason_of_a_cause_is_said_once() {
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let core = CoreError::new(ErrorKind::Transport, "could not connect: check the network")
            .with_source(refused);
        let cli = CliError::from(FlowError::from(core));
        assert_eq!(
            cli.to_string(),
            "could not connect: check the network (Connection refused)"
        );
        let plain = CliError::from(CoreError::new(ErrorKind::Server, "retry later"));
        assert_eq!(plain.to_string(), "retry later");
    }

    #[test]
    fn kinds_map_to_the_documented_statuses() {
        assert_eq!(for_flow(FlowErrorKind::NoSession), SIGN_IN);
        assert_eq!(for_flow(FlowErrorKind::SignInRequired), SIGN_IN);
        assert_eq!(for_flow(FlowErrorKind::NotRenewable), SIGN_IN);
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::RefreshTokenExpired)),
            SIGN_IN
        );
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::InvalidClient)),
            REFUSED
        );
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::Forbidden)),
            REFUSED
        );
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::InvalidGrant)),
            REFUSED
        );
        assert_eq!(for_flow(FlowErrorKind::ArcGis(ErrorKind::Server)), NETWORK);
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::Transport)),
            NETWORK
        );
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::UnparseableResponse)),
            NETWORK
        );
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::InvalidUrl)),
            USAGE
        );
        assert_eq!(
            for_flow(FlowErrorKind::ArcGis(ErrorKind::InsecureTransport)),
            USAGE
        );
        assert_eq!(
            for_flow(FlowErrorKind::Store(StoreErrorKind::Unavailable)),
            NETWORK
        );
        assert_eq!(
            for_flow(FlowErrorKind::Store(StoreErrorKind::Corrupt)),
            OTHER
        );
        assert_eq!(for_flow(FlowErrorKind::LockTimeout), OTHER);
    }

    #[test]
    fn messages_print_on_one_line() {
        let err = CliError::new(OTHER, "first line\nsecond line\r\n");
        assert_eq!(err.to_string(), "first line second line");
        let err = CliError::usage("bad value").context("--store");
        assert_eq!(err.to_string(), "--store: bad value");
        assert_eq!(err.code(), USAGE);
    }
}
