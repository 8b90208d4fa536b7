//! Every way to sign in to ArcGIS, each ending in a session the
//! [`TokenManager`] keeps alive.
//!
//! | strategy | for | renewed by | guide |
//! |---|---|---|---|
//! | [`UserSignIn`] (authorization code + PKCE) | any app a person signs in to | the refresh token | [user sign-in](crate::guide::user_sign_in) |
//! | [`UserSignIn::sign_in_with_loopback`] | CLIs and desktop apps receiving the code | (as above) | [loopback](crate::guide::loopback) |
//! | out-of-band ([`OOB_REDIRECT_URI`](arcgis_auth_core::OOB_REDIRECT_URI)) | apps that cannot receive a redirect | (as above) | [out-of-band](crate::guide::out_of_band) |
//! | [`AppSignIn`] (client credentials) | servers acting as the app itself | signing in again with the secret in memory | [app credentials](crate::guide::app_credentials) |
//! | [`PasswordSignIn`] (`generateToken`) | scripts with a username and password | signing in again with the password in memory | [generateToken](crate::guide::generate_token) |
//! | [`ServerSignIn`] (a standalone server's own `generateToken`) | services calling a standalone ArcGIS Server with its own account | signing in again with the password in memory | [enterprise](crate::guide::enterprise) |
//! | [`WebTierSignIn`] (`generateToken` `request=getToken`) | Enterprise portals behind PKI or LDAP (HTTP Basic) | minting again over the web-tier credential | [enterprise](crate::guide::enterprise) |
//! | [`ApiKey`] | apps with a developer API key | never | [API keys](crate::guide::api_keys) |
//! | [`ImplicitCallback`] (deprecated) | apps migrating off the implicit grant | never | [implicit](crate::guide::implicit) |
//!
//! Every sign-in returns a [`SignedIn`]: the new [`SessionRecord`] (what the
//! store keeps: never a password or client secret) and the [`TokenSource`]
//! that renews it. [`SignedIn::into_manager`] hands both to a new
//! [`TokenManager`] in one call. After a restart, build the manager from the
//! store with the same strategy value as its source
//! ([`TokenManager::builder`]): the session is read back from the store.

mod api_key;
mod app;
mod implicit;
mod loopback;
mod oob;
mod password;
mod pending;
mod server;
mod user;
mod web_tier;

mod callback;

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{Clock, OAuthClient, Token};
use arcgis_auth_storage::{SessionKind, SessionRecord, SessionStore};
use async_trait::async_trait;

use crate::config::ManagerConfig;
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::manager::TokenManager;
use crate::source::{RenewRequest, Renewal, TokenSource};

pub use api_key::{ApiKey, looks_like_api_key};
pub use app::AppSignIn;
pub use implicit::ImplicitCallback;
pub use loopback::{CallbackPath, Loopback};
pub use oob::code_from_pasted;
pub use password::PasswordSignIn;
pub use pending::PendingSignIn;
pub use server::{ServerSignIn, ServerTokenEndpoint};
pub use user::UserSignIn;
pub use web_tier::WebTierSignIn;

/// A finished sign-in: the session to keep and the [`TokenSource`] that renews it.
///
/// `Debug` shows no token.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use arcgis_auth_core::{HttpClient, Portal, SecretString};
/// # use arcgis_auth_flows::signin::AppSignIn;
/// # use arcgis_auth_storage::MemoryStore;
/// # async fn run() -> Result<(), arcgis_auth_flows::FlowError> {
/// let app = AppSignIn::new(
///     Portal::arcgis_online(),
///     "my-client-id",
///     SecretString::from(std::env::var("ARCGIS_CLIENT_SECRET").unwrap_or_default()),
///     HttpClient::new()?,
/// );
/// let signed_in = app.sign_in().await?;
/// println!("token valid until {}", signed_in.token().expires_at());
/// let manager = signed_in.into_manager(Arc::new(MemoryStore::default()), "app").await?;
/// let token = manager.token().await?;
/// # let _ = token;
/// # Ok(())
/// # }
/// ```
pub struct SignedIn<S> {
    record: SessionRecord,
    token: Token,
    source: S,
    clock: Arc<dyn Clock>,
}

