//! User sign-in with the authorization code flow and PKCE, against a wiremock portal.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{arc_clock, clock, fake_portal, forms, http, map, portal, store, token_body};
use arcgis_auth_core::OOB_REDIRECT_URI;
use arcgis_auth_core::oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use arcgis_auth_core::{
    AuthorizeOptions, ErrorKind, Expiration, ExposeSecret, SecretString, Style,
};
use arcgis_auth_flows::signin::{PendingSignIn, UserSignIn};
use arcgis_auth_flows::{FlowErrorKind, TokenManager};
use arcgis_auth_storage::SessionKind;
use arcgis_auth_testkit::{Grant, LOOPBACK_REDIRECT_URI, PUBLIC_CLIENT_ID};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIRECT: &str = "http://127.0.0.1:8765/callback";

fn query(url: &url::Url) -> BTreeMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn callback_for(pending: &PendingSignIn, code: &str) -> String {
    format!(
        "{}?code={code}&state={}",
        pending.redirect_uri(),
        pending.state()
    )
}

async fn mount_code_exchange(server: &MockServer, access: &str, refresh: &str) {
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_body(access, Some((refresh, 1_209_599)))),
        )
        .mount(server)
        .await;
}

#[tokio::test]
async fn authorize_url_carries_every_parameter() {
    let server = MockServer::start().await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let options = AuthorizeOptions::new()
        .expiration(Expiration::minutes(20_160))
        .locale("fr")
        .style(Style::Dark);
    let pending = sign_in.begin(REDIRECT, &options).unwrap();

    let url = pending.url();
    assert_eq!(url.path(), "/sharing/rest/oauth2/authorize");
    let q = query(url);
    assert_eq!(q["client_id"], "my-app");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["expiration"], "20160");
    assert_eq!(q["locale"], "fr");
    assert_eq!(q["style"], "dark");
    assert_eq!(q["state"], pending.state());
    assert!(pending.state().len() >= 16, "state must be random and long");
    // base64url(sha256) without padding: 43 characters.
    assert_eq!(q["code_challenge"].len(), 43);
    // Two sign-ins never share a state or a challenge.
    let other = sign_in.begin(REDIRECT, &options).unwrap();
    assert_ne!(other.state(), pending.state());
    assert_ne!(query(other.url())["code_challenge"], q["code_challenge"]);
    // Nothing was sent.
    assert!(forms(&server).await.is_empty());
}

#[tokio::test]
async fn code_exchange_sends_the_verifier_of_the_challenge() {
    let server = MockServer::start().await;
    mount_code_exchange(&server, "AT-1", "RT-1").await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let pending = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();
    let challenge = query(pending.url())["code_challenge"].clone();

    let signed_in = sign_in
        .complete(&pending, &callback_for(&pending, "the-code"))
        .await
        .unwrap();

    let sent = forms(&server).await;
    assert_eq!(sent.len(), 1);
    let body = &sent[0];
    let verifier = body["code_verifier"].clone();
    assert_eq!(
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()))
            .as_str(),
        challenge,
        "the verifier sent must hash to the challenge in the URL"
    );
    assert_eq!(
        body,
        &map(&[
            ("grant_type", "authorization_code"),
            ("code", "the-code"),
            ("redirect_uri", REDIRECT),
            ("client_id", "my-app"),
            ("code_verifier", &verifier),
            ("f", "json"),
        ])
    );

    let token = signed_in.token();
    assert_eq!(token.access_token().expose_secret(), "AT-1");
    assert_eq!(token.username(), Some("jdoe"));
    let record = signed_in.record();
    assert_eq!(record.kind, SessionKind::User);
    assert_eq!(record.client_id.as_deref(), Some("my-app"));
    assert_eq!(record.redirect_uri.as_deref(), Some(REDIRECT));
    assert_eq!(
        record.refresh_token.as_ref().unwrap().expose_secret(),
        "RT-1"
    );
}

#[tokio::test]
async fn state_mismatch_is_typed_and_sends_nothing() {
    let server = MockServer::start().await;
    mount_code_exchange(&server, "AT-1", "RT-1").await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let pending = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();
    let stale = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();

    for callback in [
        // Another sign-in's state.
        callback_for(&stale, "code"),
        // No state.
        format!("{REDIRECT}?code=code"),
        // A prefix of the right state.
        format!("{REDIRECT}?code=code&state={}", &pending.state()[..8]),
        // The right state, twice (which one would the app have checked?).
        format!("code=code&state={0}&state={0}", pending.state()),
    ] {
        let err = sign_in.complete(&pending, &callback).await.unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::StateMismatch, "{callback}");
        assert!(err.message().contains("start the sign-in again"));
    }
    assert!(forms(&server).await.is_empty(), "nothing may be sent");
}

