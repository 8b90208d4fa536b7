//! The server-token cache of [`Federation`](super::Federation): one slot per
//! server root, renewed early and one request at a time, saved in the
//! session record only while the portal token they were made from is the
//! stored one, and all dropped when the portal token changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::__private::{constant_time_eq, effective_lead};
use arcgis_auth_core::{
    ErrorKind, ExposeSecret, GenerateTokenRequest, Origin, ServerRoot, Timestamp, Token,
    TokenBinding,
};
use arcgis_auth_storage::ServerTokenRecord;
use tokio::sync::Mutex as AsyncMutex;

use super::{Federation, lock};
use crate::access::AccessToken;
use crate::error::{FlowError, FlowErrorKind, Result};

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

/// One server's token, behind an async mutex: one request at a time per server.
#[derive(Default)]
pub(super) struct SlotState {
    cached: Option<CachedToken>,
    /// Whether the session record was consulted (only on the first miss, so a
    /// token reported invalid is never read back from the store).
    looked_in_store: bool,
}

pub(super) type Slot = Arc<AsyncMutex<SlotState>>;

#[derive(Default)]
pub(super) struct Tokens {
    /// The portal token the federated server tokens were made from.
    pub(super) portal: Option<AccessToken>,
    /// Federated server tokens: all dropped when the portal token changes.
    pub(super) federated: HashMap<ServerRoot, Slot>,
    /// Tokens from trusted standalone servers' own `generateToken`.
    pub(super) own: HashMap<ServerRoot, Slot>,
}

impl Federation {
    /// ArcGIS rejected the server token `token` of `server`: drop it if it
    /// is still the cached one.
    pub(super) fn server_token_rejected(&self, server: &ServerRoot, token: &AccessToken) {
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

    pub(super) async fn federated_token_once(
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
    pub(super) async fn own_token(&self, server: &ServerRoot) -> Result<AccessToken> {
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

/// The portal token whose rejection by `generateToken` calls for one retry.
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
