//! What the fake portal knows before it starts: apps, users, servers.

use std::fmt;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, SecretString};

/// The out-of-band redirect URI (core's constant, re-exported for test
/// set-ups): the code is shown on `oauth2/approval` instead of being sent to
/// the app.
pub use arcgis_auth_core::OOB_REDIRECT_URI;

/// A registered app ("OAuth credentials" item): a client id, an optional
/// client secret and the redirect URIs it may use.
///
/// Redirect URIs match exactly, with one exception taken from RFC 8252 §7.3:
/// a registered loopback URI without a port (`http://127.0.0.1/callback`,
/// `http://localhost/callback`, `http://[::1]/callback`) also matches the same
/// URI on any port, so a native app's loopback listener can pick a free port.
///
/// ```
/// use arcgis_auth_testkit::App;
///
/// let native = App::public("my-native-app")
///     .redirect_uri("http://127.0.0.1/callback")
///     .redirect_uri("urn:ietf:wg:oauth:2.0:oob");
/// let backend = App::confidential("my-backend", "s3cr3t");
/// assert!(!format!("{backend:?}").contains("s3cr3t"));
/// # let _ = native;
/// ```
#[derive(Clone)]
pub struct App {
    pub(crate) client_id: String,
    pub(crate) secret: Option<SecretString>,
    pub(crate) redirect_uris: Vec<String>,
}

impl App {
    /// A public app (no secret): user sign-in with PKCE, OOB or implicit.
    pub fn public(client_id: impl Into<String>) -> Self {
        App {
            client_id: client_id.into(),
            secret: None,
            redirect_uris: Vec::new(),
        }
    }

    /// A confidential app with a client secret: `client_credentials`, and
    /// server-side authorization-code sign-in.
    pub fn confidential(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        App {
            client_id: client_id.into(),
            secret: Some(SecretString::from(secret.into())),
            redirect_uris: Vec::new(),
        }
    }

    /// Registers a redirect URI (repeatable). Use [`OOB_REDIRECT_URI`] to allow
    /// out-of-band sign-in.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client secret, for confidential apps.
    pub fn secret(&self) -> Option<&SecretString> {
        self.secret.as_ref()
    }

    /// The registered redirect URIs.
    pub fn redirect_uris(&self) -> &[String] {
        &self.redirect_uris
    }

    /// Whether `uri` is allowed for this app (see the type docs for the rule).
    pub fn allows_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, uri))
    }

    pub(crate) fn secret_matches(&self, given: &str) -> bool {
        self.secret.as_ref().is_some_and(|s| {
            arcgis_auth_core::__private::constant_time_eq(
                s.expose_secret().as_bytes(),
                given.as_bytes(),
            )
        })
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("redirect_uris", &self.redirect_uris)
            .finish()
    }
}

fn redirect_matches(registered: &str, given: &str) -> bool {
    if registered == given {
        return true;
    }
    let (Ok(reg), Ok(giv)) = (url::Url::parse(registered), url::Url::parse(given)) else {
        return false;
    };
    let loopback = matches!(
        reg.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    );
    loopback
        && reg.port().is_none()
        && reg.scheme() == "http"
        && giv.scheme() == "http"
        && reg.host_str() == giv.host_str()
        && reg.path() == giv.path()
        && reg.query() == giv.query()
        && giv.fragment().is_none()
        && giv.username().is_empty()
        && giv.password().is_none()
}

/// A portal user with a password (for `generateToken`) who can be the
/// signed-in user of `oauth2/authorize`.
#[derive(Clone)]
pub(crate) struct User {
    pub(crate) username: String,
    pub(crate) password: SecretString,
}

