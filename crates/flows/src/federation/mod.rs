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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arcgis_auth_core::__private::{constant_time_eq, effective_lead};
use arcgis_auth_core::{
    ErrorKind, ExposeSecret, GenerateTokenRequest, HttpClient, Origin, ServerInfo, ServerRoot,
    Timestamp, Token,
};
use arcgis_auth_storage::{SaveMode, ServerTokenRecord, StoreErrorKind};
use tokio::sync::Mutex as AsyncMutex;

use crate::access::AccessToken;
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::manager::TokenManager;
use crate::routing::{NoTokenReason, Route, TokenRouting};

/// Above this many servers, out-of-date `/rest/info` answers are forgotten.
const MAX_INFO_ENTRIES: usize = 256;

/// How long save conflicts are retried when storing a server token.
const MAX_SAVE_CONFLICTS: usize = 3;

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
    /// trusted standalone server's own `generateToken`.
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

#[derive(Clone)]
struct CachedToken {
    token: AccessToken,
    refresh_at: Timestamp,
}

impl CachedToken {
    fn new(token: AccessToken, now: Timestamp, lead: Duration) -> Self {
        let lifetime = token.expires_at().saturating_duration_since(now);
        let refresh_at = token.expires_at() - effective_lead(lead, lifetime);
        CachedToken { token, refresh_at }
    }
}

/// One server's token, behind an async mutex: one request at a time per server.
#[derive(Default)]
struct SlotState {
    cached: Option<CachedToken>,
    /// Whether the session record was consulted (only on the first miss, so a
    /// token reported invalid is never read back from the store).
    looked_in_store: bool,
}

type Slot = Arc<AsyncMutex<SlotState>>;

struct InfoEntry {
    fetched_at: Timestamp,
    result: Result<Arc<ServerInfo>>,
}

#[derive(Default)]
struct Tokens {
    /// The portal token the federated server tokens were made from.
    portal: Option<AccessToken>,
    /// Federated server tokens: all dropped when the portal token changes.
    federated: HashMap<ServerRoot, Slot>,
    /// Tokens from trusted standalone servers' own `generateToken`.
    own: HashMap<ServerRoot, Slot>,
}

