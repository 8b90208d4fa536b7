//! `PasswordSignIn`: `generateToken` with a username and password (guide: `guide::generate_token`).

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{
    Clock, Expiration, GenerateTokenRequest, HttpClient, Portal, SecretString, SystemClock, Token,
    TokenBinding,
};
use arcgis_auth_storage::{SessionKind, SessionRecord};
use async_trait::async_trait;

use super::{SignedIn, foreign_record};
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::source::{Grant, RenewRequest, Renewal, TokenSource};

/// Username/password sign-in with the portal's `generateToken`, and the
/// [`TokenSource`] that renews such sessions by signing in again with the
/// password it holds in memory.
///
/// The password is a [`SecretString`] that lives only in this value: it is
/// never written to the [`SessionRecord`] or the store, and `Debug` never shows
/// it. A `PasswordSignIn` without credentials (after a restart) cannot renew:
/// the manager then answers [`FlowErrorKind::SignInRequired`]. A password the
/// portal refuses (changed in the directory) ends the session at the first
/// refusal: the manager never sends it again, however many callers wait.
///
/// Credentials only travel over HTTPS, or plain HTTP to a loopback address.
#[derive(Clone)]
pub struct PasswordSignIn {
    portal: Portal,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    binding: TokenBinding,
    expiration: Option<Expiration>,
    credentials: Option<Credentials>,
}

#[derive(Clone)]
struct Credentials {
    username: String,
    password: SecretString,
}

impl PasswordSignIn {
    /// `generateToken` sign-in at `portal`, binding tokens as `binding` says
    /// (`client=referer` with the `Referer` your requests will send,
    /// `client=ip`, or `client=requestip`), on the system clock. Holds no
    /// credentials yet: see [`sign_in`](Self::sign_in).
    pub fn new(portal: Portal, http: HttpClient, binding: TokenBinding) -> Self {
        PasswordSignIn {
            portal,
            http,
            clock: Arc::new(SystemClock),
            binding,
            expiration: None,
            credentials: None,
        }
    }

    /// Keeps `username` and `password` in memory to sign in again when the
    /// token expires (e.g. a service restarted with the password from its
    /// secret store, renewing a stored session).
    pub fn with_credentials(mut self, username: impl Into<String>, password: SecretString) -> Self {
        self.credentials = Some(Credentials {
            username: username.into(),
            password,
        });
        self
    }

    /// Asks for tokens that live `expiration` (the server caps it).
    pub fn with_expiration(mut self, expiration: Expiration) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// Uses `clock` to check the answer's expiry and, in
    /// [`SignedIn::into_manager`], to judge expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The user whose credentials are held, if any.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// Signs `username` in with `password`: one `generateToken` request. The
    /// returned session's source keeps both in memory to sign in again.
    ///
    /// Errors: [`FlowErrorKind::ArcGis`] with
    /// [`InsecureTransport`](arcgis_auth_core::ErrorKind::InsecureTransport) for a portal on
    /// plain `http://` that is not loopback (nothing is sent), the ArcGIS error
    /// for a wrong username or password, and the transport kinds.
    pub async fn sign_in(
        &self,
        username: impl Into<String>,
        password: SecretString,
    ) -> Result<SignedIn<PasswordSignIn>> {
        let signer = self.clone().with_credentials(username, password);
        let token = signer.request().await?;
        let mut record = SessionRecord::new(self.portal.clone(), SessionKind::GenerateToken);
        match &self.binding {
            TokenBinding::Referer(referer) => record.referer = Some(referer.clone()),
            TokenBinding::Ip(ip) => record.client_ip = Some(*ip),
            _ => {}
        }
        record.set_token(&token);
        tracing::info!(
            portal = %self.portal,
            user = token.username().unwrap_or("?"),
            "user signed in with generateToken"
        );
        let clock = Arc::clone(&signer.clock);
        Ok(SignedIn::new(record, token, signer, clock))
    }

    async fn request(&self) -> Result<Token> {
        let Some(credentials) = &self.credentials else {
            return Err(password_not_in_memory());
        };
        // Core's HttpClient refuses a password bound for a remote http:// URL
        // (InsecureTransport) before anything is sent.
        let url = self.portal.generate_token_url();
        let mut request = GenerateTokenRequest::password(
            credentials.username.clone(),
            credentials.password.clone(),
            self.binding.clone(),
        );
        if let Some(e) = self.expiration {
            request = request.with_expiration(e);
        }
        let token = request.send(&self.http, &url, self.clock.as_ref()).await?;
        Ok(token.with_username(Some(credentials.username.clone())))
    }
}

fn password_not_in_memory() -> FlowError {
    FlowError::new(
        FlowErrorKind::SignInRequired,
        "the password of this generateToken session is not in memory (it is never stored): \
         sign in again",
    )
}

impl fmt::Debug for PasswordSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordSignIn")
            .field("portal", &self.portal)
            .field("binding", &self.binding)
            .field("expiration", &self.expiration)
            .field("username", &self.username())
            .field("password", &self.credentials.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// Renews `generateToken` sessions by signing in again
/// ([`Renewal::SignInAgain`]) when the password of the session's user is in
/// memory, and asks the user otherwise ([`Renewal::UserMustSignIn`]).
#[async_trait]
impl TokenSource for PasswordSignIn {
    fn renewal(&self, session: &SessionRecord) -> Renewal {
        let same_user = self
            .credentials
            .as_ref()
            .is_some_and(|c| session.username.as_deref() == Some(c.username.as_str()));
        if session.kind == SessionKind::GenerateToken && same_user {
            Renewal::SignInAgain
        } else {
            Renewal::UserMustSignIn
        }
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token> {
        if request.session().portal != self.portal {
            return Err(foreign_record("belongs to another portal"));
        }
        match request.grant() {
            Grant::SignIn => self.request().await,
            _ => Err(password_not_in_memory()),
        }
    }
}
