//! Which URL may receive which token: the routing decision, without I/O.
//!
//! [`TokenRouting`] holds the rules; [`TokenRouting::route`] applies them to
//! one URL and returns a [`Route`]. The middleware calls it for every request;
//! call it yourself to see what would happen to a URL. The rules are
//! explained, with examples, in the [`middleware`](crate::middleware) module
//! docs ("Where your token goes").

use std::collections::HashMap;
use std::fmt;

use arcgis_auth_core::{Origin, Portal, SecretString, ServerRoot, TokenBinding};
use url::Url;

/// How a token travels to an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TokenTransport {
    /// An `X-Esri-Authorization: Bearer <token>` header (the default). Unlike
    /// `Authorization`, it does not clash with a proxy's or web server's own
    /// authentication (IWA, PKI).
    #[default]
    EsriHeader,
    /// An `Authorization: Bearer <token>` header.
    AuthorizationHeader,
    /// A `token` field in a form-encoded POST body. GET requests are turned
    /// into form POSTs (their query moves into the body); requests with
    /// another kind of body (multipart uploads, streams) get the
    /// `X-Esri-Authorization` header instead, since a field cannot be added to them.
    FormBody,
}

/// Credentials for a standalone ArcGIS Server's own `generateToken`.
///
/// The password stays in memory and is sent only to the server's own token
/// endpoint (over HTTPS, or to loopback).
#[derive(Clone)]
pub struct ServerCredentials {
    pub(crate) username: String,
    pub(crate) password: SecretString,
    pub(crate) binding: TokenBinding,
}

impl ServerCredentials {
    /// `username`/`password`; tokens are bound to the requesting IP
    /// (`client=requestip`) unless [`with_binding`](Self::with_binding) says otherwise.
    pub fn new(username: impl Into<String>, password: SecretString) -> Self {
        ServerCredentials {
            username: username.into(),
            password,
            binding: TokenBinding::RequestIp,
        }
    }

    /// What the token is bound to (`client=referer`, `ip`, `requestip`).
    pub fn with_binding(mut self, binding: TokenBinding) -> Self {
        self.binding = binding;
        self
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCredentials")
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("binding", &self.binding)
            .finish()
    }
}

/// What [`TokenRouting::route`] decided for one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    /// The portal's own origin: the portal token.
    Portal,
    /// An origin or server the user listed as trusted: the portal token.
    Trusted,
    /// A trusted standalone server with its own credentials: a token from its
    /// own `generateToken`.
    TrustedServer(ServerRoot),
    /// An Administrator API URL (`{root}/admin/...`, see
    /// [`ServerRoot::is_admin_url`]) of a trusted standalone server with its
    /// own credentials: a token from its `admin/generateToken`, which is
    /// the only kind the Administrator API accepts.
    TrustedServerAdmin(ServerRoot),
    /// An ArcGIS Online hosted service (`https://*.arcgis.com`) while the
    /// portal is ArcGIS Online: the portal token.
    ArcGisOnline,
    /// An ArcGIS Server URL that may be federated with the portal: its
    /// `/rest/info` decides. Federated with this portal: a server token.
    /// Otherwise: the portal token when `same_origin_as_portal`, else none.
    Federation {
        /// The server's root.
        server: ServerRoot,
        /// Whether the server shares the portal's origin (a portal and a
        /// server behind the same web server).
        same_origin_as_portal: bool,
    },
    /// No token goes to this URL.
    NoToken(NoTokenReason),
}

impl Route {
    /// Whether this route may send a token (after discovery, for [`Route::Federation`]).
    pub fn may_send_token(&self) -> bool {
        !matches!(self, Route::NoToken(_))
    }
}

/// Why a URL gets no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoTokenReason {
    /// The origin is not the portal's, not trusted, not ArcGIS Online (for an
    /// ArcGIS Online portal), and not an ArcGIS Server URL to discover.
    UntrustedOrigin,
    /// The URL carries a user name or password (`https://user@host/`): such
    /// URLs are refused outright, whatever their host.
    UserInfo,
    /// Plain `http://` to a host that is not loopback: tokens never travel in clear.
    InsecureTransport,
    /// Not an `http`/`https` URL with a host.
    NotHttp,
    /// The server's `/rest/info` names another portal as its owner.
    NotFederated,
    /// The server is standalone (or its `/rest/info` could not be read) and is not trusted.
    Standalone,
}

