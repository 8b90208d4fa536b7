//! Implicit-grant callbacks (deprecated flow, kept for migrations).
#![allow(deprecated)]

use std::time::Duration;

use crate::support::{arc_clock, clock, store};
use arcgis_auth_core::{ErrorKind, ExposeSecret, Portal};
use arcgis_auth_flows::FlowErrorKind;
use arcgis_auth_flows::signin::ImplicitCallback;
use arcgis_auth_storage::SessionKind;

const STATE: &str = "Zq1Rk8c0tVbP3s9X";

#[test]
fn a_callback_url_is_read() {
    let url = format!(
        "https://app.example.com/cb?app=1#access_token=IMPLICIT-TOKEN&expires_in=7200&username=jdoe&ssl=true&state={STATE}"
    );
    let callback = ImplicitCallback::parse(&url, STATE).unwrap();
    assert_eq!(callback.username(), Some("jdoe"));
    assert_eq!(callback.expires_in(), Duration::from_secs(7200));
    assert!(callback.ssl());
    assert!(!format!("{callback:?}").contains("IMPLICIT-TOKEN"));

    // The fragment alone, with or without '#', and without the optional fields.
    for fragment in [
        format!("#access_token=T&expires_in=60&state={STATE}"),
        format!("access_token=T&expires_in=60&state={STATE}"),
    ] {
        let callback = ImplicitCallback::parse(&fragment, STATE).unwrap();
        assert_eq!(callback.username(), None);
        assert!(!callback.ssl());
    }
}

#[test]
fn the_state_must_match() {
    for url in [
        "#access_token=T&expires_in=60".to_owned(),
        "#access_token=T&expires_in=60&state=other".to_owned(),
        format!("#access_token=T&expires_in=60&state={}", &STATE[..4]),
    ] {
        let err = ImplicitCallback::parse(&url, STATE).unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::StateMismatch, "{url}");
    }
}

#[test]
fn errors_and_broken_callbacks_are_typed() {
    let err = ImplicitCallback::parse(
        &format!("#error=access_denied&error_description=User+denied&state={STATE}"),
        STATE,
    )
    .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
    assert!(err.message().contains("User denied"));

    let err = ImplicitCallback::parse(
        &format!("#error=unsupported_response_type&state={STATE}"),
        STATE,
    )
    .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidRequest));

    for broken in [
        format!("#expires_in=60&state={STATE}"),
        format!("#access_token=T&state={STATE}"),
        format!("#access_token=T&expires_in=soon&state={STATE}"),
        format!("#access_token=T&expires_in=0&state={STATE}"),
        format!("#access_token=T&expires_in=-5&state={STATE}"),
        format!("#access_token=T&expires_in=99999999999999&state={STATE}"),
    ] {
        let err = ImplicitCallback::parse(&broken, STATE).unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::InvalidInput, "{broken}");
    }
}

#[tokio::test]
async fn the_token_is_served_until_it_expires_and_never_renewed() {
    let clock = clock();
    let callback = ImplicitCallback::parse(
        &format!(
            "#access_token=IMPLICIT-TOKEN&expires_in=7200&username=jdoe&ssl=true&state={STATE}"
        ),
        STATE,
    )
    .unwrap();
    let signed_in = callback.into_session(Portal::arcgis_online(), "my-app", arc_clock(&clock));
    let record = signed_in.record();
    assert_eq!(record.kind, SessionKind::User);
    assert_eq!(record.username.as_deref(), Some("jdoe"));
    assert!(record.refresh_token.is_none());
    let manager = signed_in.into_manager(store(), "browser").await.unwrap();
    let token = manager.token().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "IMPLICIT-TOKEN");
    assert!(token.ssl());

    clock.advance(Duration::from_secs(7200));
    let err = manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NotRenewable);
    assert!(err.message().contains("sign in again"), "{err}");
}
