//! Named sessions ("profiles") in a store, reopened whatever way they were
//! signed in: what a command-line tool or a desktop app needs to keep several
//! sign-ins side by side and get a token for any of them after a restart.
//!
//! A profile `name` is the session stored under the key `profile/<name>`
//! ([`profile_key`]). [`Profiles::keep`] stores a fresh sign-in there;
//! [`Profiles::open`] builds a [`TokenManager`] for it whose source is a
//! [`StoredSession`]: it renews user sessions with their refresh token, app
//! sessions by signing in again with the client secret you pass in
//! [`RenewalSecrets`], `generateToken` sessions with the password you pass
//! there, and never renews API keys. Without the secret a session needs, the
//! manager answers [`FlowErrorKind::SignInRequired`] once the token expires.
//! Secrets stay in memory: the store never sees them.
//!
//! ```
//! use std::sync::Arc;
//! use arcgis_auth_core::{HttpClient, Portal, SecretString, Timestamp, Token};
//! use arcgis_auth_flows::profile::{Profiles, RenewalSecrets};
//! use arcgis_auth_storage::{MemoryStore, SaveMode, SessionKind, SessionRecord, SessionStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
//! let profiles = Profiles::new(store.clone(), HttpClient::new()?);
//!
//! // Normally `profiles.keep("ci", app.sign_in().await?)`; here by hand.
//! let mut record = SessionRecord::new(Portal::arcgis_online(), SessionKind::App);
//! record.client_id = Some("my-app".into());
//! record.set_token(&Token::new("app-token".into(), Timestamp::MAX));
//! store.save(&arcgis_auth_flows::profile::profile_key("ci")?, &record, SaveMode::Create).await?;
//!
//! assert_eq!(profiles.names().await?, ["ci"]);
//! let secrets = RenewalSecrets::new().client_secret(SecretString::from("from-the-env"));
//! let manager = profiles.open("ci", secrets)?;
//! let token = manager.token().await?; // still valid: no request
//! # let _ = token;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{Clock, HttpClient, SecretString, SystemClock, Token, TokenBinding};
use arcgis_auth_storage::{SessionKind, SessionRecord, SessionStore};
use async_trait::async_trait;

use crate::config::ManagerConfig;
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::manager::TokenManager;
use crate::signin::{AppSignIn, PasswordSignIn, SignedIn, UserSignIn, WebTierSignIn};
use crate::source::{RenewRequest, Renewal, TokenSource};

/// The key prefix of profiles in a store.
pub const PROFILE_PREFIX: &str = "profile/";

/// The longest profile name accepted, in bytes.
const MAX_NAME: usize = 128;

/// The store key of profile `name`: `profile/<name>`.
///
/// Names are 1 to 128 bytes of printable text without white space or `/`.
///
/// ```
/// use arcgis_auth_flows::profile::profile_key;
/// assert_eq!(profile_key("default").unwrap(), "profile/default");
/// assert!(profile_key("a/b").is_err());
/// assert!(profile_key("").is_err());
/// ```
pub fn profile_key(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '/');
    if !ok {
        return Err(FlowError::new(
            FlowErrorKind::InvalidInput,
            "a profile name must be 1 to 128 characters without spaces, control characters or \
             `/`: choose another name",
        ));
    }
    Ok(format!("{PROFILE_PREFIX}{name}"))
}

/// The secrets a stored session may need to be renewed, held in memory only.
///
/// `Debug` shows whether each is present, never its value.
#[derive(Clone, Default)]
pub struct RenewalSecrets {
    client_secret: Option<SecretString>,
    password: Option<SecretString>,
    web_tier: Option<HttpClient>,
}

impl RenewalSecrets {
    /// No secrets: only user sessions (refresh token) can be renewed.
    pub fn new() -> Self {
        RenewalSecrets::default()
    }

    /// The client secret to sign an app session in again with.
    pub fn client_secret(mut self, secret: SecretString) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// The password to sign a `generateToken` session's user in again with.
    pub fn password(mut self, password: SecretString) -> Self {
        self.password = Some(password);
        self
    }

    /// The client holding the web-tier credential a web-tier session was
    /// signed in with ([`HttpClient::with_web_tier`]), to mint its tokens
    /// again; a session signed in with another credential is not renewed
    /// with it.
    pub fn web_tier(mut self, http: HttpClient) -> Self {
        self.web_tier = Some(http);
        self
    }
}

impl fmt::Debug for RenewalSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<SecretString>| s.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("RenewalSecrets")
            .field("client_secret", &shown(&self.client_secret))
            .field("password", &shown(&self.password))
            .field(
                "web_tier",
                &self.web_tier.as_ref().and_then(HttpClient::web_tier),
            )
            .finish()
    }
}

