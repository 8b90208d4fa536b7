//! `gateway.toml`: reading, validating and resolving the gateway's configuration.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arcgis_auth_core::{Portal, SecretString, ServerRoot};
use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

use crate::error::{GatewayError, GatewayErrorKind, Problem, ProblemKind};
use crate::origins::OriginPattern;
use crate::ratelimit::RateLimit;
use crate::routes::{Auth, Route, RouteUrl};

/// The listen address when neither the file nor `--listen` gives one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The proxy paths when the file gives none: resource-proxy's, so deployed apps keep working.
pub const DEFAULT_PROXY_PATHS: [&str; 4] = ["/proxy", "/proxy.ashx", "/proxy.php", "/proxy.jsp"];

/// How long an upstream may take to answer when the file does not say (the Maps SDK waits 62 s).
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// `GET /token`'s limit per client when the file does not set `token_rate_limit`.
pub const DEFAULT_TOKEN_RATE_LIMIT: RateLimit = RateLimit {
    requests: 60,
    per: Duration::from_secs(60),
};

/// How long SIGTERM waits for requests in flight when the file does not say.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Where the gateway keeps app and server sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// In this process only.
    Memory,
    /// A JSON file (shared safely by processes on one machine).
    File(PathBuf),
    /// A Redis server (`redis://…` or `rediss://…`), shared by a fleet.
    Redis(String),
}

impl StoreSpec {
    /// Parses `memory`, `file:PATH`, `redis://…` or `rediss://…`.
    pub fn parse(text: &str) -> Option<StoreSpec> {
        if text == "memory" {
            Some(StoreSpec::Memory)
        } else if let Some(path) = text.strip_prefix("file:") {
            (!path.is_empty()).then(|| StoreSpec::File(PathBuf::from(path)))
        } else if text.starts_with("redis://") || text.starts_with("rediss://") {
            Some(StoreSpec::Redis(text.to_owned()))
        } else {
            None
        }
    }
}

/// An `[[apps]]` entry: app credentials (`client_credentials`) at a portal.
#[derive(Clone)]
pub struct AppConfig {
    /// The name routes refer to (`auth = "app:NAME"`).
    pub name: String,
    /// The portal the app is registered with (the file's `portal` unless the entry says otherwise).
    pub portal: Portal,
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret, read from its environment variable or file.
    pub client_secret: SecretString,
    /// Whether `GET /token?app=NAME` hands its token to allowed origins.
    pub vend: bool,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("name", &self.name)
            .field("portal", &self.portal)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("vend", &self.vend)
            .finish()
    }
}

/// A `[[servers]]` entry: a standalone ArcGIS Server's own account.
#[derive(Clone)]
pub struct ServerConfig {
    /// The name routes refer to (`auth = "server:NAME"`).
    pub name: String,
    /// The server's root (`https://host/arcgis`); its `tokens/generateToken` issues the tokens.
    pub root: ServerRoot,
    /// The account's user name.
    pub username: String,
    /// The account's password, read from its environment variable or file.
    pub password: SecretString,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("name", &self.name)
            .field("root", &self.root)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// The cookie that carries a signed-in user's session id when the file does not name one.
pub const DEFAULT_COOKIE_NAME: &str = "__Host-arcgis";

/// A user session's life when the file does not say: two weeks, ArcGIS's
/// default refresh token lifetime.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(336 * 3600);

/// The longest `session_ttl_hours`: 90 days, the longest refresh token ArcGIS issues.
const MAX_SESSION_TTL_HOURS: u64 = 2160;

/// `[user_sign_in]`: the gateway signs users in (a backend-for-frontend) and
/// keeps their tokens server-side, for routes with `auth = "user"`.
#[derive(Clone)]
pub struct UserSignInConfig {
    /// The portal users sign in to (the file's `portal` unless the section names another).
    pub portal: Portal,
    /// The app's client id, registered with the redirect URI
    /// [`redirect_uri`](Self::redirect_uri).
    pub client_id: String,
    /// The app's client secret (a confidential app), read from its variable or file.
    pub client_secret: Option<SecretString>,
    /// The origin browsers reach the gateway at (`https://app.example.com`).
    pub public_url: Url,
    /// A session's longest life from sign-in (at most 90 days); the sign-in
    /// asks for a refresh token of that lifetime.
    pub session_ttl: Duration,
    /// The session cookie's name (starts with `__Host-`).
    pub cookie_name: String,
}

impl UserSignInConfig {
    /// `{public_url}/auth/callback`, the redirect URI the app is registered with.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.public_origin())
    }

