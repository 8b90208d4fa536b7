//! The gateway's credentials: one token manager per app and per server, signed in on first use.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arcgis_auth_core::{
    Clock, ExposeSecret, GenerateTokenRequest, HttpClient, Portal, SecretString, ServerRoot, Token,
    TokenBinding,
};
use arcgis_auth_flows::signin::AppSignIn;
use arcgis_auth_flows::{
    AccessToken, FlowError, FlowErrorKind, Grant, RenewRequest, Renewal, TokenManager, TokenSource,
    async_trait,
};
use arcgis_auth_storage::{SessionKind, SessionRecord, SessionStore};

use crate::config::{AppConfig, ServerConfig};
use crate::metrics::Metrics;

/// A token source whose sign-ins and renewals are counted in the metrics.
#[derive(Debug)]
struct Counted<S> {
    inner: S,
    label: String,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl<S: TokenSource> TokenSource for Counted<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn renewal(&self, session: &SessionRecord) -> Renewal {
        self.inner.renewal(session)
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        let result = self.inner.renew(request).await;
        self.metrics.renewal(&self.label, result.is_ok());
        result
    }
}

/// The `Referer` server tokens are bound to (`client=referer`), sent with every
/// request on a server route: any gateway of a fleet can use the token.
pub(crate) const SERVER_REFERER: &str = "arcgis-auth-gateway";

/// A standalone server's own account: `tokens/generateToken` with a user name
/// and password, bound to [`SERVER_REFERER`].
#[derive(Clone)]
pub(crate) struct ServerAccount {
    root: ServerRoot,
    portal: Portal,
    username: String,
    password: SecretString,
    http: HttpClient,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ServerAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerAccount")
            .field("root", &self.root)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}

impl ServerAccount {
    fn new(config: &ServerConfig, http: HttpClient, clock: Arc<dyn Clock>) -> Self {
        // The record needs a portal: the server's origin names it (it is never called).
        let portal = Portal::from_url(config.root.as_url())
            .or_else(|_| {
                let mut origin = config.root.as_url().clone();
                origin.set_path("/");
                Portal::from_url(&origin)
            })
            .unwrap_or_else(|_| Portal::arcgis_online());
        ServerAccount {
            root: config.root.clone(),
            portal,
            username: config.username.clone(),
            password: config.password.clone(),
            http,
            clock,
        }
    }

    async fn request(&self) -> Result<Token, FlowError> {
        let request = GenerateTokenRequest::password(
            self.username.clone(),
            self.password.clone(),
            TokenBinding::Referer(SERVER_REFERER.to_owned()),
        );
        let token = request
            .send(
                &self.http,
                &self.root.generate_token_url(),
                self.clock.as_ref(),
            )
            .await?;
        Ok(token.with_username(Some(self.username.clone())))
    }

    async fn sign_in(&self) -> Result<SessionRecord, FlowError> {
        let token = self.request().await?;
        let mut record = SessionRecord::new(self.portal.clone(), SessionKind::GenerateToken);
        record.referer = Some(SERVER_REFERER.to_owned());
        record.set_token(&token);
        Ok(record)
    }
}

#[async_trait]
impl TokenSource for ServerAccount {
    fn renewal(&self, session: &SessionRecord) -> Renewal {
        if session.kind == SessionKind::GenerateToken
            && session.username.as_deref() == Some(self.username.as_str())
            && session.portal == self.portal
        {
            Renewal::SignInAgain
        } else {
            Renewal::UserMustSignIn
        }
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        match request.grant() {
            Grant::SignIn => self.request().await,
            _ => Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "server accounts are renewed by signing in again",
            )),
        }
    }
}

enum Signer {
    App(Box<AppSignIn>),
    Server(Box<ServerAccount>),
}

impl Signer {
    async fn sign_in(&self) -> Result<SessionRecord, FlowError> {
        match self {
            Signer::App(app) => Ok(app.sign_in().await?.into_parts().0),
            Signer::Server(server) => server.sign_in().await,
        }
    }
}

/// One app's or server's tokens.
pub(crate) struct Credential {
    label: String,
    manager: TokenManager,
    signer: Signer,
    /// Held while signing in, so concurrent first requests sign in once.
    sign_in: tokio::sync::Mutex<()>,
    /// A sign-in the portal refused (wrong secret): never retried until the config changes.
    refused: Mutex<Option<FlowError>>,
    metrics: Arc<Metrics>,
    /// What the entry said besides its secret, to tell an unchanged entry on reload.
    spec: String,
    secret: SecretString,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// `app:NAME` or `server:NAME`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// A valid token: the manager's (early renewal, single flight), after a
    /// first sign-in when the store has no session for this credential.
    pub(crate) async fn token(&self) -> Result<AccessToken, FlowError> {
        if let Some(err) = self.refused() {
            return Err(err);
        }
        match self.manager.token().await {
            Ok(token) => Ok(token),
            Err(err)
                if matches!(
                    err.kind(),
                    FlowErrorKind::NoSession | FlowErrorKind::SignInRequired
                ) =>
            {
                self.first_sign_in().await
            }
            Err(err) => Err(err),
        }
    }

