//! Sign-out: the refresh token is revoked at the portal and the session
//! deleted from the store; a failed revocation still deletes, and says so.

use arcgis_auth_core::ErrorKind;
use arcgis_auth_flows::FlowErrorKind;
use arcgis_auth_flows::account::{Account, Revoked};
use arcgis_auth_testkit::{Endpoint, Failure, USERNAME};

use crate::support::*;

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_and_deletes_the_session() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let account = Account::new(manager.clone(), kit.http.clone());
    assert_eq!(account.user().await.unwrap().username, USERNAME);
    let refresh = kit.stored().await.unwrap().refresh_token.unwrap();

    let report = account.sign_out().await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.revoked.as_ref().unwrap(), &Revoked::RefreshToken);
    assert!(report.deleted.as_ref().unwrap());
    assert_eq!(kit.portal.calls().endpoint(Endpoint::RevokeToken), 1);
    // Dead at the portal, gone from the store and from the manager.
    let answer = kit.direct_refresh(&refresh).await;
    assert_eq!(arcgis_error(&answer).0, 498, "{answer}");
    assert!(kit.stored().await.is_none());
    assert_eq!(
        manager.token().await.unwrap_err().kind(),
        FlowErrorKind::NoSession
    );
    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{report:?} {account:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn a_failed_revocation_still_deletes_the_session_and_reports_it() {
    let kit = Kit::start().await;
    let manager = kit.user_manager().await;
    let account = Account::new(manager.clone(), kit.http.clone());
    let refresh = kit.stored().await.unwrap().refresh_token.unwrap();
    kit.portal
        .fail_next_calls(Endpoint::RevokeToken, 10, Failure::ServiceUnavailable503);

    let report = account.sign_out().await;
    assert!(!report.is_complete());
    let err = report.revoked.as_ref().unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::Server),
        "{err}"
    );
    assert!(report.deleted.as_ref().unwrap());
    assert!(kit.stored().await.is_none());
    assert!(kit.portal.calls().endpoint(Endpoint::RevokeToken) >= 1);
    // As reported: the refresh token still works at the portal.
    kit.portal.clear_failures();
    let answer = kit.direct_refresh(&refresh).await;
    assert!(answer["access_token"].is_string(), "{answer}");
    kit.assert_no_secret(&format!("{report:?} {err}"));
    finish(kit).await;
}

#[tokio::test]
async fn an_app_session_has_a_portal_but_no_user_and_a_403_is_not_retried() {
    let kit = Kit::start().await;
    let manager = kit.app_manager(kit.app_sign_in()).await;
    let account = Account::new(manager, kit.http.clone());
    let portal = account.portal().await.unwrap();
    assert_eq!(portal.id.as_deref(), Some("TestkitOrg0001"));

    // community/self answers 403 for app tokens: refreshing would not help.
    let err = account.user().await.unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::Forbidden),
        "{err}"
    );
    let calls = kit.portal.calls();
    assert_eq!(calls.endpoint(Endpoint::CommunitySelf), 1);
    assert_eq!(
        calls.token(arcgis_auth_testkit::Grant::ClientCredentials),
        1
    );

    // App tokens cannot be revoked: sign-out says so and deletes.
    let report = account.sign_out().await;
    assert_eq!(report.revoked.as_ref().unwrap(), &Revoked::NothingToRevoke);
    assert!(report.deleted.as_ref().unwrap());
    assert_eq!(kit.portal.calls().endpoint(Endpoint::RevokeToken), 0);
    finish(kit).await;
}
