//! Federated servers: finding out who owns a server, and keeping its token.
//!
//! An ArcGIS Server federated with a portal does not take the portal's token:
//! it takes a *server token*, which the portal issues for it (`generateToken`
//! with `token` + `serverUrl`). [`Federation`] does the whole dance:
//!
//! 1. reads the server's `/rest/info` ([`ServerInfo`], from `arcgis-auth-core`), cached for
//!    [`FederationConfig::info_ttl`];
//! 2. if its `owningSystemUrl` is this portal
//!    ([`TokenRouting::is_this_portal`]), asks the portal for a server token;
//!    if it names another portal, refuses with
//!    [`FlowErrorKind::NotFederated`];
//! 3. keeps the server token per server root, renews it early (like portal
//!    tokens), one request at a time per root, saves it in the session record
//!    (`server_tokens`), and drops **every** server token as soon as the
//!    portal token changes (renewed, or reported invalid), so no server token
//!    outlives the portal token it was made from. In the store, server tokens
//!    are saved only while the stored portal token is the one they were made
//!    from, and the [`TokenManager`] drops a record's server tokens whenever
//!    it renews the portal token.
//!
//! Trusting a server's own claim of federation is safe: the portal only
//! issues server tokens for servers it has federated, and a server token is
//! only good for the server it was issued for.

mod info_cache;
mod server_tokens;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arcgis_auth_core::{HttpClient, ServerInfo, ServerRoot, Timestamp};

use self::info_cache::{InfoCache, Voucher};
use self::server_tokens::{OwnEndpoint, Tokens};
use crate::access::AccessToken;
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::manager::TokenManager;
use crate::routing::{NoTokenReason, Route, TokenRouting};

/// How [`Federation`] caches.
///
/// `#[non_exhaustive]`: start from [`FederationConfig::default`] and assign fields.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_flows::federation::FederationConfig;
///
/// let mut config = FederationConfig::default();
/// config.info_ttl = Duration::from_secs(60);
/// assert_eq!(config.failed_info_ttl, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FederationConfig {
    /// How long a server's `/rest/info` answer is reused (default 10 minutes).
    pub info_ttl: Duration,
    /// How long a failed `/rest/info` read is remembered before trying again
    /// (default 30 seconds; never longer than `info_ttl`).
    pub failed_info_ttl: Duration,
}

impl Default for FederationConfig {
    fn default() -> Self {
        FederationConfig {
            info_ttl: Duration::from_secs(10 * 60),
            failed_info_ttl: Duration::from_secs(30),
        }
    }
}

/// The token a request gets, and where it came from (so a rejection can be
/// reported to the right place).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credential {
    /// The portal token (from the [`TokenManager`]).
    Portal(AccessToken),
    /// A server token: issued by the portal for a federated server, or by a
    /// trusted standalone server's own `tokens/generateToken` (or its
    /// `admin/generateToken`, for its Administrator API).
    Server {
        /// The server it is for.
        server: ServerRoot,
        /// The token.
        token: AccessToken,
    },
}

impl Credential {
    /// The token to send.
    pub fn token(&self) -> &AccessToken {
        match self {
            Credential::Portal(t) | Credential::Server { token: t, .. } => t,
        }
    }
}

struct Inner {
    manager: TokenManager,
    routing: Arc<TokenRouting>,
    http: HttpClient,
    config: FederationConfig,
    infos: InfoCache,
    tokens: Mutex<Tokens>,
}

/// Server discovery and server tokens for one session; see the [module docs](self).
///
/// Cheap to clone (clones share the caches).
///
/// ```no_run
/// # use arcgis_auth_core::{HttpClient, Portal, ServerRoot};
/// # use arcgis_auth_flows::{TokenManager, FlowError};
/// use arcgis_auth_flows::federation::Federation;
/// use arcgis_auth_flows::routing::TokenRouting;
///
/// # async fn demo(manager: TokenManager) -> Result<(), FlowError> {
/// let routing = TokenRouting::new(Portal::parse("https://gis.example.com/portal")?);
/// let federation = Federation::new(manager, routing, HttpClient::new()?);
/// let server = ServerRoot::parse("https://gis.example.com/server/rest/services")?;
/// let token = federation.server_token(&server).await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Federation {
    inner: Arc<Inner>,
}

