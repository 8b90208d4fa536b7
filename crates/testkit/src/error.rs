//! The testkit's one error type.

use std::fmt;

/// What went wrong, for matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The portal's configuration cannot work (a duplicate client id, an
    /// unparsable redirect URI, a signed-in user that was never added…).
    InvalidConfig,
    /// A control named a user the portal does not know.
    UnknownUser,
    /// A control named an app (client id) the portal does not know.
    UnknownApp,
    /// A control named an API key the portal never created.
    UnknownApiKey,
    /// Playing the browser failed: the authorize URL is not this portal's,
    /// the request failed, or the portal showed a page instead of redirecting
    /// (an error page, or the sign-in page when nobody is signed in).
    Browser,
}

/// A testkit error: a [`kind`](Error::kind) to match on and a message saying
/// what to change.
///
/// ```
/// use arcgis_auth_testkit::{ErrorKind, FakePortal};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let portal = FakePortal::builder().user("jdoe", "pw").start().await;
/// let err = portal.set_signed_in_user("nobody").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::UnknownUser);
/// assert!(err.to_string().contains("nobody"));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
