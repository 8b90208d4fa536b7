//! `AppSignIn`: the app signs in as itself with `client_credentials` (guide: `guide::app_credentials`).

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{Clock, Expiration, HttpClient, OAuthClient, Portal, SecretString, Token};
use arcgis_auth_storage::{SessionKind, SessionRecord};
use async_trait::async_trait;

use super::{SignedIn, check_owner, renewal_for};
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::source::{Grant, RenewRequest, Renewal, TokenSource};

/// App authentication (`grant_type=client_credentials`), and the
/// [`TokenSource`] that renews app sessions by signing in again.
///
/// The client secret lives only in this value, as a [`SecretString`]: it is
/// never written to the [`SessionRecord`] or the store, and `Debug` never shows
/// it. A manager rebuilt after a restart needs an `AppSignIn` with the secret
/// again (from your secret store or environment). Cloning is cheap.
#[derive(Clone)]
pub struct AppSignIn {
    client: OAuthClient,
    expiration: Option<Expiration>,
}

impl AppSignIn {
    /// App sign-in for `client_id` and its `client_secret` at `portal`, on the
    /// system clock, asking for ArcGIS's default lifetime (2 hours).
    pub fn new(
        portal: Portal,
        client_id: impl Into<String>,
        client_secret: SecretString,
        http: HttpClient,
    ) -> Self {
        AppSignIn {
            client: OAuthClient::new(portal, client_id, http).with_client_secret(client_secret),
            expiration: None,
        }
    }

    /// Asks for tokens that live `expiration` (the `expiration` parameter, at
    /// most 2 weeks; the organisation may grant less, and the answer wins).
    pub fn with_expiration(mut self, expiration: Expiration) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// Uses `clock` for issue times and, in [`SignedIn::into_manager`], expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.client = self.client.with_clock(clock);
        self
    }

    /// The OAuth client underneath.
    pub fn client(&self) -> &OAuthClient {
        &self.client
    }

    /// Signs the app in: one `client_credentials` request.
    ///
    /// Errors: [`FlowErrorKind::ArcGis`] with
    /// [`InvalidClient`](arcgis_auth_core::ErrorKind::InvalidClient) for a wrong
    /// id or secret, [`InvalidInput`](arcgis_auth_core::ErrorKind::InvalidInput)
    /// for an expiration out of range, and the transport kinds.
    pub async fn sign_in(&self) -> Result<SignedIn<AppSignIn>> {
        let token = self.request().await?;
        let mut record = SessionRecord::new(self.client.portal().clone(), SessionKind::App);
        record.client_id = Some(self.client.client_id().to_owned());
        record.set_token(&token);
        tracing::info!(
            portal = %self.client.portal(),
            client_id = %self.client.client_id(),
            "app signed in"
        );
        let clock = Arc::clone(self.client.clock());
        Ok(SignedIn::new(record, token, self.clone(), clock))
    }

    async fn request(&self) -> Result<Token> {
        Ok(self.client.client_credentials(self.expiration).await?)
    }
}

impl fmt::Debug for AppSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppSignIn")
            .field("client", &self.client)
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// Renews app sessions by signing in again ([`Renewal::SignInAgain`]).
#[async_trait]
impl TokenSource for AppSignIn {
    fn renewal(&self, session: &SessionRecord) -> Renewal {
        renewal_for(session, SessionKind::App, Renewal::SignInAgain)
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token> {
        let record = request.session();
        check_owner(record, &self.client)?;
        match request.grant() {
            Grant::SignIn => self.request().await,
            _ => Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "app sessions have no refresh token; they are renewed by signing in again",
            )),
        }
    }
}
