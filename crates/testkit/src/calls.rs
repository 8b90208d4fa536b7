//! Counters of every request the fake portal and its servers received.

use std::collections::BTreeMap;
use std::fmt;

/// An endpoint of the fake portal or of one of its servers, for
/// [`Calls::endpoint`] and [`Calls::server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `{sharing root}/oauth2/authorize`.
    Authorize,
    /// `{sharing root}/oauth2/signin`: the sign-in page's form (POST).
    SignIn,
    /// `{sharing root}/oauth2/approval`: the out-of-band code page.
    Approval,
    /// `{sharing root}/oauth2/token`: every OAuth grant (see [`Calls::token`]).
    Token,
    /// `{sharing root}/oauth2/revokeToken`.
    RevokeToken,
    /// `{sharing root}/generateToken`.
    GenerateToken,
    /// `{sharing root}/info`.
    Info,
    /// `{sharing root}/portals/self`.
    PortalsSelf,
    /// `{sharing root}/community/self`.
    CommunitySelf,
    /// `{sharing root}/portals/self/servers`: the servers federated with the
    /// portal (needs a token).
    PortalServers,
    /// `{sharing root}/content/items/{id}`: the secured resource on the portal's own origin.
    ContentItem,
    /// `{portal origin}/TestkitOrg0001/arcgis/rest/services/...`: the
    /// portal's hosted services (as ArcGIS Online's
    /// `services.arcgis.com/{org id}/arcgis/rest/services`), open to any
    /// portal token; the feature service [`FEATURE_SERVICE`](crate::FEATURE_SERVICE) is there.
    HostedServices,
    /// `{server root}/rest/info` of a server.
    ServerInfo,
    /// `{server root}/rest/services/...` of a server: its secured services.
    ServerServices,
    /// `{server root}/tokens/generateToken` of a standalone server.
    ServerGenerateToken,
    /// `{server root}/admin/generateToken` of a standalone server: tokens
    /// for its Administrator API.
    ServerAdminGenerateToken,
    /// `{server root}/admin/...` (any other path under `admin`) of a
    /// standalone server: its Administrator API, open only to its admin tokens.
    ServerAdmin,
    /// Any other path (answered with ArcGIS's "Invalid URL" error).
    Unknown,
}

