//! The server-token cache of [`Federation`](super::Federation): one slot per
//! server root, renewed early and one request at a time (the crate's
//! single flight, `single_flight.rs`), saved in the session record only
//! while the portal token they were made from is the stored one, and all
//! dropped when the portal token changes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcgis_auth_core::__private::{constant_time_eq, effective_lead};
use arcgis_auth_core::{
    ErrorKind, ExposeSecret, GenerateTokenRequest, ServerRoot, Timestamp, Token, TokenBinding,
};
use arcgis_auth_storage::ServerTokenRecord;

use super::{Federation, lock};
use crate::access::AccessToken;
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::signin::ServerSignIn;
use crate::single_flight::{Aborted, SingleFlight, aborted};

#[derive(Clone)]
pub(super) struct CachedToken {
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

/// What one fetch of a server token gives every caller that waited for it.
type Fetched = std::result::Result<Result<AccessToken>, RetryWith>;

/// One server's token: its state behind a `std` mutex (held for a few
/// instructions, never across an `await`), and the one fetch in flight.
#[derive(Default)]
pub(super) struct Slot {
    state: Mutex<SlotState>,
    fetch: SingleFlight<Fetched>,
}

#[derive(Default)]
struct SlotState {
    cached: Option<CachedToken>,
    /// Whether the session record was consulted (only on the first miss, so a
    /// token reported invalid is never read back from the store).
    looked_in_store: bool,
}

impl Slot {
    /// The cached token if it is not due for renewal at `now`.
    fn fresh(&self, now: Timestamp) -> Option<AccessToken> {
        lock(&self.state)
            .cached
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The cached token if it has not expired at `now` (a failed early
    /// renewal falls back on it).
    fn still_valid(&self, now: Timestamp) -> Option<AccessToken> {
        lock(&self.state)
            .cached
            .as_ref()
            .filter(|c| now < c.token.expires_at())
            .map(|c| c.token.clone())
    }

    fn keep(&self, cached: CachedToken) {
        lock(&self.state).cached = Some(cached);
    }

    /// True the first time only: whether to look in the session record.
    fn first_look(&self) -> bool {
        !std::mem::replace(&mut lock(&self.state).looked_in_store, true)
    }

    /// Drops the cached token if it is `token`; returns whether it did.
    fn drop_if(&self, token: &AccessToken) -> bool {
        let mut state = lock(&self.state);
        let same = state
            .cached
            .as_ref()
            .is_some_and(|c| c.token.same_token(token));
        if same {
            state.cached = None;
        }
        same
    }

    /// The fresh token, or the outcome of the one fetch in flight (joined,
    /// or started with `fetch`, which must keep what it gets in the slot
    /// before it returns).
    async fn get_or_fetch<F>(
        &self,
        now: impl Fn() -> Timestamp,
        fetch: impl FnOnce() -> F,
    ) -> Fetched
    where
        F: Future<Output = Fetched> + Send + 'static,
    {
        if let Some(token) = self.fresh(now()) {
            return Ok(Ok(token));
        }
        let mut found = None;
        let flight = self.fetch.join_or_start(|| {
            // A fetch may have landed between the look above and the slot.
            if let Some(token) = self.fresh(now()) {
                found = Some(token);
                return None;
            }
            Some(fetch())
        });
        const WHAT: &str = "the server token request";
        match (flight, found) {
            (_, Some(token)) => Ok(Ok(token)),
            (Some(flight), None) => flight
                .wait()
                .await
                .unwrap_or_else(|a| Ok(Err(aborted(a, WHAT)))),
            (None, None) => Ok(Err(aborted(Aborted::Cancelled, WHAT))),
        }
    }
}

#[derive(Default)]
pub(super) struct Tokens {
    /// The portal token the federated server tokens were made from.
    pub(super) portal: Option<AccessToken>,
    /// Federated server tokens: all dropped when the portal token changes.
    pub(super) federated: HashMap<ServerRoot, Arc<Slot>>,
    /// Tokens from trusted standalone servers' own `tokens/generateToken`.
    pub(super) own: HashMap<ServerRoot, Arc<Slot>>,
    /// Tokens from trusted standalone servers' `admin/generateToken`, for
    /// their Administrator API only.
    pub(super) admin: HashMap<ServerRoot, Arc<Slot>>,
}

/// Which of a standalone server's own token endpoints a token comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OwnEndpoint {
    /// `tokens/generateToken` (or what `/rest/info` names): for its services.
    Tokens,
    /// `admin/generateToken`: for its Administrator API (`{root}/admin/...`).
    Admin,
}

impl Federation {
    /// ArcGIS rejected the server token `token` of `server`: drop it if it
    /// is still the cached one. (A fetch in flight replaces it anyway, and
    /// no longer falls back on it if it fails.)
    pub(super) fn server_token_rejected(&self, server: &ServerRoot, token: &AccessToken) {
        let slots: Vec<Arc<Slot>> = {
            let tokens = lock(&self.inner.tokens);
            [
                tokens.federated.get(server),
                tokens.own.get(server),
                tokens.admin.get(server),
            ]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
        };
        for slot in slots {
            if !slot.drop_if(token) {
                tracing::debug!(server = %server, "the server token reported invalid was already replaced");
            }
        }
        tracing::info!(server = %server, "server token reported invalid; the next request gets a new one");
    }