#[tokio::test]
async fn access_denied_and_other_errors_are_typed() {
    let server = MockServer::start().await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let pending = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();

    let denied = format!(
        "{REDIRECT}?error=access_denied&error_description=The+user+denied+your+request.&state={}",
        pending.state()
    );
    let err = sign_in.complete(&pending, &denied).await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
    assert!(err.message().contains("declined"), "{err}");
    assert!(err.message().contains("The user denied your request."));

    // A denial without a state is believed (the portal may leave it out).
    let err = sign_in
        .complete(&pending, "error=access_denied")
        .await
        .unwrap_err();
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));

    let invalid = format!(
        "?error=invalid_request&error_description=Invalid+redirect_uri&state={}",
        pending.state()
    );
    let err = sign_in.complete(&pending, &invalid).await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidRequest));
    assert!(err.message().contains("Invalid redirect_uri"));

    // The right state but no code.
    let err = sign_in
        .complete(&pending, &format!("state={}", pending.state()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
    assert!(forms(&server).await.is_empty());
}

#[tokio::test]
async fn redirect_uri_with_its_own_query_works() {
    let server = MockServer::start().await;
    mount_code_exchange(&server, "AT-1", "RT-1").await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let redirect = "https://app.example.com/cb?tenant=42&lang=en";
    let pending = sign_in.begin(redirect, &AuthorizeOptions::new()).unwrap();
    assert_eq!(query(pending.url())["redirect_uri"], redirect);

    // The portal appends code and state to the app's own parameters.
    let callback = format!(
        "https://app.example.com/cb?tenant=42&lang=en&code=c0de&state={}",
        pending.state()
    );
    sign_in.complete(&pending, &callback).await.unwrap();
    let sent = forms(&server).await;
    assert_eq!(
        sent[0]["redirect_uri"], redirect,
        "the exchange repeats it exactly"
    );
    assert_eq!(sent[0]["code"], "c0de");
}

#[tokio::test]
async fn the_query_string_alone_is_enough() {
    let server = MockServer::start().await;
    mount_code_exchange(&server, "AT-1", "RT-1").await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let pending = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();
    for callback in [
        format!("code=abc&state={}", pending.state()),
        format!("?code=abc&state={}", pending.state()),
    ] {
        sign_in.complete(&pending, &callback).await.unwrap();
    }
}

#[tokio::test]
async fn confidential_apps_send_their_secret_and_rejected_codes_are_typed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "error": {"code": 400, "error": "invalid_grant",
                      "error_description": "Invalid authorization code", "message": "Invalid authorization code", "details": []}
        })))
        .mount(&server)
        .await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http())
        .with_client_secret(SecretString::from("s3cret-of-the-app"));
    assert!(!format!("{sign_in:?}").contains("s3cret"));
    let pending = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();
    let err = sign_in
        .complete(&pending, &callback_for(&pending, "old-code"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidGrant));
    assert_eq!(
        forms(&server).await[0]["client_secret"],
        "s3cret-of-the-app"
    );
}

#[tokio::test]
async fn a_pending_sign_in_survives_serialisation_but_not_debug() {
    let server = MockServer::start().await;
    mount_code_exchange(&server, "AT-1", "RT-1").await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let pending = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();

    let json = serde_json::to_string(&pending).unwrap();
    let restored: PendingSignIn = serde_json::from_str(&json).unwrap();
    let debug = format!("{restored:?}");
    assert!(!debug.contains(restored.state()), "{debug}");
    assert!(!debug.contains("code_challenge"), "{debug}");

    sign_in
        .complete(&restored, &callback_for(&pending, "abc"))
        .await
        .unwrap();
    let verifier = forms(&server).await[0]["code_verifier"].clone();
    assert!(json.contains(&verifier), "the verifier is serialised");
    assert!(!debug.contains(&verifier));
}

