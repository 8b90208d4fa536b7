//! `ServerSignIn`: a standalone ArcGIS Server's own account, signed in at its own `generateToken` (guide: `guide::enterprise`).

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{
    Clock, GenerateTokenRequest, HttpClient, Portal, ServerInfo, ServerRoot, SystemClock, Token,
    TokenBinding,
};
use arcgis_auth_storage::{SessionKind, SessionRecord};
use async_trait::async_trait;
use url::Url;

use super::{SignedIn, foreign_record};
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::routing::ServerCredentials;
use crate::source::{Grant, RenewRequest, Renewal, TokenSource};

/// Which of a standalone server's token endpoints a [`ServerSignIn`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerTokenEndpoint {
    /// `{root}/tokens/generateToken`, or the endpoint the server's
    /// `/rest/info` names: tokens for its services.
    Services,
    /// `{root}/admin/generateToken`: tokens for its Administrator API
    /// (`{root}/admin/...`), which refuses the services' tokens.
    Admin,
}

/// A standalone ArcGIS Server's own account: a user name and password sent
/// to the server's own `generateToken`, and the [`TokenSource`] that renews
/// such sessions by signing in again with the password it holds in memory.
///
/// The token endpoint is the server's own, never one derived from a
/// requested URL: `{root}/tokens/generateToken` by default,
/// [`admin`](Self::admin) (`{root}/admin/generateToken`) for the
/// Administrator API, or the `authInfo.tokenServicesUrl` of the server's
/// `/rest/info` ([`with_server_info`](Self::with_server_info)), normalised
/// by [`generate_token_endpoint`](arcgis_auth_core::generate_token_endpoint)
/// (`.../tokens/` means `.../tokens/generateToken`) and always asked on the
/// server's own origin. The password is a
/// [`SecretString`](arcgis_auth_core::SecretString) in [`ServerCredentials`]:
/// it is never written to the [`SessionRecord`], and `Debug` never shows it.
///
/// ```no_run
/// # use std::sync::Arc;
/// use arcgis_auth_core::{HttpClient, SecretString, ServerRoot, TokenBinding};
/// use arcgis_auth_flows::routing::ServerCredentials;
/// use arcgis_auth_flows::signin::ServerSignIn;
/// use arcgis_auth_storage::MemoryStore;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let server = ServerRoot::parse("https://gis.example.com/arcgis")?;
/// let credentials = ServerCredentials::new("svc", SecretString::from("…".to_owned()))
///     .with_binding(TokenBinding::Referer("https://app.example.com".into()));
/// let account = ServerSignIn::new(server, credentials, HttpClient::new()?);
/// let manager = account.sign_in().await?.into_manager(Arc::new(MemoryStore::default()), "gis").await?;
/// let token = manager.token().await?;
/// # let _ = token;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServerSignIn {
    server: ServerRoot,
    credentials: ServerCredentials,
    endpoint: ServerTokenEndpoint,
    token_url: Url,
    http: HttpClient,
    clock: Arc<dyn Clock>,
}

impl ServerSignIn {
    /// Signs in to `server`'s services (`{root}/tokens/generateToken`) with
    /// `credentials`, binding tokens as they say, on the system clock.
    pub fn new(server: ServerRoot, credentials: ServerCredentials, http: HttpClient) -> Self {
        ServerSignIn {
            token_url: server.generate_token_url(),
            server,
            credentials,
            endpoint: ServerTokenEndpoint::Services,
            http,
            clock: Arc::new(SystemClock),
        }
    }

    /// Asks `{root}/admin/generateToken` instead: tokens for the server's
    /// Administrator API (see [`ServerRoot::is_admin_url`]).
    pub fn admin(mut self) -> Self {
        self.endpoint = ServerTokenEndpoint::Admin;
        self.token_url = self.server.admin_generate_token_url();
        self
    }

    /// The sign-in whose tokens `url` accepts: [`admin`](Self::admin) when
    /// `url` is in the server's Administrator API, the services' otherwise.
    pub fn for_url(self, url: &Url) -> Self {
        if self.server.is_admin_url(url) {
            self.admin()
        } else {
            self
        }
    }

