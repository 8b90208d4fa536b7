//! The one error type of `arcgis-auth-gateway`, with a kind to match on.

use std::fmt;

/// What kind of failure a [`GatewayError`] is. Match on this, not on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GatewayErrorKind {
    /// The configuration has problems; [`GatewayError::problems`] lists each one.
    Config,
    /// A file could not be read (the configuration, a secret file, a CA bundle).
    Io,
    /// The session store could not be opened.
    Store,
    /// The HTTP client for upstreams and token endpoints could not be built.
    Http,
    /// The listen address could not be bound.
    Bind,
}

/// What is wrong with one part of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file is not valid TOML, or has a field of the wrong type or an unknown field.
    Syntax,
    /// A secret is written in the file itself: use `*_env` or `*_file`.
    InlineSecret,
    /// A secret's environment variable is unset or empty, or its file unreadable or empty.
    MissingSecret,
    /// A URL (portal, server, route) cannot be used as written.
    BadUrl,
    /// A route names an app that no `[[apps]]` entry defines.
    UnknownApp,
    /// A route names a server that no `[[servers]]` entry defines.
    UnknownServer,
    /// A route's `auth` is not `none`, `app:NAME` or `server:NAME`.
    BadAuth,
    /// Two apps, servers or routes have the same name or URL.
    Duplicate,
    /// An `allowed_origins` entry is not an origin pattern.
    BadOrigin,
    /// A `trusted_proxies` entry is not an IP network.
    BadNetwork,
    /// `store` is not `memory`, `file:PATH`, `redis://…` or `rediss://…`.
    BadStore,
    /// `listen` is not an `IP:PORT` address.
    BadListen,
    /// A `proxy_paths` entry is not an absolute path, or collides with the gateway's own endpoints.
    BadProxyPath,
    /// A token would travel over plain `http://` to a host that is not loopback.
    InsecureRoute,
    /// A value is out of range (a zero rate limit, a zero timeout).
    BadValue,
}

/// One problem in a configuration: where (`at`, such as `routes[2].auth`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    kind: ProblemKind,
    at: String,
    message: String,
}

impl Problem {
    pub(crate) fn new(
        kind: ProblemKind,
        at: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            kind,
            at: at.into(),
            message: message.into(),
        }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    /// Where in the file: a key path such as `routes[2].auth`, or `line 4` for syntax errors.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// What is wrong and what to do.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// An error from `arcgis-auth-gateway`: a configuration that cannot be used,
/// or a resource the gateway could not open. Messages never contain a secret.
pub struct GatewayError {
    kind: GatewayErrorKind,
    message: String,
    problems: Vec<Problem>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl GatewayError {
    pub(crate) fn new(kind: GatewayErrorKind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            problems: Vec::new(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn config(problems: Vec<Problem>) -> Self {
        let n = problems.len();
        GatewayError {
            kind: GatewayErrorKind::Config,
            message: format!(
                "the configuration has {n} problem{}: fix {} and check it again",
                if n == 1 { "" } else { "s" },
                if n == 1 { "it" } else { "them" }
            ),
            problems,
            source: None,
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> GatewayErrorKind {
        self.kind
    }

    /// The configuration's problems, for [`GatewayErrorKind::Config`] (empty otherwise).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("problems", &self.problems)
            .field("source", &self.source)
            .finish()
    }
}

impl std::error::Error for GatewayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
