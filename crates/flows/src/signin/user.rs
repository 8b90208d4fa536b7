//! `UserSignIn`: a person signs in with the authorization code and PKCE (guide: `guide::user_sign_in`).

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{
    AuthorizeOptions, Clock, ExposeSecret, HttpClient, OAuthClient, Portal, RefreshToken,
    SecretString, Timestamp, Token,
};
use arcgis_auth_storage::{SessionKind, SessionRecord};
use async_trait::async_trait;

use super::loopback::{Loopback, LoopbackListener};
use super::oob::code_from_pasted;
use super::pending::PendingSignIn;
use super::{SignedIn, check_owner, foreign_record, renewal_for};
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::source::{Grant, RenewRequest, Renewal, TokenSource};

/// User sign-in with the authorization-code flow and PKCE, and the
/// [`TokenSource`] that renews such sessions with their refresh token.
///
/// Command-line and desktop apps sign in with one call,
/// [`sign_in_with_loopback`](Self::sign_in_with_loopback). Anything else
/// takes two steps: [`begin`](Self::begin) makes the sign-in URL and a
/// [`PendingSignIn`]; [`complete`](Self::complete) (or
/// [`complete_oob`](Self::complete_oob)) takes what the browser or the user
/// brought back and trades its code for tokens. See the [user sign-in guide](crate::guide::user_sign_in)
/// for the three ways to receive the callback.
///
/// Cloning is cheap. `Debug` never shows the client secret.
#[derive(Clone)]
pub struct UserSignIn {
    client: OAuthClient,
}

impl UserSignIn {
    /// Sign-in for the app `client_id` registered with `portal` (a public
    /// client: no secret, PKCE only), on the system clock.
    pub fn new(portal: Portal, client_id: impl Into<String>, http: HttpClient) -> Self {
        UserSignIn {
            client: OAuthClient::new(portal, client_id, http),
        }
    }

    /// Sends `secret` with the code exchange and refreshes (confidential
    /// server apps). It stays in memory: it is never written to a session.
    pub fn with_client_secret(mut self, secret: SecretString) -> Self {
        self.client = self.client.with_client_secret(secret);
        self
    }

