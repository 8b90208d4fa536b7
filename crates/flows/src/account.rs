//! The signed-in account: who the user is, their organisation, app access, and signing out.
//!
//! [`Account`] wraps a session's [`TokenManager`] with the portal calls every
//! app needs once signed in:
//!
//! - [`Account::user`] (`community/self`) and [`Account::portal`]
//!   (`portals/self`), read once and cached for the session;
//! - [`Account::validate_app_access`] (`oauth2/validateAppAccess`);
//! - [`Account::sign_out`]: revoke at the portal, then delete the stored
//!   session, reporting both outcomes ([`SignOutReport`]).
//!
//! Calls carry the token in the POST body, and are retried once with a
//! renewed token after a 498, like the middleware does.

use std::fmt;
use std::sync::Arc;

use arcgis_auth_core::{
    Error as CoreError, ErrorKind, HttpClient, OAuthClient, Portal, SecretString, TokenTypeHint,
};
use arcgis_auth_storage::{SessionKind, SessionRecord};
use serde::Deserialize;
use url::Url;

use crate::error::{FlowError, FlowErrorKind, Result};
use crate::manager::TokenManager;
use crate::single_flight::Memo;

/// The signed-in user, from `community/self`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct User {
    /// The user name (case as the portal stores it).
    pub username: String,
    /// The full name.
    #[serde(default)]
    pub full_name: Option<String>,
    /// The e-mail address, when the portal shows it to the user.
    #[serde(default)]
    pub email: Option<String>,
    /// The organisation id (absent for public accounts).
    #[serde(default)]
    pub org_id: Option<String>,
    /// The role (`org_admin`, `org_publisher`, `org_user`, or a custom role id).
    #[serde(default)]
    pub role: Option<String>,
    /// The custom role id, when the role is a custom one.
    #[serde(default)]
    pub role_id: Option<String>,
    /// The user type (`userLicenseTypeId`, e.g. `creatorUT`).
    #[serde(default, rename = "userLicenseTypeId")]
    pub user_type: Option<String>,
    /// Privileges (`portal:user:createItem`, `premium:user:geocode`, ...).
    #[serde(default)]
    pub privileges: Vec<String>,
}

impl User {
    /// Whether the user holds `privilege` (exact match).
    pub fn has_privilege(&self, privilege: &str) -> bool {
        self.privileges.iter().any(|p| p == privilege)
    }
}

/// The user's organisation or portal, from `portals/self`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PortalInfo {
    /// The organisation (portal) id.
    #[serde(default)]
    pub id: Option<String>,
    /// The organisation's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The organisation's URL key (`myorg` in `myorg.maps.arcgis.com`).
    #[serde(default)]
    pub url_key: Option<String>,
    /// The custom base URL (`maps.arcgis.com`).
    #[serde(default)]
    pub custom_base_url: Option<String>,
    /// The portal's host name.
    #[serde(default)]
    pub portal_hostname: Option<String>,
    /// Whether this is ArcGIS Enterprise (`true`) rather than ArcGIS Online.
    #[serde(default)]
    pub is_portal: bool,
    /// The signed-in user, as `portals/self` embeds it.
    #[serde(default)]
    pub user: Option<User>,
}

/// The answer of `oauth2/validateAppAccess`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AppAccess {
    /// Whether the user may use the app.
    pub valid: bool,
    /// Whether the app is one that view-only user types may use.
    #[serde(default)]
    pub view_only_user_type_app: bool,
}

/// What was revoked at the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Revoked {
    /// The refresh token (and with it the access tokens made from it).
    RefreshToken,
    /// The access token (the session had no refresh token).
    AccessToken,
    /// Nothing: the session's token cannot be revoked (app tokens, API keys,
    /// `generateToken` tokens), or no session was stored. It stays valid until it expires.
    NothingToRevoke,
}

/// What [`Account::sign_out`] did. Both steps are always attempted.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignOutReport {
    /// The revocation at the portal.
    pub revoked: Result<Revoked>,
    /// Deleting the session from the store: whether a session was deleted.
    pub deleted: Result<bool>,
}

impl SignOutReport {
    /// Whether both steps succeeded.
    pub fn is_complete(&self) -> bool {
        self.revoked.is_ok() && self.deleted.is_ok()
    }
}

