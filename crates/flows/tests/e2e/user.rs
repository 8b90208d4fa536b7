//! User sign-in end to end: PKCE through the loopback listener (then
//! refresh and refresh-token rotation), out of band, and the two-step API of
//! a web server (with the pending sign-in serialised between the steps).

use arcgis_auth_core::{AuthorizeOptions, ErrorKind, ExposeSecret, OOB_REDIRECT_URI};
use arcgis_auth_flows::FlowErrorKind;
use arcgis_auth_flows::signin::PendingSignIn;
use arcgis_auth_flows::signin::UserSignIn;
use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, Grant, USERNAME,
};

use crate::support::*;

#[tokio::test]
async fn pkce_through_the_loopback_listener_then_refresh_then_rotation() {
    let kit = Kit::start().await;
    // The test plays the browser while the app waits on its listener; the
    // refresh token lives two days, so its last day comes soon.
    let (signed_in, visit, pending) = kit.sign_in_with_listener().await;
    assert_eq!(visit.status, Some(200));
    assert!(
        visit.body.contains("You can close this tab"),
        "{}",
        visit.body
    );
    assert_eq!(kit.portal.calls().token(Grant::AuthorizationCode), 1);
    let first = signed_in.token().access_token().expose_secret().to_owned();
    kit.assert_no_secret(&format!("{signed_in:?} {pending:?} {visit:?}"));

    let manager = signed_in
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    let token = manager.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), first);
    assert_eq!(token.username(), Some(USERNAME));

    // Past the 30-minute access token: one refresh_token grant.
    kit.clock.advance(31 * MINUTE);
    let refreshed = manager.token().await.unwrap();
    assert_ne!(refreshed.secret().expose_secret(), first);
    assert_eq!(kit.portal.calls().token(Grant::RefreshToken), 1);
    assert_eq!(kit.portal.calls().token(Grant::ExchangeRefreshToken), 0);
    let old_refresh = kit.stored().await.unwrap().refresh_token.unwrap();

    // Into the refresh token's last day (and past the access token again):
    // the manager exchanges it, and the portal rotates it.
    kit.clock.advance(36 * HOUR);
    let exchanged = manager.token().await.unwrap();
    assert!(!exchanged.same_token(&refreshed));
    let calls = kit.portal.calls();
    assert_eq!(calls.token(Grant::ExchangeRefreshToken), 1);
    assert_eq!(calls.token(Grant::RefreshToken), 1);

    // The store holds the new refresh token; the old one is dead at the portal.
    let new_refresh = kit.stored().await.unwrap().refresh_token.unwrap();
    assert_ne!(new_refresh.expose_secret(), old_refresh.expose_secret());
    let answer = kit.direct_refresh(&old_refresh).await;
    assert_eq!(arcgis_error(&answer).0, 498, "{answer}");
    let answer = kit.direct_refresh(&new_refresh).await;
    assert!(answer["access_token"].is_string(), "{answer}");

    assert_eq!(kit.portal.calls().secrets_in_url(), 0);
    kit.assert_no_secret(&format!("{manager:?} {exchanged:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn out_of_band_the_code_is_read_from_the_approval_page_title() {
    let kit = Kit::start().await;
    let sign_in = kit.user_sign_in();
    let pending = sign_in
        .begin(OOB_REDIRECT_URI, &AuthorizeOptions::new())
        .unwrap();
    assert!(pending.is_oob());

    let visit = kit
        .portal
        .play_browser(pending.url().as_str())
        .await
        .unwrap();
    assert!(visit.redirected_to.path().ends_with("/oauth2/approval"));
    assert_eq!(kit.portal.calls().endpoint(Endpoint::Approval), 1);
    // What the user copies: the page title.
    let title = visit
        .body
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(title, _)| title.trim().to_owned())
        .unwrap();
    assert!(title.starts_with("SUCCESS code="), "{title}");

    let signed_in = sign_in.complete_oob(&pending, &title).await.unwrap();
    assert_eq!(signed_in.token().username(), Some(USERNAME));
    assert!(signed_in.token().refresh_token().is_some());

    // Codes are single-use: pasting it again is refused by the portal.
    let again = sign_in.complete_oob(&pending, &title).await.unwrap_err();
    assert_eq!(
        again.arcgis_kind(),
        Some(ErrorKind::InvalidRequest),
        "{again}"
    );
    kit.assert_no_secret(&format!("{again} {again:?} {signed_in:?}"));

    let manager = signed_in
        .into_manager_with(kit.store.clone(), KEY, config())
        .await
        .unwrap();
    let item = reqwest::Client::new()
        .get(format!(
            "{}?f=json",
            kit.portal.secured_item_url("oob-item")
        ))
        .header(
            "X-Esri-Authorization",
            format!(
                "Bearer {}",
                manager.token().await.unwrap().secret().expose_secret()
            ),
        )
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(item["accessedBy"], USERNAME, "{item}");
    finish(kit).await;
}

