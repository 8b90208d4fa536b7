//! `WebTierSignIn`: a portal token minted without a password, for the user
//! the web tier signed in (guide: `guide::enterprise`).

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{
    Clock, Expiration, ExposeSecret, GenerateTokenRequest, HttpClient, Portal, SignInMethod,
    SystemClock, Token, WebTierCredential, classify_response,
};
use arcgis_auth_storage::{SessionKind, SessionRecord, WebTierCredentialId};
use async_trait::async_trait;
use serde::Deserialize;

use super::{SignedIn, foreign_record};
use crate::error::{FlowError, FlowErrorKind, Result};
use crate::source::{Grant, RenewRequest, Renewal, TokenSource};

/// Sign-in at an Enterprise portal whose web tier authenticates every
/// request (PKI client certificates, LDAP over HTTP Basic, Kerberos), and the
/// [`TokenSource`] that renews such sessions the same way.
///
/// The web-tier credential lives in the [`HttpClient`]
/// ([`HttpClient::with_web_tier`]), which presents it only to the portal's
/// origin and to servers proven federated with it. With it in place the
/// portal token is minted **without a password**: `generateToken` with
/// `request=getToken`, `referer`, `expiration` and `f=json`; renewal
/// ([`Renewal::WebTier`]) mints again over the same credential. The
/// session record holds what identifies the credential (the certificate's
/// label, the Basic user name, the Kerberos principal:
/// [`SessionRecord::web_tier`]), never a password, a private key or a
/// PKCS#12 password.
///
/// A credential the web tier refuses
/// ([`WebTierCredentialRejected`](arcgis_auth_core::ErrorKind::WebTierCredentialRejected):
/// a wrong Basic password, a certificate from another CA or expired) ends
/// the session at the first refusal: it is not sent again.
#[derive(Clone)]
pub struct WebTierSignIn {
    portal: Portal,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    referer: String,
    expiration: Option<Expiration>,
}

