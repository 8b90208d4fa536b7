//! `{:?}` and `{}` of every public type that holds a secret never show it.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::time::Duration;

use arcgis_auth_core::{
    ArcGisErrorResponse, ArcGisTokenResponse, AuthorizeOptions, Error, GenerateTokenRequest,
    GenerateTokenResponse, OAuthClient, Portal, RefreshToken, SecretString, ServerRoot, Token,
    TokenBinding,
};
use common::*;

fn debug_and_display_hide<T: std::fmt::Debug>(value: &T) {
    assert_no_secret(&format!("{value:?}"));
    assert_no_secret(&format!("{value:#?}"));
}

#[test]
fn token_types() {
    let refresh = RefreshToken::new(
        SecretString::from(REFRESH),
        T0,
        Some(T0 + Duration::from_secs(60)),
    );
    debug_and_display_hide(&refresh);
    let token = Token::new(SecretString::from(ACCESS), T0 + Duration::from_secs(60))
        .with_refresh_token(Some(refresh))
        .with_username(Some("jdoe".into()));
    debug_and_display_hide(&token);

    let body = format!(
        r#"{{"access_token":"{ACCESS}","expires_in":1800,"refresh_token":"{REFRESH}","refresh_token_expires_in":60}}"#
    );
    let response = ArcGisTokenResponse::from_body(body.as_bytes()).unwrap();
    debug_and_display_hide(&response);
    debug_and_display_hide(&response.clone().into_token(T0));

    let generated = GenerateTokenResponse::from_body(
        format!(
            r#"{{"token":"{ACCESS}","expires":{}}}"#,
            T0.as_unix_millis() + 60_000
        )
        .as_bytes(),
    )
    .unwrap();
    debug_and_display_hide(&generated);
    debug_and_display_hide(&generated.into_token(T0).unwrap());
}

#[test]
fn request_and_client_types() {
    let by_password = GenerateTokenRequest::password(
        "jdoe",
        SecretString::from(PASSWORD),
        TokenBinding::Referer("https://app.example.com".into()),
    );
    debug_and_display_hide(&by_password);
    let server = ServerRoot::parse("https://gis.example.com/server").unwrap();
    debug_and_display_hide(&GenerateTokenRequest::federated(
        SecretString::from(ACCESS),
        &server,
    ));

    let client = OAuthClient::new(Portal::arcgis_online(), CLIENT_ID, http())
        .with_client_secret(SecretString::from(CLIENT_SECRET));
    debug_and_display_hide(&client);
    debug_and_display_hide(client.oauth2_client());

    let sign_in = client
        .authorize_url(REDIRECT, &AuthorizeOptions::new())
        .unwrap();
    let verifier =
        arcgis_auth_core::ExposeSecret::expose_secret(sign_in.pkce_verifier()).to_owned();
    let shown = format!("{sign_in:?} {sign_in:#?}");
    assert!(
        !shown.contains(&verifier),
        "the PKCE verifier leaked: {shown}"
    );
}

#[test]
fn errors() {
    // Errors are built from answers and requests that carried secrets; none show them.
    let body = br#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#;
    let err = Error::from_arcgis_body(body).unwrap();
    let response = ArcGisErrorResponse::from_error(&err, Some(200));
    assert_no_secret(&format!("{err} {err:?} {response} {response:?}"));
    let parse = ArcGisTokenResponse::from_body(
        format!(r#"{{"access_token":"{ACCESS}","expires_in":-1,"refresh_token":"{REFRESH}"}}"#)
            .as_bytes(),
    )
    .unwrap_err();
    assert_no_secret(&format!("{parse} {parse:?}"));
}