impl Endpoint {
    /// The endpoint's path relative to the sharing root (portal endpoints),
    /// the portal's origin ([`Endpoint::HostedServices`]) or the server root
    /// (server endpoints); `"?"` for [`Endpoint::Unknown`].
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Authorize => "oauth2/authorize",
            Endpoint::SignIn => "oauth2/signin",
            Endpoint::Approval => "oauth2/approval",
            Endpoint::Token => "oauth2/token",
            Endpoint::RevokeToken => "oauth2/revokeToken",
            Endpoint::GenerateToken => "generateToken",
            Endpoint::Info => "info",
            Endpoint::PortalsSelf => "portals/self",
            Endpoint::CommunitySelf => "community/self",
            Endpoint::PortalServers => "portals/self/servers",
            Endpoint::ContentItem => "content/items/{id}",
            Endpoint::HostedServices => "TestkitOrg0001/arcgis/rest/services/...",
            Endpoint::ServerInfo => "rest/info",
            Endpoint::ServerServices => "rest/services/...",
            Endpoint::ServerGenerateToken => "tokens/generateToken",
            Endpoint::ServerAdminGenerateToken => "admin/generateToken",
            Endpoint::ServerAdmin => "admin/...",
            Endpoint::Unknown => "?",
        }
    }

    /// The portal endpoint at `path` (relative to the sharing root, with or
    /// without a trailing slash), or [`Endpoint::Unknown`].
    pub fn from_portal_path(path: &str) -> Endpoint {
        let path = path.trim_matches('/');
        match path {
            "oauth2/authorize" => Endpoint::Authorize,
            "oauth2/signin" => Endpoint::SignIn,
            "oauth2/approval" => Endpoint::Approval,
            "oauth2/token" => Endpoint::Token,
            "oauth2/revokeToken" => Endpoint::RevokeToken,
            "generateToken" => Endpoint::GenerateToken,
            "info" => Endpoint::Info,
            "portals/self" => Endpoint::PortalsSelf,
            "community/self" => Endpoint::CommunitySelf,
            "portals/self/servers" => Endpoint::PortalServers,
            p if p
                .strip_prefix("content/items/")
                .is_some_and(|id| !id.is_empty()) =>
            {
                Endpoint::ContentItem
            }
            _ => Endpoint::Unknown,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// The `grant_type` of an `oauth2/token` call, for [`Calls::token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Grant {
    /// `authorization_code`: a code from `oauth2/authorize` (with or without PKCE).
    AuthorizationCode,
    /// `client_credentials`: an app token from a client id and secret.
    ClientCredentials,
    /// `refresh_token`: a new access token from a refresh token.
    RefreshToken,
    /// `exchange_refresh_token`: a new access token AND a new refresh token; the old one dies.
    ExchangeRefreshToken,
    /// A missing or unsupported `grant_type`.
    Other,
}

impl Grant {
    /// The wire value of `grant_type` (`"other"` for [`Grant::Other`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::AuthorizationCode => "authorization_code",
            Grant::ClientCredentials => "client_credentials",
            Grant::RefreshToken => "refresh_token",
            Grant::ExchangeRefreshToken => "exchange_refresh_token",
            Grant::Other => "other",
        }
    }

    /// The grant named by a `grant_type` value; [`Grant::Other`] when unknown.
    pub fn from_wire(value: Option<&str>) -> Grant {
        match value {
            Some("authorization_code") => Grant::AuthorizationCode,
            Some("client_credentials") => Grant::ClientCredentials,
            Some("refresh_token") => Grant::RefreshToken,
            Some("exchange_refresh_token") => Grant::ExchangeRefreshToken,
            _ => Grant::Other,
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of how many requests the fake portal and its servers received,
/// taken by [`FakePortal::calls`](crate::FakePortal::calls).
///
/// Every request that reached the portal counts, including those answered
/// with an error or with an injected [`Failure`](crate::Failure).
///
/// ```
/// use arcgis_auth_testkit::{Calls, Endpoint, Grant};
///
/// let calls = Calls::default();
/// assert_eq!(calls.endpoint(Endpoint::Token), 0);
/// assert_eq!(calls.token(Grant::RefreshToken), 0);
/// assert_eq!(calls.total(), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calls {
    portal: BTreeMap<Endpoint, u64>,
    servers: BTreeMap<(String, Endpoint), u64>,
    grants: BTreeMap<Grant, u64>,
    secrets_in_url: u64,
    total: u64,
}

impl Calls {
    /// Requests to a portal endpoint.
    pub fn endpoint(&self, endpoint: Endpoint) -> u64 {
        self.portal.get(&endpoint).copied().unwrap_or(0)
    }

    /// `oauth2/token` requests with this `grant_type`.
    pub fn token(&self, grant: Grant) -> u64 {
        self.grants.get(&grant).copied().unwrap_or(0)
    }

    /// Requests to an endpoint of the server named `server`.
    pub fn server(&self, server: &str, endpoint: Endpoint) -> u64 {
        self.servers
            .get(&(server.to_owned(), endpoint))
            .copied()
            .unwrap_or(0)
    }

    /// Requests to any endpoint of the server named `server`.
    pub fn server_total(&self, server: &str) -> u64 {
        self.servers
            .iter()
            .filter(|((name, _), _)| name == server)
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests that carried a secret in the URL query string (`token`,
    /// `refresh_token`, `client_secret`, `password` or `code_verifier`):
    /// a well-behaved client keeps this at zero, because URLs end up in logs.
    pub fn secrets_in_url(&self) -> u64 {
        self.secrets_in_url
    }

    /// Every request to the portal and all its servers.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn record(
        &mut self,
        server: Option<&str>,
        endpoint: Endpoint,
        grant: Option<Grant>,
        secret_in_url: bool,
    ) {
        self.total += 1;
        match server {
            None => *self.portal.entry(endpoint).or_default() += 1,
            Some(name) => *self.servers.entry((name.to_owned(), endpoint)).or_default() += 1,
        }
        if let Some(grant) = grant {
            *self.grants.entry(grant).or_default() += 1;
        }
        if secret_in_url {
            self.secrets_in_url += 1;
        }
    }
}