    /// `scheme://host[:port]` of [`public_url`](Self::public_url), as browsers send it in `Origin`.
    pub fn public_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }
}

impl std::fmt::Debug for UserSignInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSignInConfig")
            .field("portal", &self.portal)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("public_url", &self.public_url.as_str())
            .field("session_ttl", &self.session_ttl)
            .field("cookie_name", &self.cookie_name)
            .finish()
    }
}

/// A validated configuration, secrets resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The portal apps sign in to unless their entry names another.
    pub portal: Portal,
    /// Where sessions live.
    pub store: StoreSpec,
    /// The browser origins allowed to use the gateway.
    pub allowed_origins: Vec<OriginPattern>,
    /// The proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// `GET /token`'s limit per client.
    pub token_rate_limit: RateLimit,
    /// The paths that answer `<path>?<target URL>`.
    pub proxy_paths: Vec<String>,
    /// How long an upstream may take to send its answer's headers.
    pub upstream_timeout: Duration,
    /// How long a SIGTERM waits for the requests in flight before the process exits.
    pub shutdown_grace: Duration,
    /// Extra root certificates (a PEM bundle) for upstreams and token endpoints.
    pub ca_bundle: Option<PathBuf>,
    /// The apps.
    pub apps: Vec<AppConfig>,
    /// The standalone servers.
    pub servers: Vec<ServerConfig>,
    /// The routes.
    pub routes: Vec<Route>,
    /// `[user_sign_in]`, when the gateway signs users in.
    pub user_sign_in: Option<UserSignInConfig>,
    /// What the operator should know about the file that is not a problem
    /// (a resource-proxy file's inline secrets, settings not carried over).
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    portal: Option<String>,
    store: Option<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
    token_rate_limit: Option<RawRateLimit>,
    proxy_paths: Option<Vec<String>>,
    upstream_timeout_seconds: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
    ca_bundle: Option<PathBuf>,
    #[serde(default)]
    apps: Vec<RawApp>,
    #[serde(default)]
    servers: Vec<RawServer>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    user_sign_in: Option<RawUserSignIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserSignIn {
    client_id: String,
    portal: Option<String>,
    client_secret: Option<toml::Value>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    public_url: String,
    session_ttl_hours: Option<u64>,
    cookie_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApp {
    name: String,
    client_id: String,
    portal: Option<String>,
    client_secret: Option<toml::Value>,
    client_secret_env: Option<String>,
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    vend: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
    url: String,
    username: String,
    password: Option<toml::Value>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    url: String,
    #[serde(default)]
    match_all: bool,
    #[serde(default = "default_auth")]
    auth: String,
    rate_limit: Option<RawRateLimit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    requests: u64,
    per_seconds: u64,
}

fn default_auth() -> String {
    "none".to_owned()
}

/// Where secrets come from: the process environment, or a test's own map.
pub trait Environment {
    /// The value of the variable `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A resource-proxy file's inline secrets, over the environment.
struct Overlay<'a> {
    secrets: &'a BTreeMap<String, String>,
    env: &'a dyn Environment,
}

impl Environment for Overlay<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.secrets
            .get(name)
            .cloned()
            .or_else(|| self.env.var(name))
    }
}

impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Config {
    /// Reads and validates the file at `path`, secrets from the process environment.
    ///
    /// Errors: [`GatewayErrorKind::Io`] when the file cannot be read,
    /// [`GatewayErrorKind::Config`] with every problem found.
    pub fn load(path: &Path) -> Result<Config, GatewayError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            GatewayError::new(
                GatewayErrorKind::Io,
                format!(
                    "could not read the configuration {}: check the path",
                    path.display()
                ),
            )
            .with_source(e)
        })?;
        if crate::import::is_resource_proxy(&text) {
            Config::from_resource_proxy(&text, &ProcessEnv)
        } else {
            Config::from_toml(&text, &ProcessEnv)
        }
    }

    /// Reads a resource-proxy `proxy.config` (XML) or `proxy.json` as is: its
    /// inline secrets are accepted (each with a warning in
    /// [`warnings`](Config::warnings)), or taken from the variables
    /// [`import_resource_proxy`](crate::import_resource_proxy) names; it has no
    /// listen address, so [`DEFAULT_LISTEN`] applies.
    ///
    /// Errors: [`GatewayErrorKind::Config`] when the file cannot be read as
    /// either format, or the configuration it amounts to has problems.
    pub fn from_resource_proxy(text: &str, env: &dyn Environment) -> Result<Config, GatewayError> {
        let imported = crate::import::import_resource_proxy(text)?;
        let overlay = Overlay {
            secrets: &imported.secrets,
            env,
        };
        let mut config = Config::from_toml(&imported.toml, &overlay)?;
        config.warnings = imported
            .warnings
            .into_iter()
            .filter(|w| !w.contains("inline"))
            .collect();
        for name in imported.secrets.keys() {
            config.warnings.push(format!(
                "an inline secret of the resource-proxy file is used for {name}: move it to that \
                 environment variable (see `arcgis-auth-gateway import`)"
            ));
        }
        Ok(config)
    }

    /// Parses and validates `text` (a `gateway.toml`), reading secrets from `env`
    /// and from the files it names. Every problem is reported, not only the first.
    pub fn from_toml(text: &str, env: &dyn Environment) -> Result<Config, GatewayError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    format!(
                        "line {}",
                        text[..s.start.min(text.len())].matches('\n').count() + 1
                    )
                })
                .unwrap_or_else(|| "file".to_owned());
            // The message only: toml's Display quotes the line, which may hold a secret.
            GatewayError::config(vec![Problem::new(
                ProblemKind::Syntax,
                at,
                e.message().trim(),
            )])
        })?;
        let mut v = Validator::default();
        let config = v.config(raw, env);
        match config {
            Some(c) if v.problems.is_empty() => Ok(c),
            _ => Err(GatewayError::config(v.problems)),
        }
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn push(&mut self, kind: ProblemKind, at: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(kind, at, message));
    }

    fn config(&mut self, raw: RawConfig, env: &dyn Environment) -> Option<Config> {
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = listen_text.parse::<SocketAddr>().map_err(|_| {
            self.push(
                ProblemKind::BadListen,
                "listen",
                "give an IP address and port, such as \"127.0.0.1:8080\" (port 0 picks a free one)",
            )
        });
        let portal = match raw.portal.as_deref() {
            None => Ok(Portal::arcgis_online()),
            Some(p) => Portal::parse(p).map_err(|e| {
                self.push(ProblemKind::BadUrl, "portal", e.to_string());
            }),
        };
        let store = match raw.store.as_deref() {
            None => Ok(StoreSpec::Memory),
            Some(s) => StoreSpec::parse(s).ok_or_else(|| {
                self.push(
                    ProblemKind::BadStore,
                    "store",
                    "use \"memory\", \"file:PATH\", \"redis://HOST:PORT\" or \"rediss://HOST:PORT\"",
                )
            }),
        };
        let allowed_origins = raw
            .allowed_origins
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                OriginPattern::parse(o)
                    .map_err(|e| {
                        self.push(ProblemKind::BadOrigin, format!("allowed_origins[{i}]"), e)
                    })
                    .ok()
            })
            .collect();
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let parsed = n
                    .parse::<IpNet>()
                    .or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from));
                parsed
                    .map_err(|_| {
                        self.push(
                            ProblemKind::BadNetwork,
                            format!("trusted_proxies[{i}]"),
                            "give a network such as \"10.0.0.0/8\" or an address",
                        )
                    })
                    .ok()
            })
            .collect();
        let proxy_paths = raw.proxy_paths.unwrap_or_else(|| {
            DEFAULT_PROXY_PATHS
                .iter()
                .map(|p| (*p).to_owned())
                .collect()
        });
        for (i, p) in proxy_paths.iter().enumerate() {
            let reserved = ["/token", "/healthz", "/readyz", "/metrics"];
            if !p.starts_with('/') || p.contains(['?', '#', '*', ':', '{', '}']) || p.len() < 2 {
                self.push(
                    ProblemKind::BadProxyPath,
                    format!("proxy_paths[{i}]"),
                    "a proxy path is an absolute path such as \"/proxy\"",
                );
            } else if reserved.contains(&p.as_str()) || p == "/auth" || p.starts_with("/auth/") {
                self.push(
                    ProblemKind::BadProxyPath,
                    format!("proxy_paths[{i}]"),
                    "this path is one of the gateway's own endpoints: choose another",
                );
            }
        }
        if proxy_paths.iter().collect::<HashSet<_>>().len() != proxy_paths.len() {
            self.push(
                ProblemKind::Duplicate,
                "proxy_paths",
                "a proxy path is listed twice",
            );
        }
        let upstream_timeout = match raw.upstream_timeout_seconds {
            None => DEFAULT_UPSTREAM_TIMEOUT,
            Some(0) => {
                self.push(
                    ProblemKind::BadValue,
                    "upstream_timeout_seconds",
                    "give at least 1 second",
                );
                DEFAULT_UPSTREAM_TIMEOUT
            }
            Some(s) => Duration::from_secs(s),
        };
        let token_rate_limit = match &raw.token_rate_limit {
            None => DEFAULT_TOKEN_RATE_LIMIT,
            Some(l) => self
                .rate_limit("token_rate_limit", l)
                .unwrap_or(DEFAULT_TOKEN_RATE_LIMIT),
        };
        let portal_ok = portal.as_ref().ok().cloned();
        let apps = self.apps(raw.apps, portal_ok.as_ref(), env);
        let servers = self.servers(raw.servers, env);
        let user_sign_in = raw
            .user_sign_in
            .and_then(|u| self.user_sign_in(u, portal_ok.as_ref(), env));
        let routes = self.routes(raw.routes, &apps, &servers, user_sign_in.is_some());
        Some(Config {
            listen: listen.ok()?,
            portal: portal.ok()?,
            store: store.ok()?,
            allowed_origins,
            trusted_proxies,
            token_rate_limit,
            proxy_paths,
            upstream_timeout,
            shutdown_grace: raw
                .shutdown_grace_seconds
                .map_or(DEFAULT_SHUTDOWN_GRACE, Duration::from_secs),
            ca_bundle: raw.ca_bundle,
            apps,
            servers,
            routes,
            user_sign_in,
            warnings: Vec::new(),
        })
    }

    fn user_sign_in(
        &mut self,
        raw: RawUserSignIn,
        portal: Option<&Portal>,
        env: &dyn Environment,
    ) -> Option<UserSignInConfig> {
        let at = "user_sign_in";
        let before = self.problems.len();
        let portal = match raw.portal.as_deref() {
            Some(p) => Portal::parse(p)
                .map_err(|e| self.push(ProblemKind::BadUrl, format!("{at}.portal"), e.to_string()))
                .ok(),
            None => portal.cloned(),
        };
        if raw.client_id.trim().is_empty() {
            self.push(
                ProblemKind::BadValue,
                format!("{at}.client_id"),
                "the client id is empty",
            );
        }
        let client_secret = if raw.client_secret.is_none()
            && raw.client_secret_env.is_none()
            && raw.client_secret_file.is_none()
        {
            None
        } else {
            self.secret(
                at,
                "client_secret",
                raw.client_secret,
                raw.client_secret_env,
                raw.client_secret_file,
                env,
            )
        };
        let public_url = self.public_url(&raw.public_url);
        let session_ttl = match raw.session_ttl_hours {
            None => Some(DEFAULT_SESSION_TTL),
            Some(h @ 1..=MAX_SESSION_TTL_HOURS) => Some(Duration::from_secs(h * 3600)),
            Some(_) => {
                self.push(
                    ProblemKind::BadValue,
                    format!("{at}.session_ttl_hours"),
                    "give 1 to 2160 hours: a session lives at most as long as the longest \
                     refresh token ArcGIS issues (90 days)",
                );
                None
            }
        };
        let cookie_name = raw
            .cookie_name
            .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned());
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if !cookie_name.starts_with("__Host-")
            || cookie_name.len() <= "__Host-".len()
            || !cookie_name.chars().all(token_char)
        {
            self.push(
                ProblemKind::BadValue,
                format!("{at}.cookie_name"),
                "the cookie name starts with `__Host-` (so browsers keep it to this origin,                  Secure, Path=/) and has only letters, digits and `-_.`",
            );
        }
        if self.problems.len() != before {
            return None;
        }
        Some(UserSignInConfig {
            portal: portal?,
            client_id: raw.client_id,
            client_secret,
            public_url: public_url?,
            session_ttl: session_ttl?,
            cookie_name,
        })
    }

    /// `https://host[:port]` (or `http://` to loopback): an origin, nothing more.
    fn public_url(&mut self, text: &str) -> Option<Url> {
        let at = "user_sign_in.public_url";
        let url = match Url::parse(text.trim()) {
            Ok(u) => u,
            Err(e) => {
                self.push(ProblemKind::BadUrl, at, format!("not a URL ({e})"));
                return None;
            }
        };
        let plain_path = url.path() == "/" || url.path().is_empty();
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || !plain_path
        {
            self.push(
                ProblemKind::BadUrl,
                at,
                "public_url is the origin browsers reach the gateway at, such as                  \"https://app.example.com\": no path, query or user name",
            );
            return None;
        }
        if url.scheme() == "http" && !arcgis_auth_core::__private::is_secure_or_loopback(&url) {
            self.push(
                ProblemKind::InsecureRoute,
                at,
                "a session cookie only travels over https:// (http:// is accepted for loopback \
                 only): write public_url with https://",
            );
            return None;
        }
        Some(url)
    }

    fn rate_limit(&mut self, at: &str, raw: &RawRateLimit) -> Option<RateLimit> {
        match (u32::try_from(raw.requests), raw.per_seconds) {
            (Ok(requests @ 1..), per @ 1..) => Some(RateLimit {
                requests,
                per: Duration::from_secs(per),
            }),
            _ => {
                self.push(
                    ProblemKind::BadValue,
                    at.to_owned(),
                    "requests and per_seconds are at least 1 (requests at most 4294967295)",
                );
                None
            }
        }
    }

    fn secret(
        &mut self,
        at: &str,
        field: &str,
        inline: Option<toml::Value>,
        from_env: Option<String>,
        from_file: Option<PathBuf>,
        env: &dyn Environment,
    ) -> Option<SecretString> {
        if inline.is_some() {
            self.push(
                ProblemKind::InlineSecret,
                format!("{at}.{field}"),
                format!(
                    "secrets are never written in gateway.toml: set {field}_env (an environment \
                     variable) or {field}_file (a file readable by the gateway only)"
                ),
            );
            return None;
        }
        match (from_env, from_file) {
            (Some(var), None) => match env.var(&var).filter(|v| !v.is_empty()) {
                Some(v) => Some(SecretString::from(v)),
                None => {
                    self.push(
                        ProblemKind::MissingSecret,
                        format!("{at}.{field}_env"),
                        format!("the environment variable {var} is not set or is empty"),
                    );
                    None
                }
            },
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(v) if !v.trim().is_empty() => Some(SecretString::from(v.trim().to_owned())),
                Ok(_) => {
                    self.push(
                        ProblemKind::MissingSecret,
                        format!("{at}.{field}_file"),
                        format!("{} is empty", path.display()),
                    );
                    None
                }
                Err(e) => {
                    self.push(
                        ProblemKind::MissingSecret,
                        format!("{at}.{field}_file"),
                        format!("could not read {} ({e})", path.display()),
                    );
                    None
                }
            },
            (Some(_), Some(_)) => {
                self.push(
                    ProblemKind::MissingSecret,
                    format!("{at}.{field}_env"),
                    format!("give {field}_env or {field}_file, not both"),
                );
                None
            }
            (None, None) => {
                self.push(
                    ProblemKind::MissingSecret,
                    at.to_owned(),
                    format!("no {field}: set {field}_env or {field}_file"),
                );
                None
            }
        }
    }

    fn name(&mut self, at: &str, name: &str, seen: &mut HashSet<String>) -> bool {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.push(
                ProblemKind::BadValue,
                format!("{at}.name"),
                "a name is letters, digits, '-', '_' or '.'",
            );
            return false;
        }
        if !seen.insert(name.to_owned()) {
            self.push(
                ProblemKind::Duplicate,
                format!("{at}.name"),
                format!("`{name}` is defined twice"),
            );
            return false;
        }
        true
    }

    fn apps(
        &mut self,
        raw: Vec<RawApp>,
        portal: Option<&Portal>,
        env: &dyn Environment,
    ) -> Vec<AppConfig> {
        let mut seen = HashSet::new();
        let mut apps = Vec::new();
        for (i, a) in raw.into_iter().enumerate() {
            let at = format!("apps[{i}]");
            let name_ok = self.name(&at, &a.name, &mut seen);
            let portal = match a.portal.as_deref() {
                Some(p) => Portal::parse(p)
                    .map_err(|e| {
                        self.push(ProblemKind::BadUrl, format!("{at}.portal"), e.to_string())
                    })
                    .ok(),
                None => portal.cloned(),
            };
            if a.client_id.trim().is_empty() {
                self.push(
                    ProblemKind::BadValue,
                    format!("{at}.client_id"),
                    "the client id is empty",
                );
            }
            let secret = self.secret(
                &at,
                "client_secret",
                a.client_secret,
                a.client_secret_env,
                a.client_secret_file,
                env,
            );
            if let (true, Some(portal), Some(client_secret)) = (name_ok, portal, secret) {
                apps.push(AppConfig {
                    name: a.name,
                    portal,
                    client_id: a.client_id,
                    client_secret,
                    vend: a.vend,
                });
            }
        }
        apps
    }

    fn servers(&mut self, raw: Vec<RawServer>, env: &dyn Environment) -> Vec<ServerConfig> {
        let mut seen = HashSet::new();
        let mut servers = Vec::new();
        for (i, s) in raw.into_iter().enumerate() {
            let at = format!("servers[{i}]");
            let name_ok = self.name(&at, &s.name, &mut seen);
            let root = match ServerRoot::parse(&s.url) {
                Ok(root) if !arcgis_auth_core::__private::is_secure_or_loopback(root.as_url()) => {
                    self.push(
                        ProblemKind::InsecureRoute,
                        format!("{at}.url"),
                        "a password is only sent over https:// (or http:// to loopback)",
                    );
                    None
                }
                Ok(root) => Some(root),
                Err(e) => {
                    self.push(ProblemKind::BadUrl, format!("{at}.url"), e.to_string());
                    None
                }
            };
            if s.username.trim().is_empty() {
                self.push(
                    ProblemKind::BadValue,
                    format!("{at}.username"),
                    "the user name is empty",
                );
            }
            let password = self.secret(
                &at,
                "password",
                s.password,
                s.password_env,
                s.password_file,
                env,
            );
            if let (true, Some(root), Some(password)) = (name_ok, root, password) {
                servers.push(ServerConfig {
                    name: s.name,
                    root,
                    username: s.username,
                    password,
                });
            }
        }
        servers
    }

    fn routes(
        &mut self,
        raw: Vec<RawRoute>,
        apps: &[AppConfig],
        servers: &[ServerConfig],
        user_sign_in: bool,
    ) -> Vec<Route> {
        let mut seen = HashSet::new();
        let mut routes = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let at = format!("routes[{i}]");
            let url = RouteUrl::parse(&r.url)
                .map_err(|e| self.push(ProblemKind::BadUrl, format!("{at}.url"), e))
                .ok();
            let auth = Auth::parse(&r.auth).or_else(|| {
                self.push(
                    ProblemKind::BadAuth,
                    format!("{at}.auth"),
                    "auth is \"none\", \"user\", \"app:NAME\" or \"server:NAME\"",
                );
                None
            });
            match &auth {
                Some(Auth::App(name)) if !apps.iter().any(|a| &a.name == name) => self.push(
                    ProblemKind::UnknownApp,
                    format!("{at}.auth"),
                    format!("no [[apps]] entry is named `{name}`"),
                ),
                Some(Auth::Server(name)) if !servers.iter().any(|s| &s.name == name) => self.push(
                    ProblemKind::UnknownServer,
                    format!("{at}.auth"),
                    format!("no [[servers]] entry is named `{name}`"),
                ),
                Some(Auth::User) if !user_sign_in => self.push(
                    ProblemKind::BadAuth,
                    format!("{at}.auth"),
                    "auth = \"user\" needs a [user_sign_in] section (the gateway signs users in)",
                ),
                _ => {}
            }
            if let (Some(u), Some(a)) = (&url, &auth)
                && *a != Auth::None
                && u.is_plain_http()
                && !u.is_loopback()
            {
                self.push(
                    ProblemKind::InsecureRoute,
                    format!("{at}.url"),
                    "a token is only sent over https:// (or http:// to loopback): write the \
                     route with https://",
                );
            }
            let rate_limit = r
                .rate_limit
                .as_ref()
                .and_then(|l| self.rate_limit(&format!("{at}.rate_limit"), l));
            if let (Some(url), Some(auth)) = (url, auth) {
                if !seen.insert((url.clone(), r.match_all)) {
                    self.push(
                        ProblemKind::Duplicate,
                        format!("{at}.url"),
                        "another route has the same URL",
                    );
                    continue;
                }
                routes.push(Route {
                    url_text: r.url,
                    url,
                    match_all: r.match_all,
                    auth,
                    rate_limit,
                });
            }
        }
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::ExposeSecret;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("GEO_SECRET".to_owned(), "s3cr3t-geo".to_owned()),
            ("GIS_PASSWORD".to_owned(), "pa55-gis".to_owned()),
        ])
    }

    const GOOD: &str = r#"