/// What is read once per session, each read one run shared by concurrent callers.
#[derive(Default)]
struct Cache {
    user: Memo<Arc<User>>,
    portal: Memo<Arc<PortalInfo>>,
}

impl Cache {
    fn forget(&self) {
        self.user.forget();
        self.portal.forget();
    }
}

/// Portal calls for one signed-in session; see the [module docs](self).
///
/// Cheap to clone; clones share the cache.
///
/// ```no_run
/// # use arcgis_auth_core::HttpClient;
/// # use arcgis_auth_flows::{FlowError, TokenManager};
/// use arcgis_auth_flows::account::Account;
///
/// # async fn demo(manager: TokenManager) -> Result<(), FlowError> {
/// let account = Account::new(manager, HttpClient::new()?);
/// let me = account.user().await?;
/// println!("signed in as {} ({:?})", me.username, me.role);
/// let report = account.sign_out().await;
/// assert!(report.is_complete());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Account {
    manager: TokenManager,
    http: HttpClient,
    cache: Arc<Cache>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("session", &self.manager.key())
            .finish_non_exhaustive()
    }
}

impl Account {
    /// Portal calls for `manager`'s session, through `http`.
    pub fn new(manager: TokenManager, http: HttpClient) -> Self {
        Account {
            manager,
            http,
            cache: Arc::new(Cache::default()),
        }
    }

    /// The token manager.
    pub fn manager(&self) -> &TokenManager {
        &self.manager
    }

    /// The signed-in user (`community/self`), read once per session.
    pub async fn user(&self) -> Result<Arc<User>> {
        let account = self.clone();
        self.cache
            .user
            .get_or_fetch("reading community/self", move || async move {
                let portal = session_record(&account.manager).await?.portal;
                let body = account.call(&portal.community_self_url(), &[]).await?;
                Ok(Arc::new(parse(&body, "community/self")?))
            })
            .await
    }

    /// The user's organisation or portal (`portals/self`), read once per session.
    pub async fn portal(&self) -> Result<Arc<PortalInfo>> {
        let account = self.clone();
        self.cache
            .portal
            .get_or_fetch("reading portals/self", move || async move {
                let portal = session_record(&account.manager).await?.portal;
                let body = account.call(&portal.portals_self_url(), &[]).await?;
                Ok(Arc::new(parse(&body, "portals/self")?))
            })
            .await
    }

    /// Forgets the cached user and portal information (read again on next use).
    pub async fn forget_cached(&self) {
        self.cache.forget();
    }

    /// Whether the signed-in user may use the app `client_id`
    /// (`oauth2/validateAppAccess`; `None` uses the session's own client id).
    /// Not cached: licences and app access change.
    pub async fn validate_app_access(&self, client_id: Option<&str>) -> Result<AppAccess> {
        let record = session_record(&self.manager).await?;
        let client_id = client_id
            .map(str::to_owned)
            .or(record.client_id)
            .ok_or_else(|| {
                FlowError::new(
                    FlowErrorKind::InvalidInput,
                    "validateAppAccess needs a client id and the session has none: pass one",
                )
            })?;
        let url = record.portal.endpoint("oauth2/validateAppAccess");
        let body = self.call(&url, &[("client_id", &client_id)]).await?;
        parse(&body, "oauth2/validateAppAccess")
    }

    /// Signs out: revokes the refresh token at the portal (or the access
    /// token, when the session has no refresh token), then deletes the
    /// session from the store, whatever the revocation did. The manager stops
    /// serving its token, and the cached user and portal are forgotten.
    ///
    /// Never fails as a whole: the report says what each step did. A failed
    /// revocation leaves the token valid at the portal until it expires (the
    /// refresh token for up to its lifetime): retry with
    /// [`OAuthClient::revoke`] if that matters.
    pub async fn sign_out(&self) -> SignOutReport {
        let store = self.manager.store();
        let key = self.manager.key();
        let revoked = match store.load(key).await {
            Ok(Some(stored)) => self.revoke(&stored.record).await,
            Ok(None) => Ok(Revoked::NothingToRevoke),
            Err(err) => Err(FlowError::from(err)),
        };
        if let Err(err) = &revoked {
            tracing::warn!(session = %key, error = %err, "revoking the token failed; deleting the session anyway");
        }
        let deleted = store.delete(key, None).await.map_err(FlowError::from);
        // Whatever the manager holds in memory goes too; its next call
        // finds no session (or, if the delete failed, the stored one).
        self.manager.clear().await;
        self.cache.forget();
        tracing::info!(
            session = %key,
            revoked = revoked.is_ok(),
            deleted = deleted.as_ref().is_ok_and(|d| *d),
            "signed out"
        );
        SignOutReport { revoked, deleted }
    }

