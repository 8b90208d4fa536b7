//! The running fake portal and its servers, and the controls tests use.

use std::fmt;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, Portal, SecretString, ServerRoot, Timestamp};
use wiremock::MockServer;

use crate::builder::FakePortalBuilder;
use crate::calls::{Calls, Endpoint};
use crate::config::{ApiKeySpec, App, OOB_REDIRECT_URI};
use crate::error::{Error, ErrorKind};
use crate::failure::Failure;
use crate::feature_layer::FEATURE_SERVICE;
use crate::state::{Shared, lock};
use crate::tokens::IssuedToken;
use crate::web_tier::Front;

/// The client id of the public app [`FakePortal::start`] registers.
pub const PUBLIC_CLIENT_ID: &str = "testkit-public";
/// The client id of the confidential app [`FakePortal::start`] registers.
pub const CONFIDENTIAL_CLIENT_ID: &str = "testkit-confidential";
/// The client secret of [`CONFIDENTIAL_CLIENT_ID`].
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "testkit-secret";
/// The redirect URI both default apps register (any port matches, RFC 8252).
pub const LOOPBACK_REDIRECT_URI: &str = "http://127.0.0.1/callback";
/// The user [`FakePortal::start`] adds and signs in.
pub const USERNAME: &str = "jdoe";
/// The password of [`USERNAME`].
pub const PASSWORD: &str = "jdoe-password";
/// The federated server [`FakePortal::start`] starts.
pub const SERVER_NAME: &str = "server";
/// The organisation's id (`portals/self`'s `id`, the hosted services' path).
pub(crate) const ORG_ID: &str = "TestkitOrg0001";

/// A fake ArcGIS portal on loopback; see the [crate docs](crate) for a guide.
///
/// It stops when dropped. Every control takes `&self`, so a portal can be
/// shared (e.g. in an `Arc`) between the test and the code under test.
pub struct FakePortal {
    mock: MockServer,
    state: Shared,
    servers: Vec<FakeServer>,
    portal: Portal,
    /// The TLS web tier's listeners, stopped with the portal.
    _fronts: Vec<Front>,
}

impl FakePortal {
    /// Starts a portal with a ready-made set: the public app
    /// [`PUBLIC_CLIENT_ID`] (redirect URIs [`LOOPBACK_REDIRECT_URI`],
    /// `http://localhost/callback` and [`OOB_REDIRECT_URI`]), the confidential
    /// app [`CONFIDENTIAL_CLIENT_ID`] / [`CONFIDENTIAL_CLIENT_SECRET`]
    /// (redirect URI [`LOOPBACK_REDIRECT_URI`]), the signed-in user
    /// [`USERNAME`] / [`PASSWORD`], and the federated server [`SERVER_NAME`].
    pub async fn start() -> FakePortal {
        FakePortal::builder()
            .app(
                App::public(PUBLIC_CLIENT_ID)
                    .redirect_uri(LOOPBACK_REDIRECT_URI)
                    .redirect_uri("http://localhost/callback")
                    .redirect_uri(OOB_REDIRECT_URI),
            )
            .app(
                App::confidential(CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET)
                    .redirect_uri(LOOPBACK_REDIRECT_URI),
            )
            .user(USERNAME, PASSWORD)
            .federated_server(SERVER_NAME)
            .start()
            .await
    }

    /// An empty configuration to fill in.
    pub fn builder() -> FakePortalBuilder {
        FakePortalBuilder::default()
    }