impl NoTokenReason {
    /// A short `snake_case` name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            NoTokenReason::UntrustedOrigin => "untrusted_origin",
            NoTokenReason::UserInfo => "user_info_in_url",
            NoTokenReason::InsecureTransport => "insecure_transport",
            NoTokenReason::NotHttp => "not_http",
            NoTokenReason::NotFederated => "not_federated",
            NoTokenReason::Standalone => "standalone_server",
        }
    }
}

#[derive(Debug, Clone)]
struct TrustedServer {
    root: ServerRoot,
    credentials: Option<ServerCredentials>,
}

/// The rules deciding which URL receives which token, and how it travels.
///
/// ```
/// use arcgis_auth_core::{Origin, Portal, ServerRoot};
/// use arcgis_auth_flows::routing::{NoTokenReason, Route, TokenRouting};
/// use url::Url;
///
/// let routing = TokenRouting::new(Portal::parse("https://gis.example.com/portal").unwrap())
///     .trust_origin(Origin::parse("https://tiles.example.com").unwrap());
/// let route = |s: &str| routing.route(&Url::parse(s).unwrap());
///
/// assert_eq!(route("https://gis.example.com/portal/sharing/rest/portals/self"), Route::Portal);
/// assert_eq!(route("https://tiles.example.com/basemap/tile/1/2/3"), Route::Trusted);
/// // Look-alikes are other origins.
/// assert_eq!(
///     route("https://gis.example.com.evil.example/portal/sharing/rest"),
///     Route::NoToken(NoTokenReason::UntrustedOrigin),
/// );
/// assert_eq!(
///     route("https://gis.example.com@evil.example/portal/sharing/rest"),
///     Route::NoToken(NoTokenReason::UserInfo),
/// );
/// // A server elsewhere: its /rest/info decides.
/// assert!(matches!(
///     route("https://maps.example.com/server/rest/services/Roads/MapServer"),
///     Route::Federation { same_origin_as_portal: false, .. }
/// ));
/// ```
#[derive(Debug, Clone)]
pub struct TokenRouting {
    portal: Portal,
    portal_origin: Origin,
    /// The portal's web-adaptor path (the sharing root minus `sharing/rest`).
    portal_path: Vec<String>,
    trusted_origins: Vec<Origin>,
    trusted_servers: Vec<TrustedServer>,
    discover_federation: bool,
    transports: HashMap<Origin, TokenTransport>,
    default_transport: TokenTransport,
}