    async fn revoke(&self, record: &SessionRecord) -> Result<Revoked> {
        let (secret, hint, what): (&SecretString, _, _) =
            match (&record.refresh_token, &record.access_token, record.kind) {
                (Some(rt), _, _) => (rt, TokenTypeHint::RefreshToken, Revoked::RefreshToken),
                (None, Some(at), SessionKind::User) => {
                    (at, TokenTypeHint::AccessToken, Revoked::AccessToken)
                }
                _ => return Ok(Revoked::NothingToRevoke),
            };
        let Some(client_id) = &record.client_id else {
            return Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                "the stored session has no client id, so its token cannot be revoked: it stays \
                 valid until it expires",
            ));
        };
        let client = OAuthClient::new(record.portal.clone(), client_id.clone(), self.http.clone())
            .with_clock(Arc::clone(self.manager.clock()));
        client.revoke(secret, hint).await?;
        Ok(what)
    }

    /// POSTs `form` with the session's token; after a 498/499, reports the
    /// token and retries once with a renewed one.
    async fn call(&self, url: &Url, form: &[(&str, &str)]) -> Result<Vec<u8>> {
        let token = self.manager.token().await?;
        match self
            .http
            .post_form_json(url, form, Some(token.secret()))
            .await
        {
            Ok(body) => Ok(body),
            Err(err) if is_rejection(&err) => {
                self.manager.report_invalid(&token);
                let token = self.manager.token().await?;
                Ok(self
                    .http
                    .post_form_json(url, form, Some(token.secret()))
                    .await?)
            }
            Err(err) => Err(err.into()),
        }
    }
}

fn is_rejection(err: &CoreError) -> bool {
    matches!(
        err.kind(),
        ErrorKind::InvalidToken | ErrorKind::TokenRequired
    )
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        FlowError::from(CoreError::new(
            ErrorKind::UnparseableResponse,
            format!(
                "the {what} answer is not what was expected (line {}, column {}): check the portal URL",
                e.line(),
                e.column()
            ),
        ))
    })
}

/// The portal of the session, for callers that only have the manager (to
/// build a [`TokenRouting`](crate::routing::TokenRouting), say): the session
/// in the manager's memory, or else the stored one.
pub async fn stored_portal(manager: &TokenManager) -> Result<Portal> {
    Ok(session_record(manager).await?.portal)
}

/// The session in the manager's memory (so a store outage does not stop a
/// session that is still served), or else the stored one.
async fn session_record(manager: &TokenManager) -> Result<SessionRecord> {
    if let Some(record) = manager.session().await {
        return Ok(record);
    }
    match manager.store().load(manager.key()).await? {
        Some(stored) => Ok(stored.record),
        None => Err(FlowError::new(
            FlowErrorKind::NoSession,
            format!(
                "no session is stored under `{}`: sign in first",
                manager.key()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_and_portal_parse() {
        let user: User = serde_json::from_str(
            r#"{"username":"jdoe","fullName":"Jane Doe","orgId":"Org1","role":"org_admin",
                "userLicenseTypeId":"creatorUT","privileges":["portal:admin:viewUsers"],"groups":[]}"#,
        )
        .unwrap();
        assert_eq!(user.full_name.as_deref(), Some("Jane Doe"));
        assert_eq!(user.user_type.as_deref(), Some("creatorUT"));
        assert!(user.has_privilege("portal:admin:viewUsers"));
        assert!(!user.has_privilege("portal:admin"));
        let info: PortalInfo = serde_json::from_str(
            r#"{"id":"Org1","name":"Org","urlKey":"myorg","isPortal":false,"user":{"username":"jdoe"}}"#,
        )
        .unwrap();
        assert_eq!(info.url_key.as_deref(), Some("myorg"));
        assert_eq!(info.user.unwrap().username, "jdoe");
        let access: AppAccess =
            serde_json::from_str(r#"{"valid":true,"viewOnlyUserTypeApp":false}"#).unwrap();
        assert!(access.valid);
        assert!(parse::<User>(b"{}", "community/self").is_err());
    }
}