#[tokio::test]
async fn a_pending_sign_in_of_another_app_is_refused() {
    let server = MockServer::start().await;
    let ours = UserSignIn::new(portal(&server), "my-app", http());
    let theirs = UserSignIn::new(portal(&server), "other-app", http());
    let pending = theirs.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();
    let err = ours
        .complete(&pending, &callback_for(&pending, "abc"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
    assert!(forms(&server).await.is_empty());
}

#[tokio::test]
async fn out_of_band_sign_in_with_a_pasted_code() {
    let server = MockServer::start().await;
    mount_code_exchange(&server, "AT-1", "RT-1").await;
    let sign_in = UserSignIn::new(portal(&server), "my-app", http());
    let pending = sign_in
        .begin(OOB_REDIRECT_URI, &AuthorizeOptions::new())
        .unwrap();
    assert!(pending.is_oob());
    assert_eq!(query(pending.url())["redirect_uri"], OOB_REDIRECT_URI);

    // The user pastes the approval page's title.
    let signed_in = sign_in
        .complete_oob(&pending, "SUCCESS code=KIV31WkDhY6XIWXmWAc6U\n")
        .await
        .unwrap();
    assert_eq!(
        signed_in.record().redirect_uri.as_deref(),
        Some(OOB_REDIRECT_URI)
    );
    let sent = forms(&server).await;
    assert_eq!(sent[0]["code"], "KIV31WkDhY6XIWXmWAc6U");
    assert_eq!(sent[0]["redirect_uri"], OOB_REDIRECT_URI);

    // Garbage, or a page without a code, is refused before anything is sent.
    let err = sign_in
        .complete_oob(&pending, "code with spaces")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
    let err = sign_in
        .complete_oob(&pending, "<html><title>Sign In</title></html>")
        .await
        .unwrap_err();
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
    assert_eq!(forms(&server).await.len(), 1);

    // A redirect sign-in cannot be completed out of band (its state would go unchecked).
    let redirect = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();
    let err = sign_in.complete_oob(&redirect, "abc").await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
}

#[tokio::test]
async fn the_manager_refreshes_then_exchanges_the_refresh_token() {
    let server = MockServer::start().await;
    let clock = clock();
    // The refresh token lives 25 hours: the first renewal refreshes, the
    // second (within 24 hours of its end) exchanges it.
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(token_body("AT-1", Some(("RT-1", 90_000)))),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body("AT-2", None)))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/sharing/rest/oauth2/token"))
        .and(body_string_contains("grant_type=exchange_refresh_token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(token_body("AT-3", Some(("RT-2", 1_209_599)))),
        )
        .mount(&server)
        .await;

    let sign_in = UserSignIn::new(portal(&server), "my-app", http()).with_clock(arc_clock(&clock));
    let pending = sign_in.begin(REDIRECT, &AuthorizeOptions::new()).unwrap();
    let store = store();
    let manager = sign_in
        .complete(&pending, &callback_for(&pending, "abc"))
        .await
        .unwrap()
        .into_manager(store.clone(), "user:jdoe")
        .await
        .unwrap();
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "AT-1"
    );

    clock.advance(Duration::from_secs(1800));
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "AT-2"
    );
    clock.advance(Duration::from_secs(1800));
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "AT-3"
    );

    let sent = forms(&server).await;
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[1],
        map(&[
            ("grant_type", "refresh_token"),
            ("client_id", "my-app"),
            ("refresh_token", "RT-1"),
            ("f", "json"),
        ])
    );
    assert_eq!(
        sent[2],
        map(&[
            ("grant_type", "exchange_refresh_token"),
            ("client_id", "my-app"),
            ("refresh_token", "RT-1"),
            ("redirect_uri", REDIRECT),
            ("f", "json"),
        ])
    );

    // The rotated refresh token is what the store holds; a manager rebuilt
    // from the store alone (a restart) serves the same token without a request.
    let stored = store.load("user:jdoe").await.unwrap().unwrap();
    assert_eq!(
        stored
            .record
            .refresh_token
            .as_ref()
            .unwrap()
            .expose_secret(),
        "RT-2"
    );
    let restarted = TokenManager::builder(sign_in.clone(), store, "user:jdoe")
        .clock(arc_clock(&clock))
        .build()
        .unwrap();
    assert_eq!(
        restarted.token().await.unwrap().secret().expose_secret(),
        "AT-3"
    );
    assert_eq!(forms(&server).await.len(), 3);
}

#[tokio::test]
async fn a_dead_refresh_token_asks_the_user_to_sign_in_again() {
    // A real (fake) portal: its clock runs three days ahead, so the 3-day
    // refresh token is dead there while this client still believes in it.
    let clock = clock();
    let kit = fake_portal(&clock).await;
    let sign_in =
        UserSignIn::new(kit.portal(), PUBLIC_CLIENT_ID, http()).with_clock(arc_clock(&clock));
    let options = AuthorizeOptions::new().expiration(Expiration::minutes(3 * 24 * 60));
    let pending = sign_in.begin(LOOPBACK_REDIRECT_URI, &options).unwrap();
    let callback = kit
        .authorize_redirect(pending.url().as_str())
        .await
        .unwrap();
    let manager = sign_in
        .complete(&pending, callback.as_str())
        .await
        .unwrap()
        .into_manager(store(), "user:jdoe")
        .await
        .unwrap();
    kit.advance_clock(Duration::from_secs(3 * 24 * 3600));
    clock.advance(Duration::from_secs(1800));

    let err = manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
    assert_eq!(err.arcgis_kind(), Some(ErrorKind::RefreshTokenExpired));
    assert!(err.message().contains("sign in again"), "{err}");
    // One request, not a retry loop; and the next call does not try again.
    assert_eq!(kit.calls().token(Grant::RefreshToken), 1);
    assert_eq!(
        manager.token().await.unwrap_err().kind(),
        FlowErrorKind::SignInRequired
    );
    assert_eq!(kit.calls().token(Grant::RefreshToken), 1);
}

#[tokio::test]
async fn a_remote_plain_http_portal_is_refused() {
    let remote = arcgis_auth_core::Portal::parse("http://gis.example.com/portal").unwrap();
    let err = UserSignIn::new(remote, "my-app", http())
        .begin(REDIRECT, &AuthorizeOptions::new())
        .unwrap_err();
    assert_eq!(
        err.kind(),
        FlowErrorKind::ArcGis(ErrorKind::InsecureTransport)
    );
    // A redirect URI that is not a URL is a typed error too.
    let server = MockServer::start().await;
    let err = UserSignIn::new(portal(&server), "my-app", http())
        .begin("not a url", &AuthorizeOptions::new())
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidUrl));
}
