//! Pending sign-ins and user sessions in the session store, and one token manager per session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arcgis_auth_core::{AuthorizeOptions, Clock, Expiration, HttpClient, Timestamp};
use arcgis_auth_flows::account::{Account, SignOutReport};
use arcgis_auth_flows::federation::Federation;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::{PendingSignIn, UserSignIn};
use arcgis_auth_flows::{FlowError, FlowErrorKind, TokenManager};
use arcgis_auth_storage::{SaveMode, SessionKind, SessionRecord, SessionStore, StoreError};
use serde_json::json;
use url::Url;

use super::ids::RandomId;
use crate::config::UserSignInConfig;

/// Where pending sign-ins live in the store (then the SHA-256 of their cookie's id).
pub(crate) const PENDING_PREFIX: &str = "gateway/user-pending/";

/// Where user sessions live in the store (then the SHA-256 of their cookie's id).
pub(crate) const SESSION_PREFIX: &str = "gateway/user/";

/// The `extra` field of a pending sign-in's record.
const PENDING_FIELD: &str = "gateway_pending_sign_in";

/// The `extra` field of a session's record: when it ends.
const SESSION_FIELD: &str = "gateway_session";

/// How long a sign-in may take between `/auth/sign-in` and the callback.
pub(crate) const PENDING_LIFE: Duration = Duration::from_secs(10 * 60);

/// At most this many sessions keep a token manager in this process's memory.
const CACHED_SESSIONS: usize = 10_000;

/// How often a process looks through the store for pending sign-ins never
/// completed and sessions that ended, and deletes them.
const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);

/// A sign-in that began: the pending id for the browser's cookie and the portal's URL.
pub(crate) struct Begun {
    pub(crate) id: RandomId,
    pub(crate) url: Url,
}

/// A sign-in that finished: the new session's id, where the browser goes back to.
pub(crate) struct Finished {
    pub(crate) id: RandomId,
    pub(crate) return_to: String,
    pub(crate) max_age: Duration,
}

/// Why a callback did not sign anyone in.
#[derive(Debug)]
pub(crate) enum CallbackError {
    /// No pending sign-in for this browser (none started, expired, completed already).
    NoSignIn,
    /// The callback's `state` is not this browser's sign-in's.
    StateMismatch,
    /// The user declined.
    Declined,
    /// The code exchange failed.
    Portal(FlowError),
    /// The store did not answer.
    Store(StoreError),
}

/// One signed-in user's session in this process: its token manager and federated server tokens.
pub(crate) struct UserSession {
    key: String,
    federation: Federation,
}

impl UserSession {
    /// The session's tokens, and its federated servers' tokens.
    pub(crate) fn federation(&self) -> &Federation {
        &self.federation
    }
}

/// A session as `/auth/me` shows it.
pub(crate) struct Who {
    pub(crate) username: Option<String>,
    pub(crate) portal: String,
    pub(crate) ends_at: Timestamp,
}

/// The gateway's signed-in users: `[user_sign_in]` at work.
pub(crate) struct UserSessions {
    config: UserSignInConfig,
    sign_in: UserSignIn,
    store: Arc<dyn SessionStore>,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    routing: TokenRouting,
    cache: Mutex<HashMap<String, Arc<UserSession>>>,
    pending_cookie: String,
    /// When this process last swept the store (`None`: not yet).
    swept_at: Mutex<Option<Timestamp>>,
}