impl<S: TokenSource + 'static> SignedIn<S> {
    /// A sign-in that produced `token`, recorded as `record`, renewed by
    /// `source`, with expiry judged by `clock`.
    pub fn new(record: SessionRecord, token: Token, source: S, clock: Arc<dyn Clock>) -> Self {
        SignedIn {
            record,
            token,
            source,
            clock,
        }
    }

    /// The session as it will be stored (no password, no client secret).
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The token the sign-in produced (with the refresh token, for user sign-ins).
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The source that renews the session.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Uses `clock` to judge expiry in the manager (default: the strategy's clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The record and the source, to build a [`TokenManager`] by hand
    /// ([`TokenManager::builder`] + [`TokenManager::set_session`]).
    pub fn into_parts(self) -> (SessionRecord, S) {
        (self.record, self.source)
    }

    /// A [`TokenManager`] for this session, stored under `key` in `store`,
    /// with the default [`ManagerConfig`]. See [`into_manager_with`](Self::into_manager_with).
    pub async fn into_manager(
        self,
        store: Arc<dyn SessionStore>,
        key: impl Into<String>,
    ) -> Result<TokenManager> {
        self.into_manager_with(store, key, ManagerConfig::default())
            .await
    }

    /// A [`TokenManager`] for this session with `config`: the session is
    /// saved under `key` in `store` and served at once.
    ///
    /// Fails only when `key` is not a valid session key
    /// ([`FlowErrorKind::InvalidInput`]). If the store refuses the first save,
    /// the manager is still returned: it serves the session from memory and
    /// saves it on a later call. Call [`TokenManager::persist`] to find out
    /// (it returns the store's error while the session is unsaved).
    pub async fn into_manager_with(
        self,
        store: Arc<dyn SessionStore>,
        key: impl Into<String>,
        config: ManagerConfig,
    ) -> Result<TokenManager> {
        let manager = TokenManager::builder(self.source, store, key)
            .clock(self.clock)
            .config(config)
            .build()?;
        if let Err(err) = manager.set_session(self.record).await {
            tracing::warn!(
                session = %manager.key(),
                error = %err,
                "the new session could not be saved yet; it is served from memory and saved later"
            );
        }
        Ok(manager)
    }
}

impl<S: fmt::Debug> fmt::Debug for SignedIn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("record", &self.record)
            .field("token", &self.token)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The [`TokenSource`] of tokens that are never renewed: API keys and
/// implicit-grant tokens. When such a token expires or is reported invalid,
/// the manager answers [`FlowErrorKind::NotRenewable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeverRenewed;

#[async_trait]
impl TokenSource for NeverRenewed {
    fn renewal(&self, _session: &SessionRecord) -> Renewal {
        Renewal::Never
    }

    async fn renew(&self, _request: &RenewRequest<'_>) -> Result<Token> {
        Err(FlowError::new(
            FlowErrorKind::NotRenewable,
            "this token cannot be renewed: use a new API key or sign in again",
        ))
    }
}

/// `renewal` for sessions of `kind`; any other session only the user can renew
/// (it was not signed in by the strategy asked to renew it).
pub(crate) fn renewal_for(session: &SessionRecord, kind: SessionKind, renewal: Renewal) -> Renewal {
    if session.kind == kind {
        renewal
    } else {
        Renewal::UserMustSignIn
    }
}

/// Checks that `record` was signed in through `client`'s app and portal.
pub(crate) fn check_owner(record: &SessionRecord, client: &OAuthClient) -> Result<()> {
    if record.client_id.as_deref() != Some(client.client_id()) {
        return Err(foreign_record("belongs to another app (client id)"));
    }
    if &record.portal != client.portal() {
        return Err(foreign_record("belongs to another portal"));
    }
    Ok(())
}

/// The error for a session record that does not belong to the strategy renewing it.
pub(crate) fn foreign_record(what: &str) -> FlowError {
    FlowError::new(
        FlowErrorKind::InvalidInput,
        format!("the stored session {what}: build the manager with the strategy that signed it in"),
    )
}