struct Inner {
    manager: TokenManager,
    routing: Arc<TokenRouting>,
    http: HttpClient,
    config: FederationConfig,
    infos: Mutex<HashMap<ServerRoot, Arc<AsyncMutex<Option<InfoEntry>>>>>,
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
                infos: Mutex::new(HashMap::new()),
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
    /// [`FederationConfig::failed_info_ttl`]). No token is sent.
    pub async fn server_info(&self, server: &ServerRoot) -> Result<Arc<ServerInfo>> {
        let now = self.now();
        let slot = {
            let mut infos = lock(&self.inner.infos);
            if infos.len() >= MAX_INFO_ENTRIES && !infos.contains_key(server) {
                make_room(&mut infos, now, self.inner.config.info_ttl);
            }
            Arc::clone(infos.entry(server.clone()).or_default())
        };
        let mut entry = slot.lock().await;
        let now = self.now();
        if let Some(e) = entry.as_ref() {
            let ttl = match e.result {
                Ok(_) => self.inner.config.info_ttl,
                Err(_) => self
                    .inner
                    .config
                    .failed_info_ttl
                    .min(self.inner.config.info_ttl),
            };
            if now < e.fetched_at + ttl {
                return e.result.clone();
            }
        }
        tracing::debug!(server = %server, "reading the server's /rest/info");
        let result = self
            .inner
            .http
            .server_info(server)
            .await
            .map(Arc::new)
            .map_err(FlowError::from);
        *entry = Some(InfoEntry {
            fetched_at: now,
            result: result.clone(),
        });
        result
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
                token: self.own_token(server).await?,
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
            Credential::Server { server, token } => {
                let slots: Vec<Slot> = {
                    let tokens = lock(&self.inner.tokens);
                    [tokens.federated.get(server), tokens.own.get(server)]
                        .into_iter()
                        .flatten()
                        .cloned()
                        .collect()
                };
                for slot in slots {
                    if let Ok(mut guard) = slot.try_lock() {
                        if guard
                            .cached
                            .as_ref()
                            .is_some_and(|c| c.token.same_token(token))
                        {
                            guard.cached = None;
                        }
                    } else {
                        // A renewal is running for this server: it replaces the token anyway.
                        tracing::debug!(server = %server, "server token reported invalid while being renewed");
                    }
                }
                tracing::info!(server = %server, "server token reported invalid; the next request gets a new one");
            }
        }
    }

    /// Drops every federated server token (in memory; the stored ones are
    /// ignored from now on because they belong to an older portal token, and
    /// removed on the next save).
    pub fn clear_server_tokens(&self) {
        self.clear_server_tokens_if(|_| true);
    }

    /// The portal rejected `portal`: report it to the manager, and drop the
    /// server tokens only if they were made from it. A caller still holding
    /// the token from before a renewal must not drop the server tokens made
    /// from the new one (each would cost another `generateToken`).
    fn portal_token_rejected(&self, portal: &AccessToken) {
        self.inner.manager.report_invalid(portal);
        let cleared = self.clear_server_tokens_if(|made_from| {
            made_from.is_none_or(|known| known.same_token(portal))
        });
        if !cleared {
            tracing::debug!(
                "an older portal token was rejected; the server tokens are from the current one"
            );
        }
    }

    /// Drops the federated server tokens if `made_from` (given the portal
    /// token they were made from) says so; returns whether it did.
    fn clear_server_tokens_if(&self, made_from: impl FnOnce(Option<&AccessToken>) -> bool) -> bool {
        let mut tokens = lock(&self.inner.tokens);
        if !made_from(tokens.portal.as_ref()) {
            return false;
        }
        if !tokens.federated.is_empty() {
            tracing::debug!(
                count = tokens.federated.len(),
                "dropping federated server tokens"
            );
        }
        tokens.federated.clear();
        tokens.portal = None;
        true
    }

    fn now(&self) -> Timestamp {
        self.inner.manager.clock().now()
    }

    fn lead(&self) -> Duration {
        self.inner.manager.config().refresh_lead
    }

    /// The federated server token for `server` (federation already established).
    async fn federated_token(&self, server: &ServerRoot) -> Result<AccessToken> {
        match self.federated_token_once(server).await {
            Ok(result) => result,
            Err(RetryWith(portal)) => {
                // The portal rejected its own token: renew it and try once more.
                self.portal_token_rejected(&portal);
                match self.federated_token_once(server).await {
                    Ok(result) => result,
                    Err(again) => Err(again.into()),
                }
            }
        }
    }

    async fn federated_token_once(
        &self,
        server: &ServerRoot,
    ) -> std::result::Result<Result<AccessToken>, RetryWith> {
        let mut portal = match self.inner.manager.token().await {
            Ok(p) => p,
            Err(e) => return Ok(Err(e)),
        };
        let slot = {
            let mut tokens = lock(&self.inner.tokens);
            let changed = tokens
                .portal
                .as_ref()
                .is_none_or(|known| !known.same_token(&portal));
            // A caller that fetched the portal token just before a renewal
            // arrives with the old one: when the server tokens already come
            // from the manager's current token, use that instead of dropping
            // them.
            let known_is_current = match (&tokens.portal, self.inner.manager.cached()) {
                (Some(known), Some(current)) => known.same_token(&current),
                _ => false,
            };
            if changed && known_is_current {
                if let Some(known) = &tokens.portal {
                    portal = known.clone();
                }
            } else if changed {
                if !tokens.federated.is_empty() {
                    tracing::debug!("the portal token changed; dropping federated server tokens");
                }
                tokens.federated.clear();
                tokens.portal = Some(portal.clone());
            }
            Arc::clone(tokens.federated.entry(server.clone()).or_default())
        };
        let mut guard = slot.lock().await;
        let now = self.now();
        if let Some(cached) = guard.cached.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(Ok(cached.token.clone()));
        }
        if !guard.looked_in_store {
            guard.looked_in_store = true;
            if let Some(stored) = self.load_stored(server, &portal, now).await
                && now < stored.refresh_at
            {
                let token = stored.token.clone();
                guard.cached = Some(stored);
                return Ok(Ok(token));
            }
        }
        let request = GenerateTokenRequest::federated(portal.secret().clone(), server);
        let url = self.inner.routing.portal().generate_token_url();
        tracing::debug!(server = %server, "asking the portal for a server token");
        match request
            .send(&self.inner.http, &url, self.inner.manager.clock().as_ref())
            .await
        {
            Ok(token) => {
                let token = AccessToken::new(token);
                let now = self.now();
                guard.cached = Some(CachedToken::new(token.clone(), now, self.lead()));
                drop(guard);
                self.store_token(server, &token, &portal).await;
                Ok(Ok(token))
            }
            Err(err) if err.kind() == ErrorKind::InvalidToken => Err(RetryWith(portal)),
            Err(err) => {
                let err = FlowError::from(err);
                // A failed early renewal: keep serving the token while it is valid.
                match guard.cached.as_ref() {
                    Some(c) if self.now() < c.token.expires_at() => {
                        tracing::warn!(server = %server, error = %err, "server token renewal failed; the current one is still valid");
                        Ok(Ok(c.token.clone()))
                    }
                    _ => Ok(Err(err)),
                }
            }
        }
    }

    /// A token from a trusted standalone server's own `generateToken`.
    async fn own_token(&self, server: &ServerRoot) -> Result<AccessToken> {
        let credentials = self.inner.routing.credentials_for(server).ok_or_else(|| {
            FlowError::new(
                FlowErrorKind::InvalidInput,
                format!(
                    "no credentials are configured for {server}: trust it with \
                     TokenRouting::trust_server_with_credentials to get its own token"
                ),
            )
        })?;
        let slot = {
            let mut tokens = lock(&self.inner.tokens);
            Arc::clone(tokens.own.entry(server.clone()).or_default())
        };
        let mut guard = slot.lock().await;
        let now = self.now();
        if let Some(cached) = guard.cached.as_ref().filter(|c| now < c.refresh_at) {
            return Ok(cached.token.clone());
        }
        // The server's own token endpoint, as its /rest/info names it, but
        // only on the server's origin: the password goes nowhere else.
        let url = match self.server_info(server).await {
            Ok(info) => info
                .token_services_url()
                .filter(|u| Origin::of(u).ok().as_ref() == Some(server.origin()))
                .cloned(),
            Err(_) => None,
        }
        .unwrap_or_else(|| server.generate_token_url());
        let request = GenerateTokenRequest::password(
            credentials.username.clone(),
            credentials.password.clone(),
            credentials.binding.clone(),
        );
        tracing::debug!(server = %server, "asking a standalone server for its own token");
        match request
            .send(&self.inner.http, &url, self.inner.manager.clock().as_ref())
            .await
        {
            Ok(token) => {
                let token = AccessToken::new(token);
                guard.cached = Some(CachedToken::new(token.clone(), self.now(), self.lead()));
                Ok(token)
            }
            Err(err) => match guard.cached.as_ref() {
                Some(c) if self.now() < c.token.expires_at() => Ok(c.token.clone()),
                _ => Err(err.into()),
            },
        }
    }

    /// A server token saved in the session record for the current portal token.
    async fn load_stored(
        &self,
        server: &ServerRoot,
        portal: &AccessToken,
        now: Timestamp,
    ) -> Option<CachedToken> {
        let manager = &self.inner.manager;
        let stored = match manager.store().load(manager.key()).await {
            Ok(stored) => stored?,
            Err(err) => {
                tracing::debug!(error = %err, "could not read stored server tokens");
                return None;
            }
        };
        let record = stored.record;
        if !made_from(&record, portal) {
            return None;
        }
        let entry = record.server_tokens.get(server.as_url().as_str())?;
        if entry.expires_at <= now {
            return None;
        }
        let token = Token::new(entry.token.clone(), entry.expires_at).with_ssl(entry.ssl);
        tracing::debug!(server = %server, "using the stored server token");
        Some(CachedToken::new(AccessToken::new(token), now, self.lead()))
    }

    /// Saves a server token in the session record (compare-and-swap), unless
    /// the stored portal token is no longer the one it was made from.
    async fn store_token(&self, server: &ServerRoot, token: &AccessToken, portal: &AccessToken) {
        let manager = &self.inner.manager;
        let store = manager.store();
        for _ in 0..MAX_SAVE_CONFLICTS {
            let stored = match store.load(manager.key()).await {
                Ok(Some(stored)) => stored,
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "could not save the server token (kept in memory)");
                    return;
                }
            };
            let mut record = stored.record;
            if !made_from(&record, portal) {
                // The portal token was renewed meanwhile: this server token is already stale.
                return;
            }
            record.server_tokens.insert(
                server.as_url().as_str().to_owned(),
                ServerTokenRecord {
                    token: token.secret().clone(),
                    expires_at: token.expires_at(),
                    ssl: token.ssl(),
                },
            );
            match store
                .save(manager.key(), &record, SaveMode::Update(stored.version))
                .await
            {
                Ok(_) => return,
                Err(err) if err.kind() == StoreErrorKind::Conflict => continue,
                Err(err) => {
                    tracing::warn!(error = %err, "could not save the server token (kept in memory)");
                    return;
                }
            }
        }
        tracing::warn!("could not save the server token after repeated conflicts (kept in memory)");
    }
}