    /// Uses `clock` for issue times and, in [`SignedIn::into_manager`], expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.client = self.client.with_clock(clock);
        self
    }

    /// The OAuth client underneath (portal, client id, HTTP client, clock).
    pub fn client(&self) -> &OAuthClient {
        &self.client
    }

    /// Step one: the sign-in URL to open in the user's browser, and what to
    /// keep until the callback arrives. For an out-of-band sign-in,
    /// `redirect_uri` is [`OOB_REDIRECT_URI`](arcgis_auth_core::OOB_REDIRECT_URI)
    /// (finish with [`complete_oob`](Self::complete_oob)).
    ///
    /// The URL carries `client_id`, `response_type=code`, `redirect_uri`, a
    /// random `state`, the S256 `code_challenge` of a random verifier, and the
    /// `options` (`expiration` sets the *refresh* token's lifetime, `locale`,
    /// `style`). `redirect_uri` must be registered for the app exactly as
    /// given; it may carry its own query parameters.
    ///
    /// Errors: [`FlowErrorKind::ArcGis`] with
    /// [`InvalidUrl`](arcgis_auth_core::ErrorKind::InvalidUrl) for a malformed
    /// redirect URI, [`InvalidInput`](arcgis_auth_core::ErrorKind::InvalidInput)
    /// for an expiration out of range,
    /// [`InsecureTransport`](arcgis_auth_core::ErrorKind::InsecureTransport)
    /// for a remote `http://` portal.
    pub fn begin(&self, redirect_uri: &str, options: &AuthorizeOptions) -> Result<PendingSignIn> {
        let authorization = self.client.authorize_url(redirect_uri, options)?;
        let created_at = self.client.clock().now();
        tracing::debug!(
            portal = %self.client.portal(),
            client_id = %self.client.client_id(),
            redirect_uri,
            "sign-in started"
        );
        Ok(PendingSignIn {
            portal: self.client.portal().clone(),
            client_id: self.client.client_id().to_owned(),
            redirect_uri: authorization.redirect_uri().to_owned(),
            url: authorization.url().clone(),
            state: authorization.state().to_owned(),
            pkce_verifier: authorization.pkce_verifier().clone(),
            created_at,
        })
    }

    /// Step two: checks the callback and trades its code for tokens.
    ///
    /// `callback` is the URL the browser was sent to, or just its query
    /// string (with or without the leading `?`); parameters of the app's own
    /// are ignored.
    ///
    /// Errors:
    /// - [`FlowErrorKind::StateMismatch`]: the `state` is missing or differs
    ///   (compared in constant time): a forged or stale callback. Nothing is sent.
    /// - [`FlowErrorKind::SignInRequired`] with
    ///   [`arcgis_kind`](FlowError::arcgis_kind) `Some(AccessDenied)`: the user
    ///   declined (`error=access_denied`). Other `error=` values keep their
    ///   ArcGIS kind ([`FlowErrorKind::ArcGis`]).
    /// - [`FlowErrorKind::InvalidInput`]: no code in the callback, or `pending`
    ///   belongs to another portal or app.
    /// - whatever the token endpoint answers (an expired or reused code is
    ///   [`InvalidGrant`](arcgis_auth_core::ErrorKind::InvalidGrant)).
    pub async fn complete(
        &self,
        pending: &PendingSignIn,
        callback: &str,
    ) -> Result<SignedIn<UserSignIn>> {
        self.check_pending(pending)?;
        let code = pending.code_from_callback(callback)?;
        self.exchange(pending, &code).await
    }

    /// Step two for the out-of-band flow: `pasted` is what the user copied
    /// from the approval page (the code, or the page's `SUCCESS code=...`
    /// title, or the whole page); see [`code_from_pasted`].
    ///
    /// There is no `state` to check here: the user carried the code by hand.
    /// PKCE still binds the code to this sign-in, so a code from anyone
    /// else's sign-in is refused by the portal.
    pub async fn complete_oob(
        &self,
        pending: &PendingSignIn,
        pasted: &str,
    ) -> Result<SignedIn<UserSignIn>> {
        self.check_pending(pending)?;
        if !pending.is_oob() {
            return Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "this sign-in was not started out of band: pass the callback to complete()",
            ));
        }
        let code = code_from_pasted(pasted)?;
        self.exchange(pending, &code).await
    }

    /// The whole sign-in of a command-line or desktop app, in one call:
    /// listens on `127.0.0.1` as `loopback` says, begins the sign-in with the
    /// listener's redirect URI, hands the [`PendingSignIn`] to `open` (open
    /// [`PendingSignIn::url`] in the user's browser, or print it), waits up to
    /// the [`Loopback`]'s timeout for the browser to come back, and trades the code
    /// for tokens. The listener answers the browser with a "you can close this
    /// tab" page and closes its port before this returns. See the
    /// [loopback guide](crate::guide::loopback) for what it answers to whom.
    ///
    /// `open` is called once, after the port is bound and before waiting; it
    /// must not block for long (spawn a task to drive a browser).
    ///
    /// ```no_run
    /// use arcgis_auth_core::{AuthorizeOptions, HttpClient, Portal};
    /// use arcgis_auth_flows::signin::{Loopback, UserSignIn};
    ///
    /// # async fn run() -> Result<(), arcgis_auth_flows::FlowError> {
    /// let sign_in = UserSignIn::new(Portal::arcgis_online(), "my-client-id", HttpClient::new()?);
    /// let signed_in = sign_in
    ///     .sign_in_with_loopback(&Loopback::new().port(8765), &AuthorizeOptions::new(), |pending| {
    ///         println!("Open this page to sign in: {}", pending.url());
    ///     })
    ///     .await?;
    /// println!("signed in as {}", signed_in.token().username().unwrap_or("?"));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Errors: [`FlowErrorKind::Io`] when the port cannot be bound (in use,
    /// not allowed; `open` is not called), [`FlowErrorKind::SignInTimedOut`]
    /// when the browser did not come back in time, and those of
    /// [`begin`](Self::begin) and [`complete`](Self::complete).
    pub async fn sign_in_with_loopback(
        &self,
        loopback: &Loopback,
        options: &AuthorizeOptions,
        open: impl FnOnce(&PendingSignIn),
    ) -> Result<SignedIn<UserSignIn>> {
        let listener =
            LoopbackListener::bind(loopback.port_number(), loopback.callback_path()).await?;
        let pending = self.begin(listener.redirect_uri(), options)?;
        open(&pending);
        let callback = listener.wait(&pending, loopback.wait_at_most()).await?;
        self.complete(&pending, callback.expose_secret()).await
    }

    fn check_pending(&self, pending: &PendingSignIn) -> Result<()> {
        if pending.client_id != self.client.client_id() || &pending.portal != self.client.portal() {
            return Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "the pending sign-in was started for another portal or app: complete it with the \
                 UserSignIn that began it",
            ));
        }
        Ok(())
    }

    async fn exchange(
        &self,
        pending: &PendingSignIn,
        code: &SecretString,
    ) -> Result<SignedIn<UserSignIn>> {
        let token = self
            .client
            .exchange_code(code, Some(&pending.pkce_verifier), &pending.redirect_uri)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "the sign-in code was not accepted"))?;
        let mut record = SessionRecord::new(self.client.portal().clone(), SessionKind::User);
        record.client_id = Some(self.client.client_id().to_owned());
        record.redirect_uri = Some(pending.redirect_uri.clone());
        record.set_token(&token);
        tracing::info!(
            portal = %self.client.portal(),
            user = token.username().unwrap_or("?"),
            refresh_token = token.refresh_token().is_some(),
            "user signed in"
        );
        let clock = Arc::clone(self.client.clock());
        Ok(SignedIn::new(record, token, self.clone(), clock))
    }
}

impl fmt::Debug for UserSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserSignIn")
            .field("client", &self.client)
            .finish()
    }
}

/// Renews user sessions: `refresh_token`, or `exchange_refresh_token` (with the
/// session's redirect URI) when the manager asks for a new refresh token.
#[async_trait]
impl TokenSource for UserSignIn {
    fn renewal(&self, session: &SessionRecord) -> Renewal {
        renewal_for(session, SessionKind::User, Renewal::RefreshToken)
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token> {
        let record = request.session();
        check_owner(record, &self.client)?;
        let secret = record.refresh_token.clone().ok_or_else(|| {
            FlowError::new(
                FlowErrorKind::SignInRequired,
                "the session has no refresh token: sign in again",
            )
        })?;
        let refresh_token = RefreshToken::new(
            secret,
            record
                .refresh_token_issued_at
                .unwrap_or(Timestamp::UNIX_EPOCH),
            record.refresh_token_expires_at,
        );
        match request.grant() {
            Grant::Refresh => Ok(self.client.refresh(&refresh_token).await?),
            Grant::Exchange => {
                let redirect_uri = record.redirect_uri.as_deref().ok_or_else(|| {
                    foreign_record("has no redirect URI to exchange its refresh token with")
                })?;
                Ok(self
                    .client
                    .exchange_refresh_token(&refresh_token, redirect_uri)
                    .await?)
            }
            _ => Err(FlowError::new(
                FlowErrorKind::SignInRequired,
                "a user session can only be renewed with its refresh token: sign in again",
            )),
        }
    }
}
