//! A credential the portal refused is never sent again: a password changed
//! in the directory (generateToken's "Invalid username or password.") or a
//! revoked client secret ends the session at the first refusal, however many
//! callers are waiting, because Active Directory and LDAP lock an account
//! after a few failed sign-ins.

use arcgis_auth_core::{ErrorKind, SecretString};
use arcgis_auth_flows::signin::AppSignIn;
use arcgis_auth_flows::{FlowErrorKind, TokenManager};
use arcgis_auth_testkit::{CONFIDENTIAL_CLIENT_ID, Endpoint, Grant, PASSWORD, USERNAME};
use tokio::task::JoinSet;

use crate::support::*;

/// 20 tasks ask for a token at once, then 20 more one after another; every
/// answer must be the typed refusal.
async fn twenty_and_twenty_more_are_refused(manager: &TokenManager) {
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let manager = manager.clone();
        tasks.spawn(async move { manager.token().await });
    }
    while let Some(joined) = tasks.join_next().await {
        let err = joined.unwrap().unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::SignInRequired, "{err}");
        assert!(err.kind().needs_sign_in());
        assert!(err.to_string().contains("not sent again"), "{err}");
    }
    for _ in 0..20 {
        let err = manager.token().await.unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::SignInRequired, "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_is_sent_once_however_many_callers_wait() {
    let kit = Kit::start().await;
    let sign_in = kit.password_sign_in();
    let manager = sign_in
        .sign_in(USERNAME, PASSWORD.to_owned().into())
        .await
        .unwrap()
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    manager.token().await.unwrap();
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 1);

    // The directory changes the password; the token runs out.
    kit.portal.set_password(USERNAME, "a-new-password").unwrap();
    kit.clock.advance(61 * MINUTE);
    twenty_and_twenty_more_are_refused(&manager).await;

    // Exactly one sign-in with the old password reached the portal.
    assert_eq!(kit.portal.calls().endpoint(Endpoint::GenerateToken), 2);
    let err = manager.token().await.unwrap_err();
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::InvalidGrant), "{err}");
    kit.assert_no_secret(&format!("{err} {err:?} {manager:?}"));
    assert!(!format!("{err} {err:?}").contains(PASSWORD));

    // A new sign-in with the new password is a new session: served again.
    let renewed = sign_in
        .sign_in(USERNAME, "a-new-password".to_owned().into())
        .await
        .unwrap();
    manager.set_session(renewed.record().clone()).await.unwrap();
    assert!(manager.token().await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_secret_is_sent_once() {
    let kit = Kit::start().await;
    let manager = kit
        .app_sign_in()
        .sign_in()
        .await
        .unwrap()
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    assert_eq!(kit.portal.calls().token(Grant::ClientCredentials), 1);

    // A manager whose source holds a secret the portal does not accept (the
    // secret was rotated under it), over the same stored session.
    let stale = AppSignIn::new(
        kit.portal.portal(),
        CONFIDENTIAL_CLIENT_ID,
        SecretString::from("a-revoked-secret"),
        kit.http.clone(),
    )
    .with_clock(kit.arc_clock());
    let stale_manager = TokenManager::builder(stale, kit.store.clone(), KEY)
        .clock(kit.arc_clock())
        .config(config())
        .build()
        .unwrap();
    kit.clock.advance(2 * HOUR + MINUTE);
    twenty_and_twenty_more_are_refused(&stale_manager).await;
    assert_eq!(kit.portal.calls().token(Grant::ClientCredentials), 2);
    let err = stale_manager.token().await.unwrap_err();
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::InvalidClient), "{err}");
    drop(manager);
}
