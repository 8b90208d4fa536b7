//! Whose token an authenticated route's request carries: one of the
//! gateway's own credentials, or the signed-in user's session.

use std::sync::Arc;

use arcgis_auth_flows::federation::Credential as UserCredential;
use arcgis_auth_flows::routing::Route as TokenRoute;
use arcgis_auth_flows::{AccessToken, FlowError, FlowErrorKind};
use axum::response::Response;
use http::StatusCode;

use crate::credentials::Credential;
use crate::reply;
use crate::users::{UserSession, UserSessions, not_signed_in};

/// Where a request's token comes from.
pub(crate) enum Signer {
    /// An `[[apps]]` or `[[servers]]` entry's credential.
    Gateway(Arc<Credential>),
    /// The user of the request's session cookie, with flows' decision of
    /// which of the user's tokens the target takes (the portal's, or a
    /// federated server's own).
    User {
        users: Arc<UserSessions>,
        session: Arc<UserSession>,
        route: TokenRoute,
    },
}

/// A token fetched for one attempt, and where to report it if refused.
pub(crate) struct Held {
    pub(crate) token: AccessToken,
    user: Option<UserCredential>,
}

impl Signer {
    /// `app:NAME`, `server:NAME` or `user`, for logs and metrics.
    pub(crate) fn label(&self) -> &str {
        match self {
            Signer::Gateway(c) => c.label(),
            Signer::User { .. } => "user",
        }
    }

    /// The token for this attempt, or the answer to give instead.
    pub(crate) async fn token(&self) -> Result<Held, Response> {
        match self {
            Signer::Gateway(credential) => match credential.token().await {
                Ok(token) => Ok(Held { token, user: None }),
                Err(e) => Err(gateway_failure(credential, &e)),
            },
            Signer::User {
                users,
                session,
                route,
            } => match session.federation().credential(route).await {
                Ok(Some(credential)) => Ok(Held {
                    token: credential.token().clone(),
                    user: Some(credential),
                }),
                Ok(None) => Err(reply::error(
                    StatusCode::FORBIDDEN,
                    "a signed-in user's token goes only to the portal and to servers federated \
                     with it: this route's URL is neither",
                )),
                Err(e) if session_over(&e) => {
                    tracing::info!(error = %e, "a user session can no longer be renewed: it is ended");
                    users.end_session(session).await;
                    Err(not_signed_in())
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no token for the signed-in user");
                    Err(reply::error(
                        StatusCode::BAD_GATEWAY,
                        "the portal is not answering: try again shortly",
                    ))
                }
            },
        }
    }

    /// Reports a token the upstream refused (498/499): the next attempt renews.
    pub(crate) fn report_invalid(&self, held: &Held) {
        match (self, &held.user) {
            (Signer::Gateway(c), _) => c.report_invalid(&held.token),
            (Signer::User { session, .. }, Some(credential)) => {
                session.federation().report_invalid(credential);
            }
            (Signer::User { session, .. }, None) => {
                session.federation().manager().report_invalid(&held.token);
            }
        }
    }
}

/// Whether `err` means the user must sign in again.
fn session_over(err: &FlowError) -> bool {
    matches!(
        err.kind(),
        FlowErrorKind::NoSession | FlowErrorKind::SignInRequired | FlowErrorKind::NotRenewable
    ) || err.arcgis_kind() == Some(arcgis_auth_core::ErrorKind::InvalidGrant)
}

fn gateway_failure(credential: &Credential, err: &FlowError) -> Response {
    tracing::error!(credential = credential.label(), error = %err, "no token for the route");
    let message = if err.is_transient() {
        "the token service is not answering: try again shortly"
    } else {
        "the gateway could not sign in for this route: its operator must check the credentials"
    };
    reply::error(StatusCode::BAD_GATEWAY, message)
}