impl User {
    pub(crate) fn password_matches(&self, given: &str) -> bool {
        arcgis_auth_core::__private::constant_time_eq(
            self.password.expose_secret().as_bytes(),
            given.as_bytes(),
        )
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// An ArcGIS Server to start next to the portal, on its own loopback port
/// (so its own origin), at `http://127.0.0.1:{port}/{name}`.
///
/// ```
/// use arcgis_auth_testkit::Server;
///
/// let federated = Server::federated("server");
/// let standalone = Server::standalone("gis").short_lived_token_validity(15);
/// let foreign = Server::federated_with("other", "https://other.example.com/portal");
/// # let _ = (federated, standalone, foreign);
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    pub(crate) name: String,
    pub(crate) federation: Federation,
    pub(crate) short_lived_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Federation {
    /// Federated with this portal: accepts server tokens from its `generateToken`.
    ThisPortal,
    /// Not federated: its own `tokens/generateToken` with the portal's users.
    Standalone,
    /// Federated with another portal (`owningSystemUrl`): nothing this portal issues works there.
    Other(String),
}

impl Server {
    /// A server federated with this portal: `rest/info` names the portal as
    /// `owningSystemUrl`, and its services accept server tokens from the
    /// portal's `generateToken` with `serverUrl` set to this server.
    pub fn federated(name: impl Into<String>) -> Self {
        Server::new(name, Federation::ThisPortal)
    }

    /// A standalone server (no `owningSystemUrl`): its services accept only
    /// tokens from its own `tokens/generateToken` (username and password of
    /// the portal's users), and its Administrator API (`{root}/admin/...`)
    /// only tokens from its `admin/generateToken`.
    pub fn standalone(name: impl Into<String>) -> Self {
        Server::new(name, Federation::Standalone)
    }

    /// A server federated with ANOTHER portal at `owning_system_url`: no token
    /// this portal issues is valid there, and the portal refuses to make one.
    pub fn federated_with(name: impl Into<String>, owning_system_url: impl Into<String>) -> Self {
        Server::new(name, Federation::Other(owning_system_url.into()))
    }

    /// `shortLivedTokenValidity` in minutes (default 60): the default lifetime
    /// of server tokens made for this server.
    pub fn short_lived_token_validity(mut self, minutes: u32) -> Self {
        self.short_lived_minutes = minutes;
        self
    }

    fn new(name: impl Into<String>, federation: Federation) -> Self {
        Server {
            name: name.into(),
            federation,
            short_lived_minutes: 60,
        }
    }
}

/// An API key to create on a running portal with
/// [`FakePortal::create_api_key`](crate::FakePortal::create_api_key): what an
/// "API key credentials" item of a real portal hands out.
///
/// An API key is a long-lived access token: it is sent like any token
/// (`X-Esri-Authorization: Bearer …`, `Authorization: Bearer …` or a
/// `token` form field), opens the portal's secured resources like an app
/// token, and can be exchanged at `generateToken` for a federated server's
/// token. It comes with no refresh token and `oauth2/token` cannot renew it;
/// `oauth2/revokeToken` does not revoke it (as in ArcGIS, keys are
/// invalidated by their owner: [`FakePortal::revoke_api_key`](crate::FakePortal::revoke_api_key)).
///
/// Without [`expires_in`](Self::expires_in) the key never expires and starts
/// with `AAPK` (a legacy API key); with it, it starts with `AAPT` (API key
/// credentials, which have an expiration date). [`item`](Self::item)
/// scopes the key to named items: any other `content/items/{id}` answers
/// 403, not 498 (the key is fine, it is just not allowed there).
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_testkit::ApiKeySpec;
///
/// let everywhere = ApiKeySpec::new("maps-app");
/// let scoped = ApiKeySpec::new("maps-app")
///     .expires_in(Duration::from_secs(30 * 24 * 3600))
///     .item("item1");
/// # let _ = (everywhere, scoped);
/// ```
#[derive(Debug, Clone)]
pub struct ApiKeySpec {
    pub(crate) client_id: String,
    pub(crate) expires_in: Option<Duration>,
    pub(crate) items: Option<Vec<String>>,
}

impl ApiKeySpec {
    /// A key of the developer credentials whose client id is `client_id`
    /// (what `portals/self` reports as `appInfo.appId`, and items as
    /// `accessedBy`), valid everywhere on the portal, never expiring.
    pub fn new(client_id: impl Into<String>) -> Self {
        ApiKeySpec {
            client_id: client_id.into(),
            expires_in: None,
            items: None,
        }
    }

    /// The key stops working this long after it is created (portal clock).
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }

    /// Allows the key on item `id` (repeatable). Once one item is named, the
    /// key opens only the items named.
    pub fn item(mut self, id: impl Into<String>) -> Self {
        self.items.get_or_insert_with(Vec::new).push(id.into());
        self
    }

    /// The client id the key belongs to.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_matching() {
        let app = App::public("a")
            .redirect_uri("http://127.0.0.1/cb")
            .redirect_uri("https://app.example.com/cb?x=1")
            .redirect_uri(OOB_REDIRECT_URI);
        assert!(app.allows_redirect_uri("http://127.0.0.1/cb"));
        assert!(app.allows_redirect_uri("http://127.0.0.1:8123/cb"));
        assert!(!app.allows_redirect_uri("http://127.0.0.1:8123/cb/x"));
        assert!(!app.allows_redirect_uri("http://127.0.0.2:8123/cb"));
        assert!(app.allows_redirect_uri("https://app.example.com/cb?x=1"));
        assert!(!app.allows_redirect_uri("https://app.example.com/cb"));
        assert!(!app.allows_redirect_uri("https://app.example.com:444/cb?x=1"));
        assert!(app.allows_redirect_uri(OOB_REDIRECT_URI));
        assert!(!App::public("b").allows_redirect_uri(OOB_REDIRECT_URI));
    }
}
