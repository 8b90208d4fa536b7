//! Configuring a fake portal before it starts.

use std::sync::{Arc, Mutex};

use arcgis_auth_core::{Clock, ManualClock, SecretString, ServerRoot, Timestamp};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

use crate::config::{App, Server, User};
use crate::error::{Error, ErrorKind};
use crate::portal::ORG_ID;
use crate::portal::{FakePortal, FakeServer};
use crate::routes::{ResetMatcher, Responder, Site, connection_reset};
use crate::state::{ServerState, Settings, State, lock};
use crate::web_tier::{Mode, WebTier, start_front};

/// Configures a [`FakePortal`]; made by [`FakePortal::builder`].
///
/// Nothing is registered by default: add the apps, users and servers your
/// test needs ([`FakePortal::start`] gives a ready-made set instead).
///
/// ```
/// use arcgis_auth_testkit::{App, FakePortal, Server, OOB_REDIRECT_URI};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let portal = FakePortal::builder()
///     .app(App::public("native").redirect_uri("http://127.0.0.1/cb").redirect_uri(OOB_REDIRECT_URI))
///     .app(App::confidential("backend", "s3cr3t"))
///     .user("jdoe", "password")
///     .signed_in_user("jdoe")
///     .server(Server::federated("server"))
///     .start()
///     .await;
/// assert!(portal.portal_url().ends_with("/sharing/rest"));
/// assert!(portal.server("server").is_some());
/// # }
/// ```
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct FakePortalBuilder {
    apps: Vec<App>,
    users: Vec<User>,
    signed_in: Option<String>,
    nobody_signed_in: bool,
    servers: Vec<Server>,
    clock: Option<Arc<dyn Clock>>,
    ssl: bool,
    omit_refresh_expiry: bool,
    org_cap: Option<u32>,
    web_adaptor: Option<String>,
    web_tier: Option<WebTier>,
}

impl FakePortalBuilder {
    /// Registers an app.
    pub fn app(mut self, app: App) -> Self {
        self.apps.push(app);
        self
    }