/// A [`TokenSource`] for a stored session of any kind: it renews the session
/// the way the strategy that signed it in would, built from the stored record
/// (portal, client id, user, token binding) and the [`RenewalSecrets`] it holds.
///
/// | stored kind | renewed by | needs |
/// |---|---|---|
/// | user | [`UserSignIn`] (refresh or exchange) | the stored refresh token |
/// | app | [`AppSignIn`] (client credentials) | [`RenewalSecrets::client_secret`] |
/// | `generateToken` | [`PasswordSignIn`] | [`RenewalSecrets::password`] |
/// | web tier | [`WebTierSignIn`] (`request=getToken`) | [`RenewalSecrets::web_tier`] |
/// | API key | never | |
#[derive(Clone)]
pub struct StoredSession {
    http: HttpClient,
    clock: Arc<dyn Clock>,
    secrets: RenewalSecrets,
}

impl StoredSession {
    /// A source renewing through `http` with `secrets`, on the system clock.
    pub fn new(http: HttpClient, secrets: RenewalSecrets) -> Self {
        StoredSession {
            http,
            clock: Arc::new(SystemClock),
            secrets,
        }
    }

    /// Uses `clock` for issue times of renewed tokens.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn strategy(&self, record: &SessionRecord) -> Option<Strategy> {
        let clock = Arc::clone(&self.clock);
        let http = self.http.clone();
        let portal = record.portal.clone();
        match record.kind {
            SessionKind::User => {
                let client_id = record.client_id.clone()?;
                Some(Strategy::User(
                    UserSignIn::new(portal, client_id, http).with_clock(clock),
                ))
            }
            SessionKind::App => {
                let client_id = record.client_id.clone()?;
                let secret = self.secrets.client_secret.clone()?;
                Some(Strategy::App(
                    AppSignIn::new(portal, client_id, secret, http).with_clock(clock),
                ))
            }
            SessionKind::GenerateToken => {
                let username = record.username.clone()?;
                let password = self.secrets.password.clone()?;
                let binding = match (&record.referer, record.client_ip) {
                    (Some(referer), _) => TokenBinding::Referer(referer.clone()),
                    (None, Some(ip)) => TokenBinding::Ip(ip),
                    (None, None) => TokenBinding::RequestIp,
                };
                Some(Strategy::Password(
                    PasswordSignIn::new(portal, http, binding)
                        .with_credentials(username, password)
                        .with_clock(clock),
                ))
            }
            SessionKind::WebTier => {
                let http = self.secrets.web_tier.clone()?;
                let referer = record.referer.clone()?;
                WebTierSignIn::new(portal, http, referer)
                    .ok()
                    .map(|s| Strategy::WebTier(s.with_clock(clock)))
            }
            _ => None,
        }
    }
}

/// The strategy a record is renewed with.
enum Strategy {
    User(UserSignIn),
    App(AppSignIn),
    Password(PasswordSignIn),
    WebTier(WebTierSignIn),
}

impl Strategy {
    fn source(&self) -> &dyn TokenSource {
        match self {
            Strategy::User(s) => s,
            Strategy::App(s) => s,
            Strategy::Password(s) => s,
            Strategy::WebTier(s) => s,
        }
    }
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenSource for StoredSession {
    fn name(&self) -> &'static str {
        "stored_session"
    }

    fn renewal(&self, session: &SessionRecord) -> Renewal {
        match (session.kind, self.strategy(session)) {
            (_, Some(strategy)) => strategy.source().renewal(session),
            (SessionKind::ApiKey, None) => Renewal::Never,
            (_, None) => Renewal::UserMustSignIn,
        }
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token> {
        match self.strategy(request.session()) {
            Some(strategy) => strategy.source().renew(request).await,
            None => Err(FlowError::new(
                FlowErrorKind::SignInRequired,
                "this session cannot be renewed without its secret (never stored): sign in again",
            )),
        }
    }
}

/// Named sessions in one store; see the [module docs](self).
#[derive(Clone)]
pub struct Profiles {
    store: Arc<dyn SessionStore>,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    config: ManagerConfig,
}

impl fmt::Debug for Profiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profiles")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Profiles {
    /// Profiles in `store`, renewed through `http`, on the system clock, with
    /// the default [`ManagerConfig`].
    pub fn new(store: Arc<dyn SessionStore>, http: HttpClient) -> Self {
        Profiles {
            store,
            http,
            clock: Arc::new(SystemClock),
            config: ManagerConfig::default(),
        }
    }