impl TokenRouting {
    /// The rules for `portal`: its origin gets the portal token, ArcGIS Online
    /// hosted services get it when the portal is ArcGIS Online, ArcGIS Server
    /// URLs elsewhere are checked for federation, nothing else gets a token.
    pub fn new(portal: Portal) -> Self {
        let portal_origin = portal.origin().clone();
        let mut portal_path: Vec<String> = portal
            .sharing_root()
            .path_segments()
            .map(|s| s.filter(|x| !x.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        // The sharing root always ends in sharing/rest.
        portal_path.truncate(portal_path.len().saturating_sub(2));
        TokenRouting {
            portal,
            portal_origin,
            portal_path,
            trusted_origins: Vec::new(),
            trusted_servers: Vec::new(),
            discover_federation: true,
            transports: HashMap::new(),
            default_transport: TokenTransport::default(),
        }
    }

    /// The portal.
    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// Sends the portal token to every URL of `origin` (compared exactly:
    /// scheme, host and port).
    pub fn trust_origin(mut self, origin: Origin) -> Self {
        if !self.trusted_origins.contains(&origin) {
            self.trusted_origins.push(origin);
        }
        self
    }

    /// Sends the portal token to URLs under `server` (same origin, path under its root).
    pub fn trust_server(mut self, server: ServerRoot) -> Self {
        self.trusted_servers.retain(|t| t.root != server);
        self.trusted_servers.push(TrustedServer {
            root: server,
            credentials: None,
        });
        self
    }

    /// Sends URLs under the standalone `server` a token from the server's own
    /// `generateToken`, signed in with `credentials`.
    pub fn trust_server_with_credentials(
        mut self,
        server: ServerRoot,
        credentials: ServerCredentials,
    ) -> Self {
        self.trusted_servers.retain(|t| t.root != server);
        self.trusted_servers.push(TrustedServer {
            root: server,
            credentials: Some(credentials),
        });
        self
    }

    /// Whether ArcGIS Server URLs on untrusted origins are checked for
    /// federation through their `/rest/info` (default `true`). With `false`,
    /// only the portal's origin, trusted origins and servers (and ArcGIS
    /// Online hosted services for an ArcGIS Online portal) get a token.
    pub fn discover_federation(mut self, discover: bool) -> Self {
        self.discover_federation = discover;
        self
    }

    /// How the token travels to `origin` (default: [`TokenTransport::EsriHeader`]).
    pub fn transport_for(mut self, origin: Origin, transport: TokenTransport) -> Self {
        self.transports.insert(origin, transport);
        self
    }

    /// How the token travels to origins without their own setting.
    pub fn default_transport(mut self, transport: TokenTransport) -> Self {
        self.default_transport = transport;
        self
    }

    /// How the token travels to `origin`.
    pub fn transport(&self, origin: &Origin) -> TokenTransport {
        self.transports
            .get(origin)
            .copied()
            .unwrap_or(self.default_transport)
    }

    /// The credentials configured for a trusted standalone server.
    pub(crate) fn credentials_for(&self, server: &ServerRoot) -> Option<&ServerCredentials> {
        self.trusted_servers
            .iter()
            .find(|t| &t.root == server)
            .and_then(|t| t.credentials.as_ref())
    }

    /// Decides whether `url` may receive a token, and which. No I/O.
    ///
    /// Origins are compared as parsed values (scheme, lower-cased host, port),
    /// never as text: a URL that merely *contains* the portal's URL in its
    /// path, query or user name is another origin.
    pub fn route(&self, url: &Url) -> Route {
        self.route_with_origin(url).0
    }

    /// [`route`](Self::route), and the URL's origin when it has one, so a
    /// caller that needs both parses the URL once.
    pub(crate) fn route_with_origin(&self, url: &Url) -> (Route, Option<Origin>) {
        if !url.username().is_empty() || url.password().is_some() {
            return (
                Route::NoToken(NoTokenReason::UserInfo),
                Origin::of(url).ok(),
            );
        }
        let Ok(origin) = Origin::of(url) else {
            return (Route::NoToken(NoTokenReason::NotHttp), None);
        };
        let route = self.route_origin(url, &origin);
        if route.may_send_token() && !origin.is_https() && !origin.is_loopback() {
            return (
                Route::NoToken(NoTokenReason::InsecureTransport),
                Some(origin),
            );
        }
        (route, Some(origin))
    }

    fn route_origin(&self, url: &Url, origin: &Origin) -> Route {
        if let Some(trusted) = self.trusted_servers.iter().find(|t| t.root.contains(url)) {
            return match trusted.credentials {
                Some(_) if trusted.root.is_admin_url(url) => {
                    Route::TrustedServerAdmin(trusted.root.clone())
                }
                Some(_) => Route::TrustedServer(trusted.root.clone()),
                None => Route::Trusted,
            };
        }
        // Cutting a server root out of the URL parses it again: only done
        // when federation discovery could use it.
        let server = || self.discover_federation.then(|| server_root(url)).flatten();
        if *origin == self.portal_origin {
            // A server behind the portal's web server (…/server/rest/services)
            // may be federated: it then needs its own token.
            return match server() {
                Some(server) if !self.is_portal_root(&server) => Route::Federation {
                    server,
                    same_origin_as_portal: true,
                },
                _ => Route::Portal,
            };
        }
        if self.trusted_origins.contains(origin) {
            return Route::Trusted;
        }
        if self.portal_origin.is_arcgis_online() && origin.is_arcgis_online() {
            return Route::ArcGisOnline;
        }
        match server() {
            Some(server) => Route::Federation {
                server,
                same_origin_as_portal: false,
            },
            None => Route::NoToken(NoTokenReason::UntrustedOrigin),
        }
    }

    /// Whether a "server root" cut from a URL is the portal's own web adaptor.
    /// (The portal's `sharing/rest` URLs never parse as server URLs at all.)
    fn is_portal_root(&self, server: &ServerRoot) -> bool {
        let segments: Vec<&str> = server
            .as_url()
            .path_segments()
            .map(|s| s.filter(|x| !x.is_empty()).collect())
            .unwrap_or_default();
        segments.len() == self.portal_path.len()
            && segments
                .iter()
                .zip(&self.portal_path)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Whether `owning_system_url` (from a server's `/rest/info`) names this
    /// portal: same host, same web-adaptor path (case-insensitive, trailing
    /// slash ignored), and the same port, where `http` and `https` on their
    /// default ports count as the same (ArcGIS itself is tolerant here). The
    /// rule is core's [`Portal::is_owning_system_url`].
    pub fn is_this_portal(&self, owning_system_url: &str) -> bool {
        Url::parse(owning_system_url.trim()).is_ok_and(|url| self.portal.is_owning_system_url(&url))
    }
}

/// The server root of an ArcGIS Server URL: one with a `rest`, `admin` or
/// `tokens` path segment. `None` for other URLs.
pub(crate) fn server_root(url: &Url) -> Option<ServerRoot> {
    let looks_like_server = url.path_segments().into_iter().flatten().any(|s| {
        s.eq_ignore_ascii_case("rest")
            || s.eq_ignore_ascii_case("admin")
            || s.eq_ignore_ascii_case("tokens")
    });
    if !looks_like_server {
        return None;
    }
    ServerRoot::from_url(url).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn online() -> TokenRouting {
        TokenRouting::new(Portal::arcgis_online())
    }

    fn enterprise() -> TokenRouting {
        TokenRouting::new(Portal::parse("https://gis.example.com/portal").unwrap())
    }

    #[test]
    fn the_portal_origin_gets_the_portal_token() {
        let r = online();
        assert_eq!(
            r.route(&url("https://www.arcgis.com/sharing/rest/content/items/1")),
            Route::Portal
        );
        assert_eq!(
            r.route(&url("https://WWW.ArcGIS.COM:443/sharing/rest/portals/self")),
            Route::Portal
        );
    }

    #[test]
    fn look_alikes_get_nothing() {
        let r = online();
        for bad in [
            "https://evil.example/x.arcgis.com/sharing/rest",
            "https://evil.example/?u=https://www.arcgis.com/sharing/rest",
            "https://arcgis.com.evil.example/sharing/rest",
            "https://www.arcgis.com.evil.example/sharing/rest",
            "https://evilarcgis.com/sharing/rest",
            "https://sharing.rest.arcgis.com.evil.example/www.arcgis.com/sharing/rest",
        ] {
            assert!(!r.route(&url(bad)).may_send_token(), "{bad}");
        }
        assert_eq!(
            r.route(&url("https://www.arcgis.com@evil.example/sharing/rest")),
            Route::NoToken(NoTokenReason::UserInfo)
        );
        assert_eq!(
            r.route(&url("https://user:pw@www.arcgis.com/sharing/rest")),
            Route::NoToken(NoTokenReason::UserInfo)
        );
        // Plain http is another origin; trusted or not, it never gets a token
        // unless it is loopback.
        assert_eq!(
            r.route(&url("http://www.arcgis.com/sharing/rest")),
            Route::NoToken(NoTokenReason::UntrustedOrigin)
        );
        let r = online()
            .trust_origin(Origin::parse("http://tiles.example.com").unwrap())
            .trust_origin(Origin::parse("http://127.0.0.1:8080").unwrap());
        assert_eq!(
            r.route(&url("http://tiles.example.com/x")),
            Route::NoToken(NoTokenReason::InsecureTransport)
        );
        assert_eq!(r.route(&url("http://127.0.0.1:8080/x")), Route::Trusted);
        assert_eq!(
            r.route(&url("ftp://www.arcgis.com/sharing/rest")),
            Route::NoToken(NoTokenReason::NotHttp)
        );
    }

    #[test]
    fn arcgis_online_hosted_services() {
        let r = online();
        assert_eq!(
            r.route(&url(
                "https://services3.arcgis.com/AbC/arcgis/rest/services/X/FeatureServer/0"
            )),
            Route::ArcGisOnline
        );
        assert_eq!(
            r.route(&url(
                "https://TILES.ArcGIS.com/tiles/AbC/arcgis/rest/services"
            )),
            Route::ArcGisOnline
        );
        // Not for an Enterprise portal.
        assert!(matches!(
            enterprise().route(&url(
                "https://services3.arcgis.com/AbC/arcgis/rest/services/X/FeatureServer/0"
            )),
            Route::Federation { .. }
        ));
        assert_eq!(
            enterprise().route(&url("https://www.arcgis.com/sharing/rest/portals/self")),
            Route::NoToken(NoTokenReason::UntrustedOrigin)
        );
    }

    #[test]
    fn servers_on_the_portal_origin_are_discovered() {
        let r = enterprise();
        assert_eq!(
            r.route(&url(
                "https://gis.example.com/portal/sharing/rest/portals/self"
            )),
            Route::Portal
        );
        assert_eq!(
            r.route(&url("https://gis.example.com/Portal/home/index.html")),
            Route::Portal
        );
        assert_eq!(
            r.route(&url(
                "https://gis.example.com/server/rest/services/A/MapServer"
            )),
            Route::Federation {
                server: ServerRoot::parse("https://gis.example.com/server").unwrap(),
                same_origin_as_portal: true
            }
        );
        assert_eq!(
            r.clone().discover_federation(false).route(&url(
                "https://gis.example.com/server/rest/services/A/MapServer"
            )),
            Route::Portal
        );
        assert_eq!(
            r.route(&url("https://gis.example.com:8443/portal/sharing/rest")),
            Route::NoToken(NoTokenReason::UntrustedOrigin)
        );
        assert_eq!(
            r.route(&url("https://gis.example.com/portal/rest/services")),
            Route::Portal
        );
        // A portal at the host's root, with a server next to it.
        let root = TokenRouting::new(Portal::parse("https://gis.example.com").unwrap());
        assert_eq!(
            root.route(&url("https://gis.example.com/sharing/rest/portals/self")),
            Route::Portal
        );
        assert!(matches!(
            root.route(&url(
                "https://gis.example.com/server/rest/services/A/MapServer"
            )),
            Route::Federation {
                same_origin_as_portal: true,
                ..
            }
        ));
    }

    #[test]
    fn trusted_origins_and_servers() {
        let r = enterprise()
            .trust_origin(Origin::parse("https://tiles.example.com").unwrap())
            .trust_server(ServerRoot::parse("https://maps.example.com/arcgis").unwrap())
            .trust_server_with_credentials(
                ServerRoot::parse("https://own.example.com/arcgis").unwrap(),
                ServerCredentials::new("u", "p".into()),
            );
        assert_eq!(
            r.route(&url("https://tiles.example.com/any/path")),
            Route::Trusted
        );
        assert_eq!(
            r.route(&url("https://tiles.example.com:444/any/path")),
            Route::NoToken(NoTokenReason::UntrustedOrigin)
        );
        assert_eq!(
            r.route(&url(
                "https://maps.example.com/arcgis/rest/services/A/MapServer"
            )),
            Route::Trusted
        );
        // Another root on the same host is not trusted (but may be discovered).
        assert!(matches!(
            r.route(&url(
                "https://maps.example.com/arcgis2/rest/services/A/MapServer"
            )),
            Route::Federation { .. }
        ));
        assert_eq!(
            r.route(&url("https://maps.example.com/other/page")),
            Route::NoToken(NoTokenReason::UntrustedOrigin)
        );
        assert!(matches!(
            r.route(&url(
                "https://own.example.com/arcgis/rest/services/A/MapServer"
            )),
            Route::TrustedServer(_)
        ));
        assert_eq!(
            r.route(&url("https://own.example.com/arcgis/admin/services?f=json")),
            Route::TrustedServerAdmin(ServerRoot::parse("https://own.example.com/arcgis").unwrap())
        );
        assert!(matches!(
            r.route(&url("https://own.example.com/arcgis/rest/admin/services")),
            Route::TrustedServer(_)
        ));
        assert!(
            r.credentials_for(&ServerRoot::parse("https://own.example.com/arcgis").unwrap())
                .is_some()
        );
        assert!(!format!("{r:?}").contains("\"p\""));
    }

    #[test]
    fn owning_system_url_matching() {
        let r = enterprise();
        assert!(r.is_this_portal("https://gis.example.com/portal"));
        assert!(r.is_this_portal("https://GIS.example.com/portal/"));
        assert!(r.is_this_portal("http://gis.example.com/portal"));
        assert!(r.is_this_portal("https://gis.example.com:443/Portal"));
        assert!(r.is_this_portal("https://gis.example.com/portal/sharing/rest"));
        assert!(!r.is_this_portal("https://gis.example.com/portal2"));
        assert!(!r.is_this_portal("https://gis.example.com/"));
        assert!(!r.is_this_portal("https://gis.example.com:7443/portal"));
        assert!(!r.is_this_portal("https://gis.example.com.evil.example/portal"));
        assert!(!r.is_this_portal("https://evil.example/gis.example.com/portal"));
        assert!(!r.is_this_portal("not a url"));
        let online = online();
        assert!(online.is_this_portal("https://www.arcgis.com"));
        assert!(!online.is_this_portal("https://myorg.maps.arcgis.com"));
    }

    #[test]
    fn transports_per_origin() {
        let tiles = Origin::parse("https://tiles.example.com").unwrap();
        let r = enterprise().transport_for(tiles.clone(), TokenTransport::FormBody);
        assert_eq!(r.transport(&tiles), TokenTransport::FormBody);
        assert_eq!(
            r.transport(&Origin::parse("https://gis.example.com").unwrap()),
            TokenTransport::EsriHeader
        );
    }
}