    /// The portal rejected `portal`: report it to the manager, and drop the
    /// server tokens only if they were made from it. A caller still holding
    /// the token from before a renewal must not drop the server tokens made
    /// from the new one (each would cost another `generateToken`).
    pub(super) fn portal_token_rejected(&self, portal: &AccessToken) {
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
    pub(super) fn clear_server_tokens_if(
        &self,
        made_from: impl FnOnce(Option<&AccessToken>) -> bool,
    ) -> bool {
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

    /// The federated server token for `server` (federation already established).
    pub(super) async fn federated_token(&self, server: &ServerRoot) -> Result<AccessToken> {
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

    pub(super) async fn federated_token_once(&self, server: &ServerRoot) -> Fetched {
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
        slot.get_or_fetch(
            || self.now(),
            || {
                let (this, server, into) = (self.clone(), server.clone(), Arc::clone(&slot));
                async move { this.fetch_federated(&into, &server, portal).await }
            },
        )
        .await
    }

    /// The one fetch of a federated server token: from the session record
    /// on the first miss, else from the portal's `generateToken`.
    async fn fetch_federated(
        &self,
        slot: &Slot,
        server: &ServerRoot,
        portal: AccessToken,
    ) -> Fetched {
        let now = self.now();
        if slot.first_look()
            && let Some(stored) = self.load_stored(server, &portal, now).await
            && now < stored.refresh_at
        {
            let token = stored.token.clone();
            slot.keep(stored);
            return Ok(Ok(token));
        }
        let mut request = GenerateTokenRequest::federated(portal.secret().clone(), server);
        // A referer-bound portal token (generateToken, web-tier sign-in) is
        // accepted only with its referer.
        if let Some(referer) = self.inner.manager.session().await.and_then(|r| r.referer) {
            request = request.with_binding(TokenBinding::Referer(referer));
        }
        let url = self.inner.routing.portal().generate_token_url();
        tracing::debug!(server = %server, "asking the portal for a server token");
        match request
            .send(&self.inner.http, &url, self.inner.manager.clock().as_ref())
            .await
        {
            Ok(token) => {
                let token = AccessToken::new(token);
                slot.keep(CachedToken::new(token.clone(), self.now(), self.lead()));
                self.store_token(server, &token, &portal).await;
                Ok(Ok(token))
            }
            Err(err) if err.kind() == ErrorKind::InvalidToken => Err(RetryWith(portal)),
            Err(err) => {
                let err = FlowError::from(err);
                // A failed early renewal: keep serving the token while it is valid.
                match slot.still_valid(self.now()) {
                    Some(token) => {
                        tracing::warn!(server = %server, error = %err, "server token renewal failed; the current one is still valid");
                        Ok(Ok(token))
                    }
                    None => Ok(Err(err)),
                }
            }
        }
    }

    /// A token from a trusted standalone server's own `generateToken`
    /// (`endpoint` says which).
    pub(super) async fn own_token(
        &self,
        server: &ServerRoot,
        endpoint: OwnEndpoint,
    ) -> Result<AccessToken> {
        if self.inner.routing.credentials_for(server).is_none() {
            return Err(no_credentials(server));
        }
        let slot = {
            let mut tokens = lock(&self.inner.tokens);
            let slots = match endpoint {
                OwnEndpoint::Tokens => &mut tokens.own,
                OwnEndpoint::Admin => &mut tokens.admin,
            };
            Arc::clone(slots.entry(server.clone()).or_default())
        };
        let fetched = slot
            .get_or_fetch(
                || self.now(),
                || {
                    let (this, server, into) = (self.clone(), server.clone(), Arc::clone(&slot));
                    async move { Ok(this.fetch_own(&into, &server, endpoint).await) }
                },
            )
            .await;
        // Only a federated fetch asks for a retry.
        fetched.unwrap_or_else(|retry| Err(retry.into()))
    }

    /// The one fetch of a standalone server's own token, through the
    /// crate's one standalone-server source ([`ServerSignIn`]).
    async fn fetch_own(
        &self,
        slot: &Slot,
        server: &ServerRoot,
        endpoint: OwnEndpoint,
    ) -> Result<AccessToken> {
        let credentials = self
            .inner
            .routing
            .credentials_for(server)
            .ok_or_else(|| no_credentials(server))?;
        let account =
            ServerSignIn::new(server.clone(), credentials.clone(), self.inner.http.clone())
                .with_clock(Arc::clone(self.inner.manager.clock()));
        let account = match endpoint {
            // The server's own token endpoint, as its /rest/info names it
            // (only on the server's origin), else `tokens/generateToken`.
            OwnEndpoint::Tokens => match self.server_info(server).await {
                Ok(info) => account.with_server_info(&info),
                Err(_) => account,
            },
            // Always on the server's own root: /rest/info names no admin endpoint.
            OwnEndpoint::Admin => account.admin(),
        };
        match account.request_token().await {
            Ok(token) => {
                let token = AccessToken::new(token);
                slot.keep(CachedToken::new(token.clone(), self.now(), self.lead()));
                Ok(token)
            }
            Err(err) => slot.still_valid(self.now()).ok_or(err),
        }
    }

    /// A server token saved in the session record for the current portal token.
    pub(super) async fn load_stored(
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

    /// Saves a server token in the session record, through the manager
    /// (the record's one writer), unless the session's portal token is no
    /// longer the one it was made from.
    pub(super) async fn store_token(
        &self,
        server: &ServerRoot,
        token: &AccessToken,
        portal: &AccessToken,
    ) {
        let entry = ServerTokenRecord {
            token: token.secret().clone(),
            expires_at: token.expires_at(),
            ssl: token.ssl(),
        };
        self.inner
            .manager
            .save_server_token(server.as_url().as_str().to_owned(), entry, portal.clone())
            .await;
    }
}

/// The portal token whose rejection by `generateToken` calls for one retry
/// (`Clone`: every caller that waited for the fetch gets it).
#[derive(Clone)]
pub(super) struct RetryWith(AccessToken);

impl From<RetryWith> for FlowError {
    fn from(r: RetryWith) -> Self {
        drop(r);
        FlowError::from(arcgis_auth_core::Error::new(
            ErrorKind::InvalidToken,
            "the portal rejected its own token while issuing a server token, twice: sign in again",
        ))
    }
}

fn no_credentials(server: &ServerRoot) -> FlowError {
    FlowError::new(
        FlowErrorKind::InvalidInput,
        format!(
            "no credentials are configured for {server}: trust it with \
             TokenRouting::trust_server_with_credentials to get its own token"
        ),
    )
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