    /// Uses `clock` to judge expiry in the managers it builds.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `config` for the managers it builds.
    pub fn with_config(mut self, config: ManagerConfig) -> Self {
        self.config = config;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    /// The names of the stored profiles, sorted.
    pub async fn names(&self) -> Result<Vec<String>> {
        let keys = self.store.list(PROFILE_PREFIX).await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(PROFILE_PREFIX).map(str::to_owned))
            .collect())
    }

    /// The session stored for `name`, if any (its tokens stay [`SecretString`]s).
    pub async fn load(&self, name: &str) -> Result<Option<SessionRecord>> {
        let key = profile_key(name)?;
        Ok(self.store.load(&key).await?.map(|v| v.record))
    }

    /// Stores a fresh sign-in as profile `name` (replacing what was there) and
    /// returns its manager. Fails when the store does not accept the session.
    pub async fn keep<S: TokenSource + 'static>(
        &self,
        name: &str,
        signed_in: SignedIn<S>,
    ) -> Result<TokenManager> {
        let key = profile_key(name)?;
        let manager = signed_in
            .with_clock(Arc::clone(&self.clock))
            .into_manager_with(Arc::clone(&self.store), key, self.config.clone())
            .await?;
        manager.persist().await?;
        Ok(manager)
    }

    /// A manager for profile `name`, renewing it with a [`StoredSession`]
    /// holding `secrets`. No I/O: the session is read on the first
    /// [`TokenManager::token`] ([`FlowErrorKind::NoSession`] if there is none).
    pub fn open(&self, name: &str, secrets: RenewalSecrets) -> Result<TokenManager> {
        let key = profile_key(name)?;
        let source =
            StoredSession::new(self.http.clone(), secrets).with_clock(Arc::clone(&self.clock));
        TokenManager::builder(source, Arc::clone(&self.store), key)
            .clock(Arc::clone(&self.clock))
            .config(self.config.clone())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::{Portal, Timestamp};
    use arcgis_auth_storage::MemoryStore;

    fn record(kind: SessionKind) -> SessionRecord {
        let mut r = SessionRecord::new(Portal::arcgis_online(), kind);
        r.client_id = Some("app".into());
        r.username = Some("jdoe".into());
        r
    }

    fn source(secrets: RenewalSecrets) -> StoredSession {
        StoredSession::new(HttpClient::new().unwrap(), secrets)
    }

    #[test]
    fn renewal_follows_the_kind_and_the_secrets_at_hand() {
        let none = source(RenewalSecrets::new());
        let all = source(
            RenewalSecrets::new()
                .client_secret("s".into())
                .password("p".into()),
        );
        let mut user = record(SessionKind::User);
        user.refresh_token = Some("r".into());
        assert_eq!(none.renewal(&user), Renewal::RefreshToken);
        user.client_id = None; // nothing to refresh with
        assert_eq!(none.renewal(&user), Renewal::UserMustSignIn);
        assert_eq!(
            none.renewal(&record(SessionKind::App)),
            Renewal::UserMustSignIn
        );
        assert_eq!(all.renewal(&record(SessionKind::App)), Renewal::SignInAgain);
        assert_eq!(
            none.renewal(&record(SessionKind::GenerateToken)),
            Renewal::UserMustSignIn
        );
        assert_eq!(
            all.renewal(&record(SessionKind::GenerateToken)),
            Renewal::SignInAgain
        );
        assert_eq!(all.renewal(&record(SessionKind::ApiKey)), Renewal::Never);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let s = source(RenewalSecrets::new().client_secret("hunter2".into()));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[tokio::test]
    async fn profiles_are_listed_by_name_and_opened() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        let profiles = Profiles::new(Arc::clone(&store), HttpClient::new().unwrap());
        let mut r = record(SessionKind::App);
        r.set_token(&Token::new("t".into(), Timestamp::MAX));
        for name in ["work", "ci"] {
            store
                .save(
                    &profile_key(name).unwrap(),
                    &r,
                    arcgis_auth_storage::SaveMode::Create,
                )
                .await
                .unwrap();
        }
        store
            .save("other-app", &r, arcgis_auth_storage::SaveMode::Create)
            .await
            .unwrap();
        assert_eq!(profiles.names().await.unwrap(), ["ci", "work"]);
        assert!(profiles.load("ci").await.unwrap().is_some());
        assert!(profiles.load("nope").await.unwrap().is_none());
        let manager = profiles.open("ci", RenewalSecrets::new()).unwrap();
        assert!(manager.token().await.is_ok());
        let err = profiles
            .open("nope", RenewalSecrets::new())
            .unwrap()
            .token()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::NoSession);
        assert_eq!(
            profiles
                .open("a b", RenewalSecrets::new())
                .unwrap_err()
                .kind(),
            FlowErrorKind::InvalidInput
        );
    }
}