/// Keeps the `/rest/info` cache under [`MAX_INFO_ENTRIES`]: forgets answers
/// that are out of date anyway, then, if the servers seen lately are still too
/// many, the oldest answers (they are read again when needed). Entries being
/// read right now are kept; there are at most as many as concurrent callers.
fn make_room(
    infos: &mut HashMap<ServerRoot, Arc<AsyncMutex<Option<InfoEntry>>>>,
    now: Timestamp,
    ttl: Duration,
) {
    infos.retain(|_, slot| {
        slot.try_lock().map_or(true, |e| {
            e.as_ref().is_some_and(|e| now < e.fetched_at + ttl)
        })
    });
    let excess = (infos.len() + 1).saturating_sub(MAX_INFO_ENTRIES);
    if excess == 0 {
        return;
    }
    let mut idle: Vec<(Timestamp, ServerRoot)> = infos
        .iter()
        .filter_map(|(server, slot)| {
            let fetched_at = slot.try_lock().ok()?.as_ref().map(|e| e.fetched_at);
            Some((fetched_at.unwrap_or(Timestamp::UNIX_EPOCH), server.clone()))
        })
        .collect();
    idle.sort_by_key(|(fetched_at, _)| *fetched_at);
    for (_, server) in idle.into_iter().take(excess) {
        infos.remove(&server);
    }
}