    /// Uses the token endpoint the server's `/rest/info` names
    /// (`authInfo.tokenServicesUrl`, normalised) for its services, moved
    /// onto the server's own origin when it names another host or port
    /// ([`ServerInfo::generate_token_url_on`]: a site dialled on `:6443`
    /// often names its public or internal host name): the password goes
    /// nowhere else. A missing or unusable value keeps
    /// `{root}/tokens/generateToken` (logged at debug). Admin sign-ins always use the server's own
    /// `admin/generateToken`: `/rest/info` names no admin endpoint.
    pub fn with_server_info(mut self, info: &ServerInfo) -> Self {
        if self.endpoint == ServerTokenEndpoint::Admin {
            return self;
        }
        match info.generate_token_url_on(&self.server) {
            Ok(Some(url)) => self.token_url = url,
            Ok(None) => {}
            Err(err) => {
                tracing::debug!(server = %self.server, error = %err, "ignoring the server's tokenServicesUrl");
            }
        }
        self
    }

    /// Uses `clock` to check answers' expiry and, in
    /// [`SignedIn::into_manager`], to judge expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The server.
    pub fn server(&self) -> &ServerRoot {
        &self.server
    }

    /// Which endpoint is asked.
    pub fn endpoint(&self) -> ServerTokenEndpoint {
        self.endpoint
    }

    /// The `generateToken` URL the password is sent to.
    pub fn token_url(&self) -> &Url {
        &self.token_url
    }

    /// The account's user name.
    pub fn username(&self) -> &str {
        self.credentials.username()
    }

    /// One `generateToken` request: a new token, without a session.
    ///
    /// Errors: [`FlowErrorKind::ArcGis`] with
    /// [`InsecureTransport`](arcgis_auth_core::ErrorKind::InsecureTransport) for a
    /// server on plain `http://` that is not loopback (nothing is sent), the
    /// ArcGIS error for a refused user name or password, and the transport kinds.
    pub async fn request_token(&self) -> Result<Token> {
        let request = GenerateTokenRequest::password(
            self.credentials.username.clone(),
            self.credentials.password.clone(),
            self.credentials.binding.clone(),
        );
        tracing::debug!(
            server = %self.server,
            admin = self.endpoint == ServerTokenEndpoint::Admin,
            "asking a standalone server for its own token"
        );
        let token = request
            .send(&self.http, &self.token_url, self.clock.as_ref())
            .await?;
        Ok(token.with_username(Some(self.credentials.username.clone())))
    }

    /// Signs in: one `generateToken` request, and the session to hand to a
    /// [`TokenManager`](crate::TokenManager) (kind
    /// [`GenerateToken`](SessionKind::GenerateToken), the server's origin as
    /// its portal, the binding's referer or IP).
    ///
    /// Errors: as [`request_token`](Self::request_token).
    pub async fn sign_in(&self) -> Result<SignedIn<ServerSignIn>> {
        let token = self.request_token().await?;
        let mut record = SessionRecord::new(self.session_portal(), SessionKind::GenerateToken);
        match &self.credentials.binding {
            TokenBinding::Referer(referer) => record.referer = Some(referer.clone()),
            TokenBinding::Ip(ip) => record.client_ip = Some(*ip),
            _ => {}
        }
        record.set_token(&token);
        tracing::info!(server = %self.server, user = self.username(), "signed in to a standalone server");
        Ok(SignedIn::new(
            record,
            token,
            self.clone(),
            Arc::clone(&self.clock),
        ))
    }

    /// What a session record names as its portal: the server's root, else its origin.
    fn session_portal(&self) -> Portal {
        Portal::from_url(self.server.as_url())
            .or_else(|_| {
                let mut origin = self.server.as_url().clone();
                origin.set_path("/");
                Portal::from_url(&origin)
            })
            .unwrap_or_else(|_| Portal::arcgis_online())
    }
}