    /// Adds a user with a password. The first user added is the signed-in
    /// user unless [`signed_in_user`](Self::signed_in_user) or
    /// [`nobody_signed_in`](Self::nobody_signed_in) says otherwise.
    pub fn user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.users.push(User {
            username: username.into(),
            password: SecretString::from(password.into()),
        });
        self
    }

    /// The user `oauth2/authorize` approves for (there is no login form to fill).
    pub fn signed_in_user(mut self, username: impl Into<String>) -> Self {
        self.signed_in = Some(username.into());
        self.nobody_signed_in = false;
        self
    }

    /// Nobody is signed in: `oauth2/authorize` answers its "Sign In" page
    /// until [`FakePortal::set_signed_in_user`] is called.
    pub fn nobody_signed_in(mut self) -> Self {
        self.signed_in = None;
        self.nobody_signed_in = true;
        self
    }

    /// Starts a server next to the portal, on its own port.
    pub fn server(mut self, server: Server) -> Self {
        self.servers.push(server);
        self
    }

    /// Shorthand for `.server(Server::federated(name))`.
    pub fn federated_server(self, name: impl Into<String>) -> Self {
        self.server(Server::federated(name))
    }

    /// The clock the portal decides expiry with. Share a
    /// [`ManualClock`] with the code under test so both see the same time, or
    /// pass [`SystemClock`](arcgis_auth_core::SystemClock) for wall-clock time.
    /// Default: a fresh `ManualClock` stopped at the current system time
    /// (only [`FakePortal::advance_clock`] moves it).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// The `ssl` flag in token answers (default `false`: the fake serves plain
    /// http on loopback; ArcGIS Online says `true`).
    pub fn ssl(mut self, ssl: bool) -> Self {
        self.ssl = ssl;
        self
    }

    /// Leaves `refresh_token_expires_in` out of token answers, as older ArcGIS
    /// Enterprise releases do.
    pub fn omit_refresh_token_expires_in(mut self) -> Self {
        self.omit_refresh_expiry = true;
        self
    }

    /// The organisation's `maxTokenExpirationMinutes`: caps every lifetime
    /// (except the fixed 30 minutes of code-flow access tokens, when lower).
    pub fn max_token_expiration_minutes(mut self, minutes: u32) -> Self {
        self.org_cap = Some(minutes);
        self
    }

    /// Serves the portal under a web adaptor path, as ArcGIS Enterprise does:
    /// `.web_adaptor("portal")` puts the sharing root at `/portal/sharing/rest`.
    pub fn web_adaptor(mut self, name: impl Into<String>) -> Self {
        self.web_adaptor = Some(name.into());
        self
    }

    /// Puts `tier` in front of the portal and every server: HTTP Basic
    /// against a user table, or HTTPS that requires a client certificate
    /// (see [`WebTier`]). `generateToken` then also answers
    /// `request=getToken` without a username or password, for the user the
    /// web tier signed in (and refuses it when none did).
    pub fn web_tier(mut self, tier: WebTier) -> Self {
        self.web_tier = Some(tier);
        self
    }

    /// Starts the portal and its servers on loopback.
    ///
    /// # Panics
    ///
    /// When the configuration cannot work; [`try_start`](Self::try_start)
    /// returns the error instead.
    pub async fn start(self) -> FakePortal {
        match self.try_start().await {
            Ok(p) => p,
            Err(e) => panic!("arcgis-auth-testkit: {e}"),
        }
    }

    /// Starts the portal and its servers on loopback, or says what is wrong
    /// with the configuration ([`ErrorKind::InvalidConfig`]).
    pub async fn try_start(self) -> Result<FakePortal, Error> {
        self.validate()?;
        let signed_in = if self.nobody_signed_in {
            None
        } else {
            self.signed_in
                .clone()
                .or_else(|| self.users.first().map(|u| u.username.clone()))
        };
        let clock = self
            .clock
            .unwrap_or_else(|| Arc::new(ManualClock::new(Timestamp::now())));

        let ca = match self.web_tier.as_ref().map(|t| &t.mode) {
            Some(Mode::ClientCertificate(ca)) => Some(ca.clone()),
            _ => None,
        };
        let open_server_info = self.web_tier.as_ref().is_some_and(|t| t.open_server_info);
        let mut fronts = Vec::new();
        let mock = MockServer::builder().start().await;
        let base = match &ca {
            Some(ca) => {
                let (front, uri) = start_front(*mock.address(), ca, false).await?;
                fronts.push(front);
                uri
            }
            None => mock.uri(),
        };
        let hosted_services_path = format!("/{ORG_ID}/arcgis/rest/services");
        let hosted_services_root = format!("{base}{hosted_services_path}");
        let url_root = match &self.web_adaptor {
            Some(wa) => format!("{base}/{wa}"),
            None => base,
        };
        let sharing_path = match &self.web_adaptor {
            Some(wa) => format!("/{wa}/sharing/rest"),
            None => "/sharing/rest".to_owned(),
        };
        let settings = Settings {
            ssl: self.ssl,
            send_refresh_expires_in: !self.omit_refresh_expiry,
            org_cap: self.org_cap,
            sharing_root: format!("{url_root}/sharing/rest"),
            sharing_path,
            url_root,
            hosted_services_path,
            hosted_services_root,
            web_tier: self.web_tier,
        };
        let state = Arc::new(Mutex::new(State::new(
            clock, self.apps, self.users, signed_in, settings,
        )));
        mount(&mock, &state, Site::Portal).await;

        let mut servers = Vec::with_capacity(self.servers.len());
        for (index, server) in self.servers.into_iter().enumerate() {
            let mock = MockServer::builder().start().await;
            let base = match &ca {
                Some(ca) => {
                    let (front, uri) = start_front(*mock.address(), ca, open_server_info).await?;
                    fronts.push(front);
                    uri
                }
                None => mock.uri(),
            };
            let root = format!("{base}/{}", server.name);
            let server_root = ServerRoot::parse(&root).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "server name `{}` does not make a server URL: {e}",
                        server.name
                    ),
                )
            })?;
            lock(&state).servers.push(ServerState {
                name: server.name.clone(),
                federation: server.federation.clone(),
                short_lived_minutes: server.short_lived_minutes,
                root: root.clone(),
                server_root: server_root.clone(),
            });
            mount(&mock, &state, Site::Server(index)).await;
            servers.push(FakeServer::new(mock, server.name, server_root));
        }
        FakePortal::new(mock, state, servers, fronts)
    }

    fn validate(&self) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::new(ErrorKind::InvalidConfig, m));
        for (i, app) in self.apps.iter().enumerate() {
            if app.client_id.is_empty() {
                return invalid("an app has an empty client id".into());
            }
            if self.apps[..i].iter().any(|a| a.client_id == app.client_id) {
                return invalid(format!("client id `{}` is registered twice", app.client_id));
            }
        }
        for (i, user) in self.users.iter().enumerate() {
            if user.username.is_empty() {
                return invalid("a user has an empty username".into());
            }
            if self.users[..i].iter().any(|u| u.username == user.username) {
                return invalid(format!("user `{}` is added twice", user.username));
            }
        }
        if let Some(name) = &self.signed_in
            && !self.users.iter().any(|u| &u.username == name)
        {
            return invalid(format!(
                "signed-in user `{name}` was never added: call .user(\"{name}\", password) too"
            ));
        }
        for (i, server) in self.servers.iter().enumerate() {
            let ok_name = !server.name.is_empty()
                && server
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && !["rest", "admin", "tokens", "sharing"]
                    .contains(&server.name.to_ascii_lowercase().as_str());
            if !ok_name {
                return invalid(format!(
                    "server name `{}` must be a single path segment of letters, digits, `-`, `_` or `.` \
                     (and not rest/admin/tokens/sharing)",
                    server.name
                ));
            }
            if self.servers[..i].iter().any(|s| s.name == server.name) {
                return invalid(format!("server `{}` is added twice", server.name));
            }
        }
        if let Some(wa) = &self.web_adaptor {
            let ok = !wa.is_empty()
                && wa
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                && !["rest", "sharing", "home", "apps"].contains(&wa.to_ascii_lowercase().as_str());
            if !ok {
                return invalid(format!(
                    "web adaptor `{wa}` must be a single path segment such as `portal`"
                ));
            }
        }
        Ok(())
    }
}

/// Mounts the reset matcher (priority 1) and the responder (priority 2) on `mock`.
async fn mount(mock: &MockServer, state: &Arc<Mutex<State>>, site: Site) {
    mock.register(
        Mock::given(ResetMatcher {
            state: Arc::clone(state),
            site,
        })
        .respond_with_err(connection_reset)
        .with_priority(1),
    )
    .await;
    mock.register(
        Mock::given(any())
            .respond_with(Responder {
                state: Arc::clone(state),
                site,
            })
            .with_priority(2),
    )
    .await;
}