    pub(crate) fn new(
        mock: MockServer,
        state: Shared,
        servers: Vec<FakeServer>,
        fronts: Vec<Front>,
    ) -> Result<FakePortal, Error> {
        let root = lock(&state).settings.sharing_root.clone();
        let portal = Portal::parse(&root).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("the portal URL {root} is not accepted as a portal: {e}"),
            )
        })?;
        Ok(FakePortal {
            mock,
            state,
            servers,
            portal,
            _fronts: fronts,
        })
    }

    // ---- addresses ---------------------------------------------------------

    /// The sharing root, e.g. `http://127.0.0.1:41234/sharing/rest`.
    pub fn portal_url(&self) -> String {
        self.portal.sharing_root().to_string()
    }

    /// The portal as the core crate addresses it.
    pub fn portal(&self) -> Portal {
        self.portal.clone()
    }

    /// The portal's URL root (`http://127.0.0.1:41234`, or with the web
    /// adaptor path): what federated servers report as `owningSystemUrl`.
    pub fn url_root(&self) -> String {
        lock(&self.state).settings.url_root.clone()
    }

    /// `{sharing root}/{path}`, e.g. `portal.url("oauth2/token")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.portal_url(), path.trim_start_matches('/'))
    }

    /// How many requests the web tier stopped (no web-tier credential, a
    /// wrong Basic password); always 0 without a web tier. Requests a TLS
    /// web tier refuses in the handshake never reach the fake and are not
    /// counted.
    pub fn web_tier_refusals(&self) -> usize {
        lock(&self.state).web_tier_refusals
    }

    /// A private item on the portal's own origin (`content/items/{id}`): any
    /// valid portal token opens it; 499 without one, 498 for a bad one.
    pub fn secured_item_url(&self, id: &str) -> String {
        self.url(&format!("content/items/{id}"))
    }

    /// `{origin}/TestkitOrg0001/arcgis/rest/services/{path}`: a service of
    /// the portal's hosted services (as ArcGIS Online's
    /// `services.arcgis.com/{org id}/arcgis/rest/services`), which any
    /// portal token opens (user, app or API key; not a server's token): 499
    /// without one, 498 for a bad one. Only [`FEATURE_SERVICE`](crate::FEATURE_SERVICE) is there.
    pub fn hosted_service_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            lock(&self.state).settings.hosted_services_root,
            path.trim_start_matches('/')
        )
    }

    /// The parks layer ([`PARKS`](crate::PARKS)) of the portal's hosted
    /// services: `hosted_service_url("Testkit/Parks/FeatureServer/0")`.
    pub fn hosted_feature_layer_url(&self) -> String {
        self.hosted_service_url(&format!("{FEATURE_SERVICE}/0"))
    }

    /// The server started with this name.
    pub fn server(&self, name: &str) -> Option<&FakeServer> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Every server, in the order they were added.
    pub fn servers(&self) -> &[FakeServer] {
        &self.servers
    }

    /// The underlying wiremock server, e.g. to mount extra mocks at a higher
    /// priority than the portal's (which uses priorities 1 and 2).
    pub fn mock_server(&self) -> &MockServer {
        &self.mock
    }

    /// Every request the portal received (not its servers'), for pinning exact wire bytes.
    pub async fn received_requests(&self) -> Vec<wiremock::Request> {
        self.mock.received_requests().await.unwrap_or_default()
    }

    // ---- users and authorization --------------------------------------------

    /// Makes `username` the signed-in user that `oauth2/authorize` approves for.
    pub fn set_signed_in_user(&self, username: &str) -> Result<(), Error> {
        let mut state = lock(&self.state);
        if state.user(username).is_none() {
            return Err(Error::new(
                ErrorKind::UnknownUser,
                format!("no user `{username}`: add it with FakePortalBuilder::user"),
            ));
        }
        state.signed_in = Some(username.to_owned());
        Ok(())
    }

    /// Changes `username`'s password, as a directory administrator would:
    /// from now on `generateToken` refuses the old one ("Invalid username or
    /// password.").
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), Error> {
        let mut state = lock(&self.state);
        let Some(user) = state.users.iter_mut().find(|u| u.username == username) else {
            return Err(Error::new(
                ErrorKind::UnknownUser,
                format!("no user `{username}`: add it with FakePortalBuilder::user"),
            ));
        };
        user.password = SecretString::from(password);
        Ok(())
    }

    /// Signs the user out: `oauth2/authorize` answers its "Sign In" page.
    pub fn sign_out(&self) {
        lock(&self.state).signed_in = None;
    }

    /// The next authorization is denied: the browser is sent back with
    /// `error=access_denied&error_description=The user denied your request.`
    pub fn deny_next_authorization(&self) {
        lock(&self.state).deny_next += 1;
    }

    /// Registers one more redirect URI for an app (e.g. a listener's actual URL).
    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) -> Result<(), Error> {
        let mut state = lock(&self.state);
        let Some(app) = state.apps.iter_mut().find(|a| a.client_id == client_id) else {
            return Err(Error::new(
                ErrorKind::UnknownApp,
                format!("no app `{client_id}`: register it with FakePortalBuilder::app"),
            ));
        };
        app.redirect_uris.push(uri.to_owned());
        Ok(())
    }

    // ---- time --------------------------------------------------------------

    /// The portal's current time: its clock plus any offset from
    /// [`advance_clock`](Self::advance_clock) / [`rewind_clock`](Self::rewind_clock).
    pub fn now(&self) -> Timestamp {
        lock(&self.state).now()
    }

    /// Moves the portal's time forward by `by`, for the portal only: tokens
    /// expire as the portal sees it while the client's clock stays put (to
    /// test a client whose clock runs behind). To move client and portal
    /// together, share a [`ManualClock`](arcgis_auth_core::ManualClock) via
    /// [`FakePortalBuilder::clock`] and advance that.
    pub fn advance_clock(&self, by: Duration) {
        lock(&self.state).shift_clock(duration_ms(by));
    }

    /// Moves the portal's time back by `by` (a portal clock running behind
    /// the client's): the portal sees tokens as younger than the client does.
    pub fn rewind_clock(&self, by: Duration) {
        lock(&self.state).shift_clock(-duration_ms(by));
    }

    /// How far (in milliseconds, signed) the portal's time is from its clock.
    pub fn clock_offset_millis(&self) -> i64 {
        lock(&self.state).offset_ms()
    }

    // ---- tokens ------------------------------------------------------------

    /// Expires every access token (user, app, implicit, generateToken and
    /// server tokens) now. Refresh tokens keep working, so a client can
    /// recover by refreshing. API keys are left alone (nothing could renew
    /// them): end one with [`revoke_api_key`](Self::revoke_api_key), its own
    /// expiry, or [`expire_all_tokens`](Self::expire_all_tokens).
    pub fn expire_access_tokens(&self) {
        lock(&self.state).expire_all(false);
    }

    /// Expires everything: access tokens, API keys, refresh tokens and
    /// pending codes. Refreshing then answers 498 `refresh_token expired`:
    /// sign in again.
    pub fn expire_all_tokens(&self) {
        lock(&self.state).expire_all(true);
    }

    /// Revokes every token and refresh token and forgets pending codes, as
    /// when an administrator revokes a user's sessions or a password changes.
    pub fn revoke_all_tokens(&self) {
        lock(&self.state).revoke_all();
    }

    /// Every token, refresh token, server token and API key issued, oldest first.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        lock(&self.state).issued()
    }

    // ---- API keys ------------------------------------------------------------

    /// Creates an API key (see [`ApiKeySpec`] for what it may do) and returns
    /// it with its kind ([`TokenKind::ApiKey`](crate::TokenKind::ApiKey)), client id and expiry (portal
    /// clock; [`Timestamp::MAX`] for a key that never expires). Nothing is
    /// sent over the wire and no counter moves: in ArcGIS a key is made in
    /// the developer dashboard, not by the app that uses it.
    ///
    /// ```
    /// use arcgis_auth_core::ExposeSecret;
    /// use arcgis_auth_testkit::{ApiKeySpec, FakePortal, TokenKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let portal = FakePortal::start().await;
    /// let key = portal.create_api_key(ApiKeySpec::new("maps-app"));
    /// assert_eq!(key.kind, TokenKind::ApiKey);
    /// assert!(key.token.expose_secret().starts_with("AAPK"));
    /// // Send it like a token; when it must stop working:
    /// portal.revoke_api_key(&key.token).unwrap();
    /// # }
    /// ```
    pub fn create_api_key(&self, spec: ApiKeySpec) -> IssuedToken {
        let (token, record) = lock(&self.state).issue_api_key(spec);
        record.issued_token(&token)
    }

    /// Revokes an API key (as invalidating it in the developer dashboard
    /// does): from now on every request made with it answers 498
    /// `Invalid token.`, and `generateToken` refuses it.
    ///
    /// Errors: [`ErrorKind::UnknownApiKey`] when `key` is not an API key this
    /// portal created.
    pub fn revoke_api_key(&self, key: &SecretString) -> Result<(), Error> {
        if lock(&self.state).revoke_api_key(key.expose_secret()) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::UnknownApiKey,
                "that is not an API key of this portal: create one with FakePortal::create_api_key",
            ))
        }
    }

    // ---- failures ----------------------------------------------------------

    /// Makes the next `n` calls to `oauth2/token` fail this way (then it
    /// behaves again). Failures queue up: calling twice adds to the queue.
    pub fn fail_next_token_calls(&self, n: usize, failure: Failure) {
        self.fail_next_calls(Endpoint::Token, n, failure);
    }

    /// Makes the next `n` calls to a portal endpoint fail this way.
    pub fn fail_next_calls(&self, endpoint: Endpoint, n: usize, failure: Failure) {
        lock(&self.state).push_failures(None, endpoint, n, failure);
    }

    /// Makes the next `n` calls to an endpoint of the named server fail this way.
    pub fn fail_next_server_calls(
        &self,
        server: &str,
        endpoint: Endpoint,
        n: usize,
        failure: Failure,
    ) {
        lock(&self.state).push_failures(Some(server.to_owned()), endpoint, n, failure);
    }

    /// Forgets every queued failure.
    pub fn clear_failures(&self) {
        lock(&self.state).clear_failures();
    }

    // ---- counters ----------------------------------------------------------

    /// How many calls each endpoint (and each grant) received so far.
    pub fn calls(&self) -> Calls {
        lock(&self.state).calls.clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_calls(&self) {
        lock(&self.state).calls = Calls::default();
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl fmt::Debug for FakePortal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("FakePortal")
            .field("portal_url", &state.settings.sharing_root)
            .field("apps", &state.apps)
            .field(
                "users",
                &state.users.iter().map(|u| &u.username).collect::<Vec<_>>(),
            )
            .field("signed_in", &state.signed_in)
            .field("servers", &self.servers)
            .field("now", &state.now())
            .finish_non_exhaustive()
    }
}