impl fmt::Debug for ServerSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSignIn")
            .field("server", &self.server)
            .field("endpoint", &self.endpoint)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Renews the sessions it signed in ([`Renewal::SignInAgain`]: same kind,
/// user and server); any other session only its user can renew.
#[async_trait]
impl TokenSource for ServerSignIn {
    fn name(&self) -> &'static str {
        "server_generate_token"
    }

    fn renewal(&self, session: &SessionRecord) -> Renewal {
        if session.kind == SessionKind::GenerateToken
            && session.username.as_deref() == Some(self.username())
            && session.portal == self.session_portal()
        {
            Renewal::SignInAgain
        } else {
            Renewal::UserMustSignIn
        }
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token> {
        if request.session().portal != self.session_portal() {
            return Err(foreign_record("belongs to another server"));
        }
        match request.grant() {
            Grant::SignIn => self.request_token().await,
            _ => Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "standalone server accounts are renewed by signing in again, not with a refresh token",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::{ExposeSecret, SecretString};

    fn account() -> ServerSignIn {
        let server = ServerRoot::parse("https://gis.example.com/arcgis").expect("root");
        let credentials = ServerCredentials::new("svc", SecretString::from("pw-123".to_owned()));
        ServerSignIn::new(server, credentials, HttpClient::new().expect("client"))
    }

    fn info(token_services_url: &str) -> ServerInfo {
        let body = serde_json::json!({
            "currentVersion": 11.3,
            "authInfo": {"isTokenBasedSecurity": true, "tokenServicesUrl": token_services_url}
        });
        ServerInfo::from_body(body.to_string().as_bytes()).expect("info")
    }

    #[test]
    fn endpoints_are_the_servers_own() {
        let a = account();
        assert_eq!(
            a.token_url().as_str(),
            "https://gis.example.com/arcgis/tokens/generateToken"
        );
        let admin_url = Url::parse("https://gis.example.com/arcgis/admin/services").expect("url");
        let admin = a.clone().for_url(&admin_url);
        assert_eq!(admin.endpoint(), ServerTokenEndpoint::Admin);
        assert_eq!(
            admin.token_url().as_str(),
            "https://gis.example.com/arcgis/admin/generateToken"
        );
        let rest = Url::parse("https://gis.example.com/arcgis/rest/services").expect("url");
        assert_eq!(
            a.clone().for_url(&rest).endpoint(),
            ServerTokenEndpoint::Services
        );
        // `/tokens/` is normalised; another host or port is moved onto the server's.
        let a2 = a
            .clone()
            .with_server_info(&info("https://gis.example.com/arcgis/tokens/"));
        assert_eq!(
            a2.token_url().as_str(),
            "https://gis.example.com/arcgis/tokens/generateToken"
        );
        let a3 = a
            .clone()
            .with_server_info(&info("https://gis.example.com/other/tokens"));
        assert_eq!(
            a3.token_url().as_str(),
            "https://gis.example.com/other/tokens/generateToken"
        );
        let foreign = a
            .clone()
            .with_server_info(&info("https://evil.example.net/arcgis/tokens/"));
        assert_eq!(
            foreign.token_url().as_str(),
            "https://gis.example.com/arcgis/tokens/generateToken"
        );
        let internal = a
            .clone()
            .with_server_info(&info("http://gis-internal.corp:6080/site/tokens"));
        assert_eq!(
            internal.token_url().as_str(),
            "https://gis.example.com/site/tokens/generateToken"
        );
        let admin_keeps = admin.with_server_info(&info("https://gis.example.com/x/tokens/"));
        assert_eq!(
            admin_keeps.token_url().as_str(),
            "https://gis.example.com/arcgis/admin/generateToken"
        );
    }

    #[test]
    fn debug_shows_no_password() {
        let a = account();
        let text = format!("{a:?}");
        assert!(text.contains("svc"), "{text}");
        assert!(!text.contains("pw-123"), "{text}");
        assert_eq!(a.credentials.password.expose_secret(), "pw-123");
    }

    #[test]
    fn renews_only_its_own_sessions() {
        let a = account();
        let mut mine = SessionRecord::new(a.session_portal(), SessionKind::GenerateToken);
        mine.username = Some("svc".into());
        assert_eq!(a.renewal(&mine), Renewal::SignInAgain);
        let mut other_user = mine.clone();
        other_user.username = Some("else".into());
        assert_eq!(a.renewal(&other_user), Renewal::UserMustSignIn);
        let mut other_kind = mine.clone();
        other_kind.kind = SessionKind::App;
        assert_eq!(a.renewal(&other_kind), Renewal::UserMustSignIn);
    }
}
