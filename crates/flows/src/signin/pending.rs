//! A sign-in between its two steps: [`PendingSignIn`], what a web server
//! keeps between sending the user to the portal and the callback.

use std::fmt;

use arcgis_auth_core::{ExposeSecret, OOB_REDIRECT_URI, Portal, SecretString, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use super::callback;
use crate::error::Result;

/// A sign-in between its two steps: the URL the user was sent to, and the
/// secrets needed to finish it (the PKCE verifier and the `state`).
///
/// A web server keeps this between the redirect to the portal and the
/// callback, usually in its server-side session store keyed by a cookie (or
/// by [`state`](Self::state)). It is `Serialize`/`Deserialize` for that, and
/// **the serialised form contains the PKCE verifier in clear**: store it on the
/// server only, never in a cookie, a URL, a hidden form field or anything else
/// that reaches the browser (whoever holds the verifier and intercepts the code
/// can sign in as the user). Throw it away once the sign-in completes. `Debug`
/// shows neither the verifier nor the state.
///
/// ```
/// use arcgis_auth_core::{AuthorizeOptions, HttpClient, Portal};
/// use arcgis_auth_flows::signin::{PendingSignIn, UserSignIn};
///
/// let sign_in = UserSignIn::new(Portal::arcgis_online(), "my-client-id", HttpClient::new()?);
/// let pending = sign_in.begin("https://app.example.com/callback", &AuthorizeOptions::new())?;
/// let saved = serde_json::to_string(&pending).unwrap(); // server-side only!
/// let back: PendingSignIn = serde_json::from_str(&saved).unwrap();
/// assert_eq!(back.url(), pending.url());
/// assert!(!format!("{back:?}").contains(back.state()));
/// # Ok::<(), arcgis_auth_flows::FlowError>(())
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub(super) portal: Portal,
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) url: Url,
    pub(super) state: String,
    #[serde(serialize_with = "ser_secret", deserialize_with = "de_secret")]
    pub(super) pkce_verifier: SecretString,
    pub(super) created_at: Timestamp,
}

impl PendingSignIn {
    /// The `oauth2/authorize` URL to send the user to.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The redirect URI the sign-in names (and the code exchange repeats).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The portal.
    pub fn portal(&self) -> &Portal {
        &self.portal
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The random `state` sent, e.g. to find this pending sign-in again when
    /// the callback arrives. It is not a credential, but keep it server-side.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// When the sign-in began (to throw away sign-ins never completed).
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// Whether this is an out-of-band sign-in ([`OOB_REDIRECT_URI`]).
    pub fn is_oob(&self) -> bool {
        self.redirect_uri == OOB_REDIRECT_URI
    }

    /// Checks a callback (URL or query string) and returns its code, without
    /// sending anything. [`UserSignIn::complete`](super::UserSignIn::complete) calls this; the errors are
    /// the ones listed there.
    pub fn code_from_callback(&self, callback: &str) -> Result<SecretString> {
        callback::code(callback, &self.state)
    }
}

impl fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("portal", &self.portal)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("state", &"[REDACTED]")
            .field("pkce_verifier", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

fn ser_secret<S: Serializer>(s: &SecretString, ser: S) -> std::result::Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

fn de_secret<'de, D: Deserializer<'de>>(de: D) -> std::result::Result<SecretString, D::Error> {
    String::deserialize(de).map(SecretString::from)
}