impl fmt::Debug for Federation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Federation")
            .field("portal", self.inner.routing.portal())
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// Federation for the session of `manager`, under the rules of `routing`,
    /// talking to servers and the portal through `http`.
    pub fn new(manager: TokenManager, routing: TokenRouting, http: HttpClient) -> Self {
        Self::with_config(manager, routing, http, FederationConfig::default())
    }

    /// As [`Federation::new`], with cache settings.
    pub fn with_config(
        manager: TokenManager,
        routing: TokenRouting,
        http: HttpClient,
        config: FederationConfig,
    ) -> Self {
        Federation {
            inner: Arc::new(Inner {
                manager,
                routing: Arc::new(routing),
                http,
                config,
                infos: InfoCache::default(),
                tokens: Mutex::new(Tokens::default()),
            }),
        }
    }

    /// The token manager of the session.
    pub fn manager(&self) -> &TokenManager {
        &self.inner.manager
    }

    /// The routing rules.
    pub fn routing(&self) -> &TokenRouting {
        &self.inner.routing
    }

    /// The server's `/rest/info`, read at most once per
    /// [`FederationConfig::info_ttl`] (failures are remembered for
    /// [`FederationConfig::failed_info_ttl`]). No token is sent to the server.
    ///
    /// When this federation's client holds a web-tier credential
    /// ([`HttpClient::with_web_tier`]) and the server, on another origin,
    /// refuses `/rest/info` without it (a web tier that demands a client
    /// certificate on every handshake), the portal is asked which servers
    /// it federates (`portals/self/servers`, with the portal token); only a
    /// server it lists gets the credential (its origin is added to the web
    /// tier's, [`HttpClient::allow_web_tier_origin`]), and its `/rest/info`
    /// is read again with it.
    pub async fn server_info(&self, server: &ServerRoot) -> Result<Arc<ServerInfo>> {
        let inner = &self.inner;
        let voucher = inner.http.web_tier().map(|_| Voucher {
            portal: inner.routing.portal().clone(),
            manager: inner.manager.clone(),
        });
        inner
            .infos
            .server_info(&inner.http, voucher.as_ref(), server, &inner.config, || {
                self.now()
            })
            .await
    }

    /// Whether `server` is federated with this session's portal, per its `/rest/info`.
    pub async fn is_federated(&self, server: &ServerRoot) -> Result<bool> {
        let info = self.server_info(server).await?;
        Ok(info
            .owning_system_url()
            .is_some_and(|u| self.inner.routing.is_this_portal(u.as_str())))
    }

    /// A server token for `server`, which must be federated with this
    /// session's portal.
    ///
    /// Cached per server root and renewed early; concurrent callers for one
    /// server share one request. When the portal rejects the portal token
    /// (498), it is reported to the manager and the request is made once more
    /// with a renewed portal token.
    ///
    /// # Errors
    ///
    /// - [`FlowErrorKind::NotFederated`]: the server names another portal as
    ///   its owner, or none (standalone).
    /// - whatever reading `/rest/info`, renewing the portal token or
    ///   `generateToken` failed with.
    pub async fn server_token(&self, server: &ServerRoot) -> Result<AccessToken> {
        let info = self.server_info(server).await?;
        match info.owning_system_url() {
            Some(owner) if self.inner.routing.is_this_portal(owner.as_str()) => {
                self.federated_token(server).await
            }
            Some(owner) => Err(FlowError::new(
                FlowErrorKind::NotFederated,
                format!(
                    "{server} is federated with {}, not with {}: sign in to that portal to use it",
                    arcgis_auth_core::__private::redact_query(owner),
                    self.inner.routing.portal()
                ),
            )),
            None => Err(FlowError::new(
                FlowErrorKind::NotFederated,
                format!(
                    "{server} is a standalone server, not federated with {}: list it as trusted \
                     (with its own credentials if it has them) to send it a token",
                    self.inner.routing.portal()
                ),
            )),
        }
    }

    /// The credential `route` calls for when it is at hand without waiting
    /// or I/O: the manager's fresh portal token for the portal's own routes.
    /// `None` means "ask [`credential`](Self::credential)", not "no token".
    pub fn cached_credential(&self, route: &Route) -> Option<Credential> {
        match route {
            Route::Portal | Route::Trusted | Route::ArcGisOnline => {
                self.inner.manager.cached().map(Credential::Portal)
            }
            _ => None,
        }
    }

    /// The credential `route` calls for, or `None` when no token may go
    /// there. For [`Route::Federation`] this reads the server's `/rest/info`.
    pub async fn credential(&self, route: &Route) -> Result<Option<Credential>> {
        match route {
            Route::Portal | Route::Trusted | Route::ArcGisOnline => {
                Ok(Some(Credential::Portal(self.inner.manager.token().await?)))
            }
            Route::TrustedServer(server) => Ok(Some(Credential::Server {
                server: server.clone(),
                token: self.own_token(server, OwnEndpoint::Tokens).await?,
            })),
            Route::TrustedServerAdmin(server) => Ok(Some(Credential::Server {
                server: server.clone(),
                token: self.own_token(server, OwnEndpoint::Admin).await?,
            })),
            Route::Federation {
                server,
                same_origin_as_portal,
            } => {
                let reason = match self.server_info(server).await {
                    Ok(info) => match info.owning_system_url() {
                        Some(owner) if self.inner.routing.is_this_portal(owner.as_str()) => {
                            return Ok(Some(Credential::Server {
                                server: server.clone(),
                                token: self.federated_token(server).await?,
                            }));
                        }
                        Some(_) => NoTokenReason::NotFederated,
                        None => NoTokenReason::Standalone,
                    },
                    Err(err) => {
                        tracing::debug!(server = %server, error = %err, "could not read /rest/info");
                        NoTokenReason::Standalone
                    }
                };
                if *same_origin_as_portal {
                    return Ok(Some(Credential::Portal(self.inner.manager.token().await?)));
                }
                tracing::debug!(
                    server = %server,
                    reason = reason.as_str(),
                    "sending no token: the server is not federated with this portal and not trusted"
                );
                Ok(None)
            }
            Route::NoToken(_) => Ok(None),
        }
    }

    /// Reports that ArcGIS rejected `credential` (498). A portal token is
    /// reported to the manager, and the federated server tokens are dropped
    /// with it if they were made from that token (a late report of a token
    /// already replaced keeps the server tokens made from its successor); a
    /// server token is dropped (if it is still the cached one).
    pub fn report_invalid(&self, credential: &Credential) {
        match credential {
            Credential::Portal(token) => self.portal_token_rejected(token),
            Credential::Server { server, token } => self.server_token_rejected(server, token),
        }
    }

    /// Drops every federated server token (in memory; the stored ones are
    /// ignored from now on because they belong to an older portal token, and
    /// removed on the next save).
    pub fn clear_server_tokens(&self) {
        self.clear_server_tokens_if(|_| true);
    }

    fn now(&self) -> Timestamp {
        self.inner.manager.clock().now()
    }

    fn lead(&self) -> Duration {
        self.inner.manager.config().refresh_lead
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