impl std::fmt::Debug for UserSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSessions")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl UserSessions {
    pub(crate) fn new(
        config: UserSignInConfig,
        store: Arc<dyn SessionStore>,
        http: HttpClient,
        clock: Arc<dyn Clock>,
    ) -> UserSessions {
        let mut sign_in = UserSignIn::new(
            config.portal.clone(),
            config.client_id.clone(),
            http.clone(),
        )
        .with_clock(Arc::clone(&clock));
        if let Some(secret) = &config.client_secret {
            sign_in = sign_in.with_client_secret(secret.clone());
        }
        let pending_cookie = format!("{}-pending", config.cookie_name);
        UserSessions {
            routing: TokenRouting::new(config.portal.clone()),
            config,
            sign_in,
            store,
            http,
            clock,
            cache: Mutex::new(HashMap::new()),
            pending_cookie,
            swept_at: Mutex::new(None),
        }
    }

    pub(crate) fn config(&self) -> &UserSignInConfig {
        &self.config
    }

    /// The session cookie's name.
    pub(crate) fn cookie_name(&self) -> &str {
        &self.config.cookie_name
    }

    /// The pending sign-in cookie's name (`{cookie_name}-pending`).
    pub(crate) fn pending_cookie_name(&self) -> &str {
        &self.pending_cookie
    }

    /// The routing rules of the users' tokens.
    pub(crate) fn routing(&self) -> &TokenRouting {
        &self.routing
    }

    /// Starts a sign-in that comes back to `return_to`: the pending sign-in
    /// (verifier, state) goes to the store under a new random id.
    pub(crate) async fn begin(&self, return_to: String) -> Result<Begun, BeginError> {
        self.sweep_when_due().await;
        let hours = self.config.session_ttl.as_secs() / 3600;
        let minutes = u32::try_from(hours * 60).unwrap_or(u32::MAX);
        let options = AuthorizeOptions::new().expiration(Expiration::minutes(minutes));
        let pending = self
            .sign_in
            .begin(&self.config.redirect_uri(), &options)
            .map_err(BeginError::Flow)?;
        let id = RandomId::new().ok_or(BeginError::Random)?;
        let mut record = SessionRecord::new(self.config.portal.clone(), SessionKind::User);
        record.client_id = Some(self.config.client_id.clone());
        record.redirect_uri = Some(pending.redirect_uri().to_owned());
        record.updated_at = Some(self.clock.now());
        let saved = serde_json::to_value(&pending).map_err(|_| BeginError::Random)?;
        record.extra.insert(
            PENDING_FIELD.to_owned(),
            json!({ "sign_in": saved, "return_to": return_to }),
        );
        self.store
            .save(&pending_key(&id), &record, SaveMode::Create)
            .await
            .map_err(BeginError::Store)?;
        Ok(Begun {
            id,
            url: pending.url().clone(),
        })
    }

    /// Finishes the sign-in of the pending id `pending` with the callback's
    /// query: the pending sign-in is taken from the store (once: a second
    /// callback finds none), the `state` checked (nothing is sent when it
    /// differs), the code exchanged, and the session stored under a new id.
    pub(crate) async fn complete(
        &self,
        pending: Option<RandomId>,
        query: &str,
    ) -> Result<Finished, CallbackError> {
        let id = pending.ok_or(CallbackError::NoSignIn)?;
        let key = pending_key(&id);
        let stored = self
            .store
            .load(&key)
            .await
            .map_err(CallbackError::Store)?
            .ok_or(CallbackError::NoSignIn)?;
        // Taken once: whoever deletes this version completes it.
        match self.store.delete(&key, Some(&stored.version)).await {
            Ok(true) => {}
            Ok(false) => return Err(CallbackError::NoSignIn),
            Err(e) if e.kind() == arcgis_auth_storage::StoreErrorKind::Conflict => {
                return Err(CallbackError::NoSignIn);
            }
            Err(e) => return Err(CallbackError::Store(e)),
        }
        let field = stored
            .record
            .extra
            .get(PENDING_FIELD)
            .ok_or(CallbackError::NoSignIn)?;
        let signing: PendingSignIn = serde_json::from_value(field["sign_in"].clone())
            .map_err(|_| CallbackError::NoSignIn)?;
        let return_to = field["return_to"]
            .as_str()
            .and_then(|r| super::return_to::check(Some(r)))
            .unwrap_or_else(|| "/".to_owned());
        if self.clock.now() > signing.created_at() + PENDING_LIFE {
            return Err(CallbackError::NoSignIn);
        }
        let signed_in = match self.sign_in.complete(&signing, query).await {
            Ok(s) => s,
            Err(e) if e.kind() == FlowErrorKind::StateMismatch => {
                return Err(CallbackError::StateMismatch);
            }
            Err(e) if e.arcgis_kind() == Some(arcgis_auth_core::ErrorKind::AccessDenied) => {
                return Err(CallbackError::Declined);
            }
            Err(e) => return Err(CallbackError::Portal(e)),
        };
        let id = RandomId::new().ok_or_else(|| {
            CallbackError::Portal(FlowError::new(
                FlowErrorKind::Io,
                "the operating system's random source failed",
            ))
        })?;
        let (mut record, _) = signed_in.into_parts();
        let now = self.clock.now();
        let ends_at = now + self.config.session_ttl;
        record.extra.insert(
            SESSION_FIELD.to_owned(),
            json!({ "signed_in_at": now.as_unix_millis(), "ends_at": ends_at.as_unix_millis() }),
        );
        let key = session_key(&id);
        self.store
            .save(&key, &record, SaveMode::Create)
            .await
            .map_err(CallbackError::Store)?;
        tracing::info!(
            user = record.username.as_deref().unwrap_or("?"),
            "a user signed in through the gateway"
        );
        Ok(Finished {
            id,
            return_to,
            max_age: self.config.session_ttl,
        })
    }

    /// The session the cookie `id` names, read from the store on every call
    /// (so a sign-out anywhere takes effect on the next request), or `None`
    /// when there is none (or it ended: then it is deleted).
    pub(crate) async fn lookup(
        &self,
        id: Option<RandomId>,
    ) -> Result<Option<(Arc<UserSession>, Who)>, StoreError> {
        let Some(id) = id else {
            return Ok(None);
        };
        let key = session_key(&id);
        let Some(stored) = self.store.load(&key).await? else {
            self.forget(&key);
            return Ok(None);
        };
        let record = &stored.record;
        let ends_at = record
            .extra
            .get(SESSION_FIELD)
            .and_then(|s| s["ends_at"].as_i64())
            .map(Timestamp::from_unix_millis);
        let mine = record.kind == SessionKind::User
            && record.client_id.as_deref() == Some(self.config.client_id.as_str())
            && record.portal == self.config.portal;
        let Some(ends_at) = ends_at.filter(|_| mine) else {
            return Ok(None);
        };
        if self.clock.now() >= ends_at {
            self.end(&key).await;
            return Ok(None);
        }
        let who = Who {
            username: record.username.clone(),
            portal: record.portal.to_string(),
            ends_at,
        };
        Ok(Some((self.session(&key)?, who)))
    }

    /// The cached session of `key`, or a new one (its manager reads the store).
    fn session(&self, key: &str) -> Result<Arc<UserSession>, StoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = cache.get(key) {
            return Ok(Arc::clone(s));
        }
        let manager = TokenManager::builder(self.sign_in.clone(), Arc::clone(&self.store), key)
            .clock(Arc::clone(&self.clock))
            .config(crate::renewals::manager_config())
            .build()
            .map_err(|e| {
                StoreError::new(
                    arcgis_auth_storage::StoreErrorKind::InvalidInput,
                    "a session's token manager could not be built",
                )
                .with_source(e)
            })?;
        let session = Arc::new(UserSession {
            key: key.to_owned(),
            federation: Federation::new(manager, self.routing.clone(), self.http.clone()),
        });
        if cache.len() >= CACHED_SESSIONS {
            // Any one goes: its manager is rebuilt from the store when needed.
            if let Some(k) = cache.keys().next().cloned() {
                cache.remove(&k);
            }
        }
        cache.insert(key.to_owned(), Arc::clone(&session));
        Ok(session)
    }

    fn forget(&self, key: &str) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// Every [`SWEEP_EVERY`], deletes the pending sign-ins older than
    /// [`PENDING_LIFE`] and the sessions past their end (each process
    /// sweeps on its own; a record deleted twice is no harm).
    async fn sweep_when_due(&self) {
        let now = self.clock.now();
        {
            let mut at = self.swept_at.lock().unwrap_or_else(PoisonError::into_inner);
            if at.is_some_and(|t| now < t + SWEEP_EVERY) {
                return;
            }
            *at = Some(now);
        }
        let mut deleted = 0usize;
        for (prefix, field, key_of_end) in [
            (PENDING_PREFIX, PENDING_FIELD, None),
            (SESSION_PREFIX, SESSION_FIELD, Some("ends_at")),
        ] {
            let keys = match self.store.list(prefix).await {
                Ok(keys) => keys,
                Err(err) => {
                    tracing::warn!(error = %err, "the store could not list sign-ins to clean up");
                    return;
                }
            };
            for key in keys {
                let Ok(Some(stored)) = self.store.load(&key).await else {
                    continue;
                };
                let extra = stored.record.extra.get(field);
                let ended = match key_of_end {
                    Some(end) => extra
                        .and_then(|e| e[end].as_i64())
                        .is_some_and(|ms| Timestamp::from_unix_millis(ms) <= now),
                    None => extra
                        .and_then(|e| {
                            serde_json::from_value::<PendingSignIn>(e["sign_in"].clone()).ok()
                        })
                        .is_none_or(|p| p.created_at() + PENDING_LIFE < now),
                };
                if ended
                    && matches!(
                        self.store.delete(&key, Some(&stored.version)).await,
                        Ok(true)
                    )
                {
                    self.forget(&key);
                    deleted += 1;
                }
            }
        }
        if deleted > 0 {
            tracing::info!(
                deleted,
                "deleted sign-ins never completed and sessions that ended"
            );
        }
    }

    /// Deletes a session that can no longer serve (ended, or its refresh token refused).
    pub(crate) async fn end(&self, key: &str) {
        self.forget(key);
        if let Err(err) = self.store.delete(key, None).await {
            tracing::warn!(error = %err, "an ended user session could not be deleted from the store");
        }
    }

    /// Ends `session` because its token cannot be renewed any more.
    pub(crate) async fn end_session(&self, session: &UserSession) {
        self.end(&session.key).await;
    }

    /// Signs `session` out: its refresh token revoked at the portal, the
    /// session deleted from the store and forgotten here.
    pub(crate) async fn sign_out(&self, session: &UserSession) -> SignOutReport {
        self.forget(&session.key);
        let account = Account::new(session.federation.manager().clone(), self.http.clone());
        account.sign_out().await
    }
}

/// Why a sign-in could not begin.
#[derive(Debug)]
pub(crate) enum BeginError {
    /// The sign-in URL could not be made.
    Flow(FlowError),
    /// The random source failed.
    Random,
    /// The store did not take the pending sign-in.
    Store(StoreError),
}

fn pending_key(id: &RandomId) -> String {
    format!("{PENDING_PREFIX}{}", id.digest())
}

fn session_key(id: &RandomId) -> String {
    format!("{SESSION_PREFIX}{}", id.digest())
}