listen = "127.0.0.1:0"
portal = "https://www.arcgis.com/sharing/rest"
store = "memory"
allowed_origins = ["https://app.example.com", "https://*.example.org"]
trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]

[[apps]]
name = "geo"
client_id = "abc"
client_secret_env = "GEO_SECRET"
vend = true

[[servers]]
name = "gis"
url = "https://gis.example.com/arcgis"
username = "svc"
password_env = "GIS_PASSWORD"

[[routes]]
url = "https://geocode-api.arcgis.com/arcgis/rest/services/World/GeocodeServer"
match_all = true
auth = "app:geo"
rate_limit = { requests = 600, per_seconds = 60 }

[[routes]]
url = "//gis.example.com/arcgis/rest/services/Secure"
match_all = true
auth = "server:gis"
"#;

    #[test]
    fn the_issue_example_is_accepted() {
        let c = Config::from_toml(GOOD, &env()).expect("valid");
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.proxy_paths.len(), 4);
        assert_eq!(c.apps[0].client_secret.expose_secret(), "s3cr3t-geo");
        assert_eq!(c.servers[0].password.expose_secret(), "pa55-gis");
        assert_eq!(c.routes.len(), 2);
        assert!(!format!("{c:?}").contains("s3cr3t-geo"));
        assert!(!format!("{c:?}").contains("pa55-gis"));
    }

    fn problems(text: &str) -> Vec<(ProblemKind, String)> {
        let err = Config::from_toml(text, &env()).expect_err("invalid");
        assert_eq!(err.kind(), GatewayErrorKind::Config);
        err.problems()
            .iter()
            .map(|p| (p.kind(), p.at().to_owned()))
            .collect()
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let text = r#"
listen = "nowhere"
store = "sqlite:x"
allowed_origins = ["app.example.com"]
trusted_proxies = ["ten"]
[[apps]]
name = "geo"
client_id = "abc"
client_secret = "inline-value-123"
[[routes]]
url = "https://h.example/a"
auth = "app:nope"
[[routes]]
url = "https://h.example/b"
auth = "server:nope"
[[routes]]
url = "http://h.example/c"
auth = "app:geo"
[[routes]]
url = "https://h.example/d"
auth = "user"
[[routes]]
url = "https://user@h.example/e"
"#;
        let got = problems(text);
        let want = [
            (ProblemKind::BadListen, "listen"),
            (ProblemKind::BadStore, "store"),
            (ProblemKind::BadOrigin, "allowed_origins[0]"),
            (ProblemKind::BadNetwork, "trusted_proxies[0]"),
            (ProblemKind::InlineSecret, "apps[0].client_secret"),
            (ProblemKind::UnknownApp, "routes[0].auth"),
            (ProblemKind::UnknownServer, "routes[1].auth"),
            (ProblemKind::InsecureRoute, "routes[2].url"),
            (ProblemKind::BadAuth, "routes[3].auth"),
            (ProblemKind::BadUrl, "routes[4].url"),
        ];
        for (kind, at) in want {
            assert!(
                got.contains(&(kind, at.to_owned())),
                "missing {kind:?} at {at}: {got:?}"
            );
        }
    }

    #[test]
    fn inline_secrets_never_appear_in_problems() {
        let text = "[[apps]]\nname = \"geo\"\nclient_id = \"abc\"\nclient_secret = \"inline-value-123\"\n\
                    [[servers]]\nname=\"s\"\nurl=\"https://s.example/arcgis\"\nusername=\"u\"\npassword=\"pw-inline-456\"\n";
        let err = Config::from_toml(text, &env()).expect_err("invalid");
        let all = format!(
            "{err} {err:?} {}",
            err.problems()
                .iter()
                .map(|p| p.to_string())
                .collect::<String>()
        );
        assert!(
            !all.contains("inline-value-123") && !all.contains("pw-inline-456"),
            "{all}"
        );
        // A syntax error on a line holding a secret does not quote the line.
        let err = Config::from_toml("client_secrt = \"inline-value-123\"\n", &env())
            .expect_err("invalid");
        assert_eq!(err.problems()[0].kind(), ProblemKind::Syntax);
        assert!(!format!("{:?}", err.problems()).contains("inline-value-123"));
    }

    #[test]
    fn missing_secrets_and_duplicates() {
        let text = "[[apps]]\nname = \"geo\"\nclient_id = \"abc\"\nclient_secret_env = \"UNSET_VAR\"\n\
                    [[apps]]\nname = \"geo\"\nclient_id = \"abc\"\nclient_secret_env = \"GEO_SECRET\"\n\
                    [[servers]]\nname=\"s\"\nurl=\"http://s.example/arcgis\"\nusername=\"u\"\npassword_env=\"GIS_PASSWORD\"\n";
        let got = problems(text);
        assert!(
            got.contains(&(
                ProblemKind::MissingSecret,
                "apps[0].client_secret_env".into()
            )),
            "{got:?}"
        );
        assert!(
            got.contains(&(ProblemKind::Duplicate, "apps[1].name".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(ProblemKind::InsecureRoute, "servers[0].url".into())),
            "{got:?}"
        );
    }

    #[test]
    fn user_sign_in_is_read_with_its_defaults() {
        let text = "[user_sign_in]\nclient_id = \"web\"\npublic_url = \"https://app.example.com\"\n\
                    [[routes]]\nurl = \"https://h.example/a\"\nauth = \"user\"\n";
        let c = Config::from_toml(text, &env()).expect("valid");
        let u = c.user_sign_in.expect("user sign-in");
        assert_eq!(u.cookie_name, DEFAULT_COOKIE_NAME);
        assert_eq!(u.session_ttl, DEFAULT_SESSION_TTL);
        assert!(u.client_secret.is_none());
        assert_eq!(u.redirect_uri(), "https://app.example.com/auth/callback");
        assert_eq!(u.public_origin(), "https://app.example.com");
        assert_eq!(c.routes[0].auth, Auth::User);
        let text = "[user_sign_in]\nclient_id = \"web\"\nclient_secret_env = \"GEO_SECRET\"\n\
                    public_url = \"http://127.0.0.1:8080/\"\nsession_ttl_hours = 8\n\
                    cookie_name = \"__Host-maps\"\n";
        let u = Config::from_toml(text, &env())
            .expect("valid")
            .user_sign_in
            .expect("user sign-in");
        assert_eq!(u.session_ttl, Duration::from_secs(8 * 3600));
        assert_eq!(u.redirect_uri(), "http://127.0.0.1:8080/auth/callback");
        assert!(!format!("{u:?}").contains("s3cr3t-geo"));
    }

    #[test]
    fn user_sign_in_problems() {
        let bad = |section: &str| problems(&format!("[user_sign_in]\n{section}"));
        let cases = [
            (
                "client_id = \"w\"\npublic_url = \"http://app.example.com\"",
                ProblemKind::InsecureRoute,
                "user_sign_in.public_url",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://app.example.com/app\"",
                ProblemKind::BadUrl,
                "user_sign_in.public_url",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://u@app.example.com\"",
                ProblemKind::BadUrl,
                "user_sign_in.public_url",
            ),
            (
                "client_id = \"w\"\npublic_url = \"app.example.com\"",
                ProblemKind::BadUrl,
                "user_sign_in.public_url",
            ),
            (
                "client_id = \"\"\npublic_url = \"https://app.example.com\"",
                ProblemKind::BadValue,
                "user_sign_in.client_id",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://a.example\"\nsession_ttl_hours = 2161",
                ProblemKind::BadValue,
                "user_sign_in.session_ttl_hours",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://a.example\"\nsession_ttl_hours = 0",
                ProblemKind::BadValue,
                "user_sign_in.session_ttl_hours",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://a.example\"\ncookie_name = \"arcgis\"",
                ProblemKind::BadValue,
                "user_sign_in.cookie_name",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://a.example\"\ncookie_name = \"__Host-a;b\"",
                ProblemKind::BadValue,
                "user_sign_in.cookie_name",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://a.example\"\nclient_secret = \"x\"",
                ProblemKind::InlineSecret,
                "user_sign_in.client_secret",
            ),
            (
                "client_id = \"w\"\npublic_url = \"https://a.example\"\nclient_secret_env = \"UNSET\"",
                ProblemKind::MissingSecret,
                "user_sign_in.client_secret_env",
            ),
        ];
        for (section, kind, at) in cases {
            let got = bad(section);
            assert!(got.contains(&(kind, at.to_owned())), "{section}: {got:?}");
        }
        // `auth = "user"` needs the section; `/auth/...` is the gateway's own.
        let got = problems(
            "proxy_paths = [\"/auth/x\"]\n[[routes]]\nurl = \"https://h.example/a\"\nauth = \"user\"\n",
        );
        assert!(
            got.contains(&(ProblemKind::BadAuth, "routes[0].auth".into())),
            "{got:?}"
        );
        assert!(
            got.contains(&(ProblemKind::BadProxyPath, "proxy_paths[0]".into())),
            "{got:?}"
        );
    }

    #[test]
    fn secrets_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").expect("write");
        let text = format!(
            "[[apps]]\nname = \"geo\"\nclient_id = \"abc\"\nclient_secret_file = {:?}\n",
            path.display().to_string()
        );
        let c = Config::from_toml(&text, &env()).expect("valid");
        assert_eq!(c.apps[0].client_secret.expose_secret(), "from-file");
    }
}