/// A fake ArcGIS Server started next to the portal, on its own loopback
/// port: `http://127.0.0.1:{port}/{name}`.
pub struct FakeServer {
    mock: MockServer,
    name: String,
    root: ServerRoot,
}

impl FakeServer {
    pub(crate) fn new(mock: MockServer, name: String, root: ServerRoot) -> Self {
        FakeServer { mock, name, root }
    }

    /// The name it was added with (also its instance path segment).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server root, e.g. `http://127.0.0.1:41235/server`: what
    /// `generateToken` takes as `serverUrl`.
    pub fn root_url(&self) -> String {
        self.root.to_string()
    }

    /// The server root as the core crate addresses it.
    pub fn server_root(&self) -> ServerRoot {
        self.root.clone()
    }

    /// `{root}/rest/info`: federation and token settings.
    pub fn info_url(&self) -> String {
        self.root.rest_info_url().to_string()
    }

    /// `{root}/rest/services/{path}`: a secured service (any path works).
    pub fn service_url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.root.services_url(),
            path.trim_start_matches('/')
        )
    }

    /// `{root}/rest/services/Testkit/Parks/FeatureServer/0`: the parks layer
    /// ([`PARKS`](crate::PARKS)) with its JSON and `query`, open to this
    /// server's tokens.
    pub fn feature_layer_url(&self) -> String {
        self.service_url(&format!("{FEATURE_SERVICE}/0"))
    }

    /// `{root}/tokens/generateToken`: only standalone servers answer it.
    pub fn generate_token_url(&self) -> String {
        self.root.generate_token_url().to_string()
    }

    /// `{root}/admin/generateToken`: tokens for a standalone server's
    /// Administrator API.
    pub fn admin_generate_token_url(&self) -> String {
        self.root.admin_generate_token_url().to_string()
    }

    /// `{root}/admin/{path}`: a standalone server's Administrator API (any
    /// path works), open only to tokens from its `admin/generateToken`.
    pub fn admin_url(&self, path: &str) -> String {
        format!(
            "{}/admin/{}",
            self.root.as_url().as_str().trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// The underlying wiremock server.
    pub fn mock_server(&self) -> &MockServer {
        &self.mock
    }
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("name", &self.name)
            .field("root", &self.root.to_string())
            .finish()
    }
}