/// The confidential web app, as a server would hold it.
fn web_app(kit: &Kit) -> UserSignIn {
    UserSignIn::new(
        kit.portal.portal(),
        CONFIDENTIAL_CLIENT_ID,
        kit.http.clone(),
    )
    .with_client_secret(CONFIDENTIAL_CLIENT_SECRET.to_owned().into())
    .with_clock(kit.arc_clock())
}

/// What a web server keeps between the redirect and the callback.
fn round_trip(pending: &PendingSignIn) -> PendingSignIn {
    let saved = serde_json::to_string(pending).unwrap();
    serde_json::from_str(&saved).unwrap()
}

#[tokio::test]
async fn own_web_server_two_steps_with_the_pending_sign_in_stored_between() {
    let kit = Kit::start().await;
    // Step 1 (the sign-in button): begin, store, redirect the browser.
    let pending = web_app(&kit)
        .begin(WEB_REDIRECT_URI, &AuthorizeOptions::new())
        .unwrap();
    let saved = round_trip(&pending);
    assert_eq!(saved.state(), pending.state());
    let callback = kit
        .portal
        .authorize_redirect(pending.url().as_str())
        .await
        .unwrap();
    // The redirect URI keeps its own query next to the code.
    assert_eq!(
        callback
            .query_pairs()
            .find(|(k, _)| k == "tenant")
            .map(|(_, v)| v.into_owned()),
        Some("7".to_owned())
    );

    // Step 2 (the callback, maybe in another process): a fresh UserSignIn.
    let signed_in = web_app(&kit)
        .complete(&saved, callback.as_str())
        .await
        .unwrap();
    assert_eq!(signed_in.token().username(), Some(USERNAME));
    assert_eq!(kit.portal.calls().token(Grant::AuthorizationCode), 1);
    let sent = kit.portal.received_requests().await;
    let exchange = sent
        .iter()
        .find(|r| r.url.path().ends_with("/oauth2/token"))
        .unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&exchange.body)
        .into_owned()
        .collect();
    assert!(
        form.iter()
            .any(|(k, v)| k == "redirect_uri" && v == WEB_REDIRECT_URI)
    );
    assert!(form.iter().any(|(k, _)| k == "client_secret"));
    assert!(form.iter().any(|(k, _)| k == "code_verifier"));
    kit.assert_no_secret(&format!("{saved:?} {signed_in:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn own_web_server_callback_of_another_sign_in_is_a_state_mismatch() {
    let kit = Kit::start().await;
    let app = web_app(&kit);
    let mine = round_trip(
        &app.begin(WEB_REDIRECT_URI, &AuthorizeOptions::new())
            .unwrap(),
    );
    let other = app
        .begin(WEB_REDIRECT_URI, &AuthorizeOptions::new())
        .unwrap();
    let others_callback = kit
        .portal
        .authorize_redirect(other.url().as_str())
        .await
        .unwrap();

    let err = app
        .complete(&mine, others_callback.as_str())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::StateMismatch);
    assert!(err.kind().needs_sign_in());
    // Refused before any request: the code was not spent.
    assert_eq!(kit.portal.calls().endpoint(Endpoint::Token), 0);
    let signed_in = app
        .complete(&other, others_callback.as_str())
        .await
        .unwrap();
    assert_eq!(signed_in.token().username(), Some(USERNAME));
    kit.assert_no_secret(&format!("{err} {err:?}"));
    finish(kit).await;
}

#[tokio::test]
async fn own_web_server_declined_sign_in_is_access_denied() {
    let kit = Kit::start().await;
    let app = web_app(&kit);
    let pending = round_trip(
        &app.begin(WEB_REDIRECT_URI, &AuthorizeOptions::new())
            .unwrap(),
    );
    kit.portal.deny_next_authorization();
    let callback = kit
        .portal
        .authorize_redirect(pending.url().as_str())
        .await
        .unwrap();
    assert!(
        callback
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "access_denied")
    );

    let err = app.complete(&pending, callback.as_str()).await.unwrap_err();
    // Declining is a "sign in again" error that keeps the portal's reason.
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
    assert!(err.to_string().contains("sign in again"), "{err}");
    assert_eq!(kit.portal.calls().endpoint(Endpoint::Token), 0);
    finish(kit).await;
}

#[tokio::test]
async fn a_declined_sign_in_through_the_listener_shows_an_error_page_and_a_typed_error() {
    let kit = Kit::start().await;
    kit.portal.deny_next_authorization();
    let (signed_in, visit, _) = kit.loopback_sign_in(&AuthorizeOptions::new()).await;
    assert_eq!(visit.status, Some(400));
    assert!(visit.body.contains("Sign-in failed"), "{}", visit.body);
    let err = signed_in.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
    assert_eq!(kit.portal.calls().endpoint(Endpoint::Token), 0);
    finish(kit).await;
}