    fn refused(&self) -> Option<FlowError> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }

    async fn first_sign_in(&self) -> Result<AccessToken, FlowError> {
        let _one = self.sign_in.lock().await;
        if let Some(token) = self.manager.cached() {
            return Ok(token);
        }
        if let Some(err) = self.refused() {
            return Err(err);
        }
        let signed_in = self.signer.sign_in().await;
        self.metrics.renewal(&self.label, signed_in.is_ok());
        match signed_in {
            Ok(record) => {
                if let Err(err) = self.manager.set_session(record).await {
                    tracing::warn!(credential = %self.label, error = %err, "the new session is served from memory; the store refused it");
                }
                tracing::info!(credential = %self.label, "signed in");
                self.manager.token().await
            }
            Err(err) => {
                if !err.is_transient() {
                    if let Ok(mut refused) = self.refused.lock() {
                        *refused = Some(err.clone());
                    }
                    tracing::error!(credential = %self.label, error = %err, "sign-in refused; it is not tried again until the configuration changes");
                } else {
                    tracing::warn!(credential = %self.label, error = %err, "sign-in failed; the next request tries again");
                }
                Err(err)
            }
        }
    }

    /// Reports a token an upstream answered 498 for: the next call renews.
    pub(crate) fn report_invalid(&self, token: &AccessToken) {
        self.manager.report_invalid(token);
    }
}

/// Every credential of a configuration, by route label (`app:NAME`, `server:NAME`).
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    by_label: HashMap<String, Arc<Credential>>,
}

impl Credentials {
    pub(crate) fn build(
        apps: &[AppConfig],
        servers: &[ServerConfig],
        store: &Arc<dyn SessionStore>,
        http: &HttpClient,
        clock: &Arc<dyn Clock>,
        metrics: &Arc<Metrics>,
        previous: Option<&Credentials>,
    ) -> Result<Credentials, FlowError> {
        let mut by_label = HashMap::new();
        // An entry unchanged since `previous` keeps its credential (and token).
        let kept = |label: &str, spec: &str, secret: &SecretString| {
            previous
                .and_then(|p| p.by_label.get(label))
                .filter(|c| c.spec == spec && c.secret.expose_secret() == secret.expose_secret())
                .cloned()
        };
        for app in apps {
            let label = format!("app:{}", app.name);
            let spec = format!("{:?}|{}", app.portal, app.client_id);
            if let Some(c) = kept(&label, &spec, &app.client_secret) {
                by_label.insert(label, c);
                continue;
            }
            let signer = AppSignIn::new(
                app.portal.clone(),
                app.client_id.clone(),
                app.client_secret.clone(),
                http.clone(),
            )
            .with_clock(Arc::clone(clock));
            let key = format!("gateway/app/{}/{}", app.name, app.client_id);
            let counted = Counted {
                inner: signer.clone(),
                label: label.clone(),
                metrics: Arc::clone(metrics),
            };
            let manager = TokenManager::builder(counted, Arc::clone(store), key)
                .clock(Arc::clone(clock))
                .build()?;
            by_label.insert(
                label.clone(),
                Arc::new(Credential {
                    spec,
                    secret: app.client_secret.clone(),
                    ..Credential::new(
                        label,
                        manager,
                        Signer::App(Box::new(signer)),
                        Arc::clone(metrics),
                    )
                }),
            );
        }
        for server in servers {
            let label = format!("server:{}", server.name);
            let spec = format!("{:?}|{}", server.root, server.username);
            if let Some(c) = kept(&label, &spec, &server.password) {
                by_label.insert(label, c);
                continue;
            }
            let account = ServerAccount::new(server, http.clone(), Arc::clone(clock));
            let key = format!("gateway/server/{}/{}", server.name, server.username);
            let counted = Counted {
                inner: account.clone(),
                label: label.clone(),
                metrics: Arc::clone(metrics),
            };
            let manager = TokenManager::builder(counted, Arc::clone(store), key)
                .clock(Arc::clone(clock))
                .build()?;
            by_label.insert(
                label.clone(),
                Arc::new(Credential {
                    spec,
                    secret: server.password.clone(),
                    ..Credential::new(
                        label,
                        manager,
                        Signer::Server(Box::new(account)),
                        Arc::clone(metrics),
                    )
                }),
            );
        }
        Ok(Credentials { by_label })
    }

    pub(crate) fn get(&self, label: &str) -> Option<&Arc<Credential>> {
        self.by_label.get(label)
    }
}

impl Credential {
    fn new(label: String, manager: TokenManager, signer: Signer, metrics: Arc<Metrics>) -> Self {
        Credential {
            label,
            manager,
            signer,
            sign_in: tokio::sync::Mutex::new(()),
            refused: Mutex::new(None),
            metrics,
            spec: String::new(),
            secret: SecretString::from(String::new()),
        }
    }
}