/// The portal token whose rejection by `generateToken` calls for one retry.
struct RetryWith(AccessToken);

impl From<RetryWith> for FlowError {
    fn from(r: RetryWith) -> Self {
        drop(r);
        FlowError::from(arcgis_auth_core::Error::new(
            ErrorKind::InvalidToken,
            "the portal rejected its own token while issuing a server token, twice: sign in again",
        ))
    }
}

/// Whether the record's server tokens were made from `portal`: the manager
/// drops a record's server tokens whenever it renews the portal token, and
/// they are saved only while it is the one they were made from.
fn made_from(record: &arcgis_auth_storage::SessionRecord, portal: &AccessToken) -> bool {
    record
        .access_token
        .as_ref()
        .is_some_and(|t| same_secret(t, portal))
}

fn same_secret(secret: &arcgis_auth_core::SecretString, token: &AccessToken) -> bool {
    constant_time_eq(
        secret.expose_secret().as_bytes(),
        token.secret().expose_secret().as_bytes(),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::NeverRenewed;
    use arcgis_auth_core::{ManualClock, Portal};
    use arcgis_auth_storage::MemoryStore;

    #[tokio::test]
    async fn the_info_cache_stays_bounded_however_many_servers_are_seen() {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_700_000_000_000));
        let manager = TokenManager::builder(NeverRenewed, Arc::new(MemoryStore::new()), "k")
            .clock(Arc::new(clock))
            .build()
            .unwrap();
        let routing = TokenRouting::new(Portal::parse("https://gis.example.com/portal").unwrap());
        let federation = Federation::new(manager, routing, HttpClient::new().unwrap());
        // Nothing listens on port 1: every read fails at once, and failures are cached too.
        for i in 0..MAX_INFO_ENTRIES + 50 {
            let server =
                ServerRoot::parse(&format!("http://127.0.0.1:1/s{i}/rest/services")).unwrap();
            assert!(federation.server_info(&server).await.is_err());
        }
        let cached = lock(&federation.inner.infos).len();
        assert!(cached <= MAX_INFO_ENTRIES, "{cached} entries");
    }
}