impl WebTierSignIn {
    /// Web-tier sign-in at `portal` over `http`, which must carry a
    /// web-tier credential for the portal's origin; tokens are bound to
    /// `referer` (send it as `Referer` with every request that uses them).
    ///
    /// # Errors
    ///
    /// [`FlowErrorKind::InvalidInput`] when `http` has no web-tier credential
    /// or presents it to another origin than the portal's.
    pub fn new(portal: Portal, http: HttpClient, referer: impl Into<String>) -> Result<Self> {
        if http.web_tier().is_none() {
            return Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "web-tier sign-in needs an HttpClient with a web-tier credential: build it \
                 with HttpClient::with_web_tier",
            ));
        }
        if !http.web_tier_covers(portal.sharing_root()) {
            return Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                format!(
                    "the HttpClient presents its web-tier credential to another origin than \
                     the portal's: give with_web_tier the origin {}",
                    portal.origin()
                ),
            ));
        }
        Ok(WebTierSignIn {
            portal,
            http,
            clock: Arc::new(SystemClock),
            referer: referer.into(),
            expiration: None,
        })
    }

    /// Asks for tokens that live `expiration` (the portal caps it).
    pub fn with_expiration(mut self, expiration: Expiration) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// Uses `clock` to read the answer's expiry and, in
    /// [`SignedIn::into_manager`], to judge expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The client that presents the web-tier credential (give it to the
    /// middleware, [`ArcGisAuth::new`](crate::middleware::ArcGisAuth::new)).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// What identifies the web-tier credential (as stored in the record).
    pub fn credential_id(&self) -> Option<WebTierCredentialId> {
        credential_id(self.http.web_tier()?)
    }

    /// Mints the first token (one `generateToken` request), then reads who
    /// the web tier signed in from `portals/self` (`user.username`; left
    /// unknown when the portal does not say).
    ///
    /// # Errors
    ///
    /// [`WebTierCredentialRequired`](arcgis_auth_core::ErrorKind::WebTierCredentialRequired)
    /// (as `FlowErrorKind::ArcGis`) when the web tier wants another
    /// credential (its message names it),
    /// [`WebTierCredentialRejected`](arcgis_auth_core::ErrorKind::WebTierCredentialRejected)
    /// when it refused this one, the
    /// ArcGIS error when the portal refuses `getToken`, and the transport kinds.
    pub async fn sign_in(&self) -> Result<SignedIn<WebTierSignIn>> {
        let token = self.request().await?;
        let username = self.who(&token).await;
        let token = token.with_username(username.clone());
        let mut record = SessionRecord::new(self.portal.clone(), SessionKind::WebTier);
        record.referer = Some(self.referer.clone());
        record.web_tier = self.credential_id();
        record.set_token(&token);
        record.username = username;
        tracing::info!(
            portal = %self.portal,
            user = token.username().unwrap_or("?"),
            credential = self.http.web_tier().map_or("?", WebTierCredential::identity),
            "user signed in through the web tier"
        );
        Ok(SignedIn::new(
            record,
            token,
            self.clone(),
            Arc::clone(&self.clock),
        ))
    }

    async fn request(&self) -> Result<Token> {
        let mut request = GenerateTokenRequest::web_tier(self.referer.clone());
        if let Some(e) = self.expiration {
            request = request.with_expiration(e);
        }
        let url = self.portal.generate_token_url();
        Ok(request.send(&self.http, &url, self.clock.as_ref()).await?)
    }

    /// `user.username` of `portals/self`, read with the new token.
    async fn who(&self, token: &Token) -> Option<String> {
        #[derive(Deserialize)]
        struct PortalsSelf {
            user: Option<User>,
        }
        #[derive(Deserialize)]
        struct User {
            username: Option<String>,
        }
        // Sent by hand: the token is bound to the referer, which must travel too.
        let mut url = self.portal.portals_self_url();
        url.query_pairs_mut().append_pair("f", "json");
        let client = self
            .http
            .web_tier_reqwest()
            .unwrap_or_else(|| self.http.reqwest());
        let mut request = client
            .get(url.as_str())
            .header(http::header::REFERER, &self.referer);
        if let Ok(mut bearer) =
            http::HeaderValue::from_str(&format!("Bearer {}", token.access_token().expose_secret()))
        {
            bearer.set_sensitive(true);
            request = request.header("X-Esri-Authorization", bearer);
        }
        match self.http.web_tier_authorization_for(&url).await {
            Ok(Some(value)) => request = request.header(http::header::AUTHORIZATION, value),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "portals/self not asked: no web-tier credential");
                return None;
            }
        }
        let answer = request.send().await.ok()?;
        let status = answer.status();
        let body = answer.bytes().await.ok()?;
        if let Err(e) = classify_response(status, Some("application/json"), &body) {
            tracing::debug!(error = %e, "portals/self did not name the user");
            return None;
        }
        serde_json::from_slice::<PortalsSelf>(&body)
            .ok()?
            .user?
            .username
            .filter(|u| !u.is_empty())
    }
}

/// What identifies `credential` in a record.
fn credential_id(credential: &WebTierCredential) -> Option<WebTierCredentialId> {
    let id = credential.identity().to_owned();
    match credential.method() {
        SignInMethod::Basic => Some(WebTierCredentialId::Basic { username: id }),
        SignInMethod::ClientCertificate => {
            Some(WebTierCredentialId::ClientCertificate { label: id })
        }
        SignInMethod::Kerberos => Some(WebTierCredentialId::Kerberos { principal: id }),
        _ => None,
    }
}

impl fmt::Debug for WebTierSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebTierSignIn")
            .field("portal", &self.portal)
            .field("referer", &self.referer)
            .field("expiration", &self.expiration)
            .field("credential", &self.http.web_tier())
            .finish_non_exhaustive()
    }
}

/// Renews web-tier sessions by minting again ([`Renewal::WebTier`]) when the
/// session was signed in with the credential this source holds, and asks
/// the user otherwise ([`Renewal::UserMustSignIn`]).
#[async_trait]
impl TokenSource for WebTierSignIn {
    fn name(&self) -> &'static str {
        "web_tier"
    }

    fn renewal(&self, session: &SessionRecord) -> Renewal {
        let same = session.kind == SessionKind::WebTier
            && session.portal == self.portal
            && session.web_tier.is_some()
            && session.web_tier == self.credential_id();
        if same {
            Renewal::WebTier
        } else {
            Renewal::UserMustSignIn
        }
    }

    async fn renew(&self, request: &RenewRequest<'_>) -> Result<Token> {
        if request.session().portal != self.portal {
            return Err(foreign_record("belongs to another portal"));
        }
        match request.grant() {
            Grant::SignIn => {
                let token = self.request().await?;
                Ok(token.with_username(request.session().username.clone()))
            }
            _ => Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "a web-tier session is renewed by minting a new token, not with a refresh token",
            )),
        }
    }
}
