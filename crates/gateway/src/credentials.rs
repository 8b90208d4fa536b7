//! The gateway's credentials: one token manager per app and per server, signed in on first use.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arcgis_auth_core::{
    Clock, ExposeSecret, HttpClient, SecretString, ServerRoot, Token, TokenBinding,
};
use arcgis_auth_flows::routing::ServerCredentials;
use arcgis_auth_flows::signin::{AppSignIn, ServerSignIn};
use arcgis_auth_flows::{
    AccessToken, FlowError, FlowErrorKind, RenewRequest, Renewal, TokenManager, TokenSource,
    async_trait,
};
use arcgis_auth_storage::{SessionRecord, SessionStore};

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

/// How a credential signs in and renews: the flows sign-in of its entry.
#[derive(Debug, Clone)]
enum Signer {
    /// Client credentials at the app's portal.
    App(Box<AppSignIn>),
    /// A standalone server's own account (its services or its Administrator API).
    Server(Box<ServerSignIn>),
}

impl Signer {
    async fn sign_in(&self) -> Result<SessionRecord, FlowError> {
        Ok(match self {
            Signer::App(app) => app.sign_in().await?.into_parts().0,
            Signer::Server(server) => server.sign_in().await?.into_parts().0,
        })
    }
}

#[async_trait]
impl TokenSource for Signer {
    fn name(&self) -> &'static str {
        match self {
            Signer::App(app) => app.name(),
            Signer::Server(server) => server.name(),
        }
    }

    fn renewal(&self, session: &SessionRecord) -> Renewal {
        match self {
            Signer::App(app) => app.renewal(session),
            Signer::Server(server) => server.renewal(session),
        }
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token, FlowError> {
        match self {
            Signer::App(app) => app.renew(request).await,
            Signer::Server(server) => server.renew(request).await,
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

/// What one credential is made of.
struct Entry<'a> {
    label: String,
    /// Its session key in the store.
    key: String,
    signer: Signer,
    spec: String,
    secret: &'a SecretString,
}

impl Credential {
    fn build(
        entry: Entry<'_>,
        store: &Arc<dyn SessionStore>,
        clock: &Arc<dyn Clock>,
        metrics: &Arc<Metrics>,
    ) -> Result<Credential, FlowError> {
        let counted = Counted {
            inner: entry.signer.clone(),
            label: entry.label.clone(),
            metrics: Arc::clone(metrics),
        };
        let manager = TokenManager::builder(counted, Arc::clone(store), entry.key)
            .clock(Arc::clone(clock))
            .config(crate::renewals::manager_config())
            .build()?;
        Ok(Credential {
            label: entry.label,
            manager,
            signer: entry.signer,
            sign_in: tokio::sync::Mutex::new(()),
            refused: Mutex::new(None),
            metrics: Arc::clone(metrics),
            spec: entry.spec,
            secret: entry.secret.clone(),
        })
    }

    /// `app:NAME`, `server:NAME` or `server:NAME/admin`.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// A valid token: the manager's (early renewal, single flight), after a
    /// first sign-in when the store has no session for this credential
    /// (once across every gateway sharing the store).
    pub(crate) async fn token(&self) -> Result<AccessToken, FlowError> {
        if let Some(err) = self.refused() {
            return Err(err);
        }
        match self.manager.token().await {
            Err(err)
                if matches!(
                    err.kind(),
                    FlowErrorKind::NoSession | FlowErrorKind::SignInRequired
                ) =>
            {
                self.first_sign_in(err.kind()).await
            }
            other => other,
        }
    }

    fn refused(&self) -> Option<FlowError> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }

    async fn first_sign_in(&self, why: FlowErrorKind) -> Result<AccessToken, FlowError> {
        let _one = self.sign_in.lock().await;
        if let Some(token) = self.manager.cached() {
            return Ok(token);
        }
        if let Some(err) = self.refused() {
            return Err(err);
        }
        let sign_in = || async {
            let signed_in = self.signer.sign_in().await;
            self.metrics.renewal(&self.label, signed_in.is_ok());
            if signed_in.is_ok() {
                tracing::info!(credential = %self.label, "signed in");
            }
            signed_in
        };
        let result = if why == FlowErrorKind::NoSession {
            // Nothing stored: one gateway of the fleet signs in, the others use its session.
            self.manager.token_or_sign_in(sign_in).await
        } else {
            // The stored session cannot be renewed (not ours, or ended): replace it.
            match sign_in().await {
                Ok(record) => {
                    if let Err(err) = self.manager.set_session(record).await {
                        tracing::warn!(credential = %self.label, error = %err, "the new session is served from memory; the store refused it");
                    }
                    self.manager.token().await
                }
                Err(err) => Err(err),
            }
        };
        if let Err(err) = &result {
            if !err.is_transient()
                && !matches!(
                    err.kind(),
                    FlowErrorKind::LockTimeout | FlowErrorKind::Store(_)
                )
            {
                if let Ok(mut refused) = self.refused.lock() {
                    *refused = Some(err.clone());
                }
                tracing::error!(credential = %self.label, error = %err, "sign-in refused; it is not tried again until the configuration changes");
            } else {
                tracing::warn!(credential = %self.label, error = %err, "sign-in failed; the next request tries again");
            }
        }
        result
    }

    /// Reports a token an upstream answered 498 for: the next call renews.
    pub(crate) fn report_invalid(&self, token: &AccessToken) {
        self.manager.report_invalid(token);
    }
}

/// Every credential of a configuration, by route label (`app:NAME`,
/// `server:NAME`, and `server:NAME/admin` for the server's Administrator API).
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    by_label: HashMap<String, Arc<Credential>>,
    /// Each server's root, to tell its Administrator API.
    servers: HashMap<String, ServerRoot>,
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
        let mut entries = Vec::new();
        for app in apps {
            let signer = AppSignIn::new(
                app.portal.clone(),
                app.client_id.clone(),
                app.client_secret.clone(),
                http.clone(),
            )
            .with_clock(Arc::clone(clock));
            entries.push(Entry {
                label: format!("app:{}", app.name),
                key: format!("gateway/app/{}/{}", app.name, app.client_id),
                signer: Signer::App(Box::new(signer)),
                spec: format!("{:?}|{}", app.portal, app.client_id),
                secret: &app.client_secret,
            });
        }
        let mut roots = HashMap::new();
        for server in servers {
            roots.insert(server.name.clone(), server.root.clone());
            let credentials =
                ServerCredentials::new(server.username.clone(), server.password.clone())
                    .with_binding(TokenBinding::Referer(SERVER_REFERER.to_owned()));
            let account = ServerSignIn::new(server.root.clone(), credentials, http.clone())
                .with_clock(Arc::clone(clock));
            let spec = format!("{:?}|{}", server.root, server.username);
            entries.push(Entry {
                label: format!("server:{}/admin", server.name),
                key: format!("gateway/server-admin/{}/{}", server.name, server.username),
                signer: Signer::Server(Box::new(account.clone().admin())),
                spec: spec.clone(),
                secret: &server.password,
            });
            entries.push(Entry {
                label: format!("server:{}", server.name),
                key: format!("gateway/server/{}/{}", server.name, server.username),
                signer: Signer::Server(Box::new(account)),
                spec,
                secret: &server.password,
            });
        }
        let mut by_label = HashMap::new();
        for entry in entries {
            // An entry unchanged since `previous` keeps its credential (and token).
            let kept = previous
                .and_then(|p| p.by_label.get(&entry.label))
                .filter(|c| {
                    c.spec == entry.spec && c.secret.expose_secret() == entry.secret.expose_secret()
                })
                .cloned();
            let credential = match kept {
                Some(c) => c,
                None => Arc::new(Credential::build(entry, store, clock, metrics)?),
            };
            by_label.insert(credential.label.clone(), credential);
        }
        Ok(Credentials {
            by_label,
            servers: roots,
        })
    }

    /// The credential of the app `name`.
    pub(crate) fn app(&self, name: &str) -> Option<&Arc<Credential>> {
        self.by_label.get(&format!("app:{name}"))
    }

    /// The credential of the server `name` whose tokens `url` accepts: the
    /// Administrator API's for `{root}/admin/...`, the services' otherwise.
    pub(crate) fn server(&self, name: &str, url: &url::Url) -> Option<&Arc<Credential>> {
        let admin = self
            .servers
            .get(name)
            .is_some_and(|root| root.is_admin_url(url));
        let label = if admin {
            format!("server:{name}/admin")
        } else {
            format!("server:{name}")
        };
        self.by_label.get(&label)
    }
}
