//! Every grant against a wiremock portal on loopback: what is sent (pinned by
//! secret-free snapshots), what comes back, and every ArcGIS error body with
//! HTTP 200 and with a real status.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arcgis_auth_core::{
    AuthorizeOptions, ErrorKind, Expiration, ExposeSecret, GenerateTokenRequest, OAuthClient,
    Portal, SecretString, ServerRoot, Style, TokenBinding, TokenTypeHint,
};
use common::*;
use wiremock::ResponseTemplate;

#[tokio::test]
async fn authorization_code_with_pkce_and_secret() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, &user_token_body())).await;
    let token = h
        .client
        .exchange_code(
            &SecretString::from(CODE),
            Some(&SecretString::from(VERIFIER)),
            REDIRECT,
        )
        .await
        .unwrap();
    assert_eq!(token.access_token().expose_secret(), ACCESS);
    assert_eq!(token.expires_at(), T0 + Duration::from_secs(1800));
    assert_eq!(token.username(), Some("jdoe"));
    assert!(token.ssl());
    let rt = token.refresh_token().unwrap();
    assert_eq!(rt.secret().expose_secret(), format!("{REFRESH}-NEW"));
    assert_eq!(rt.expires_at(), Some(T0 + Duration::from_secs(1_209_599)));
    insta::assert_snapshot!(
        "authorization_code_confidential",
        h.only_request_form().await
    );
}

#[tokio::test]
async fn authorization_code_public_client() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, &user_token_body())).await;
    Grant::Code.run(&h.public_client()).await.unwrap();
    insta::assert_snapshot!("authorization_code_public", h.only_request_form().await);
}

#[tokio::test]
async fn client_credentials_with_expiration() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, &access_only_body(86400)))
        .await;
    let token = h
        .client
        .client_credentials(Some(Expiration::minutes(1440)))
        .await
        .unwrap();
    assert_eq!(token.expires_at(), T0 + Duration::from_secs(86400));
    assert!(token.username().is_none());
    assert!(token.refresh_token().is_none());
    insta::assert_snapshot!("client_credentials", h.only_request_form().await);
}

#[tokio::test]
async fn client_credentials_refuses_bad_input_before_sending() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, &user_token_body())).await;
    let e = h
        .public_client()
        .client_credentials(None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .client
        .client_credentials(Some(Expiration::minutes(20_161)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .client
        .client_credentials(Some(Expiration::MAXIMUM))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .client
        .exchange_code(
            &SecretString::from(CODE),
            Some(&SecretString::from("short")),
            REDIRECT,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = h
        .client
        .exchange_code(&SecretString::from(CODE), None, "not a url")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidUrl);
    assert!(h.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn refresh_token_carries_the_refresh_token_over() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, &access_only_body(1800)))
        .await;
    h.clock.advance(Duration::from_secs(600));
    let token = h.public_client().refresh(&refresh_token()).await.unwrap();
    assert_eq!(
        token.expires_at(),
        T0 + Duration::from_secs(600) + Duration::from_secs(1800)
    );
    assert_eq!(
        token.refresh_token().unwrap().secret().expose_secret(),
        REFRESH
    );
    insta::assert_snapshot!("refresh_token", h.only_request_form().await);
}

#[tokio::test]
async fn exchange_refresh_token_returns_a_new_refresh_token() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, &user_token_body())).await;
    let token = h
        .public_client()
        .exchange_refresh_token(&refresh_token(), REDIRECT)
        .await
        .unwrap();
    assert_eq!(
        token.refresh_token().unwrap().secret().expose_secret(),
        format!("{REFRESH}-NEW")
    );
    insta::assert_snapshot!("exchange_refresh_token", h.only_request_form().await);
}

#[tokio::test]
async fn exchange_refresh_token_without_a_new_refresh_token_is_an_error() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, &access_only_body(1800)))
        .await;
    let e = h
        .public_client()
        .exchange_refresh_token(&refresh_token(), REDIRECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnparseableResponse);
    assert_no_secret(&format!("{e} {e:?}"));
}

fn generate_body() -> String {
    format!(
        r#"{{"token":"{ACCESS}","expires":{},"ssl":true}}"#,
        T0.as_unix_millis() + 3_600_000
    )
}

#[tokio::test]
async fn generate_token_with_password_and_each_binding() {
    let h = harness().await;
    let bindings = [
        (
            "generate_token_referer",
            TokenBinding::Referer("https://app.example.com".into()),
        ),
        (
            "generate_token_ip",
            TokenBinding::Ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        ),
        ("generate_token_requestip", TokenBinding::RequestIp),
    ];
    for (name, binding) in bindings {
        h.answer(GENERATE_PATH, json(200, &generate_body())).await;
        let request = GenerateTokenRequest::password("jdoe", SecretString::from(PASSWORD), binding)
            .with_expiration(Expiration::minutes(90));
        let token = h.client.generate_token(&request).await.unwrap();
        assert_eq!(token.expires_at(), T0 + Duration::from_secs(3600));
        assert!(token.ssl());
        assert_eq!(token.access_token().expose_secret(), ACCESS);
        insta::assert_snapshot!(name, h.only_request_form().await);
    }
}

/// The refusals ArcGIS sends without an OAuth `error` name (recorded answers:
/// a portal's and a standalone server's `generateToken`), with HTTP 200 and
/// with their real statuses: each is `InvalidGrant`, a rejected credential,
/// never a generic or transient error, so nothing sends the password again.
#[tokio::test]
async fn refused_passwords_are_invalid_grant_whatever_the_shape() {
    let h = harness().await;
    let refusals = [
        (
            400,
            r#"{"error":{"code":400,"message":"Unable to generate token.","details":["Invalid username or password."]}}"#,
        ),
        (
            401,
            r#"{"error":{"code":401,"message":"You are not authorized to access this information","details":["Invalid credentials"]}}"#,
        ),
    ];
    for (real_status, body) in refusals {
        for status in [200, real_status] {
            h.answer(GENERATE_PATH, json(status, body)).await;
            let request = GenerateTokenRequest::password(
                "jdoe",
                SecretString::from(PASSWORD),
                TokenBinding::Referer("https://app.example.com".into()),
            );
            let e = h.client.generate_token(&request).await.unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidGrant,
                "HTTP {status} {body}: {e}"
            );
            assert!(!e.kind().is_transient());
            assert_no_secret(&format!("{e} {e:?}"));
        }
    }
    // Another 400 of generateToken stays what it was.
    h.answer(
        GENERATE_PATH,
        json(200, r#"{"error":{"code":400,"message":"Unable to generate token.","details":["'username' must be specified."]}}"#),
    )
    .await;
    let request = GenerateTokenRequest::password(
        "jdoe",
        SecretString::from(PASSWORD),
        TokenBinding::Referer("https://app.example.com".into()),
    );
    let e = h.client.generate_token(&request).await.unwrap_err();
    assert_ne!(e.kind(), ErrorKind::InvalidGrant, "{e}");
}

#[tokio::test]
async fn generate_token_for_a_federated_server() {
    let h = harness().await;
    h.answer(GENERATE_PATH, json(200, &generate_body())).await;
    let server =
        ServerRoot::parse("https://gis.example.com/server/rest/services/Roads/MapServer").unwrap();
    let request = GenerateTokenRequest::federated(SecretString::from(ACCESS), &server);
    h.client.generate_token(&request).await.unwrap();
    insta::assert_snapshot!("generate_token_federated", h.only_request_form().await);
}

#[tokio::test]
async fn revocation_reads_the_body() {
    let h = harness().await;
    h.answer(REVOKE_PATH, json(200, r#"{"success":true}"#))
        .await;
    h.public_client()
        .revoke(&SecretString::from(REFRESH), TokenTypeHint::RefreshToken)
        .await
        .unwrap();
    insta::assert_snapshot!("revoke_token", h.only_request_form().await);

    h.answer(REVOKE_PATH, json(200, r#"{"success":false}"#))
        .await;
    let e = h
        .public_client()
        .revoke(&SecretString::from(ACCESS), TokenTypeHint::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArcGis);

    // oauth2 would have called this a success: the status is 200.
    h.answer(REVOKE_PATH, json(200, WIRE_ERRORS[1].2)).await;
    let e = h
        .public_client()
        .revoke(&SecretString::from(ACCESS), TokenTypeHint::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidClient);
}

#[test]
fn authorize_url_parameters() {
    let portal = Portal::parse("https://gis.example.com/portal").unwrap();
    let client = OAuthClient::new(portal, CLIENT_ID, http());
    let options = AuthorizeOptions::new()
        .expiration(Expiration::MAXIMUM)
        .locale("fr")
        .style(Style::Dark);
    let sign_in = client.authorize_url(REDIRECT, &options).unwrap();
    let url = sign_in.url();
    assert_eq!(
        url.as_str().split('?').next(),
        Some("https://gis.example.com/portal/sharing/rest/oauth2/authorize")
    );
    // The challenge is S256 of the verifier.
    let challenge = url
        .query_pairs()
        .find(|(k, _)| k == "code_challenge")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let again = oauth2::PkceCodeChallenge::from_code_verifier_sha256(
        &oauth2::PkceCodeVerifier::new(sign_in.pkce_verifier().expose_secret().to_owned()),
    );
    assert_eq!(challenge, again.as_str());
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(state, sign_in.state());
    let lines: String = url
        .query_pairs()
        .map(|(k, v)| match k.as_ref() {
            "state" | "code_challenge" => format!("{k}=[RANDOM]\n"),
            _ => format!("{k}={v}\n"),
        })
        .collect();
    insta::assert_snapshot!("authorize_url", lines);

    // A second sign-in gets fresh randomness.
    let other = client
        .authorize_url(REDIRECT, &AuthorizeOptions::new())
        .unwrap();
    assert_ne!(other.state(), sign_in.state());
    assert!(other.url().query_pairs().all(|(k, _)| k != "expiration"));
    // Out-of-range refresh lifetime is refused.
    let e = client
        .authorize_url(
            REDIRECT,
            &AuthorizeOptions::new().expiration(Expiration::minutes(129_601)),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn code_from_redirect() {
    let portal = Portal::parse("https://gis.example.com/portal").unwrap();
    let client = OAuthClient::new(portal, CLIENT_ID, http());
    let sign_in = client
        .authorize_url(REDIRECT, &AuthorizeOptions::new())
        .unwrap();
    let back = |q: &str| url::Url::parse(&format!("{REDIRECT}?{q}")).unwrap();
    let state = sign_in.state().to_owned();

    let code = sign_in
        .code_from_redirect(&back(&format!("code={CODE}&state={state}")))
        .unwrap();
    assert_eq!(code.expose_secret(), CODE);

    let denied = sign_in
        .code_from_redirect(&back(&format!(
            "error=access_denied&error_description=The+user+denied&state={state}"
        )))
        .unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::AccessDenied);
    assert!(denied.kind().needs_sign_in());

    for (bad, kind) in [
        (
            format!("code={CODE}&state=forged"),
            ErrorKind::StateMismatch,
        ),
        (format!("code={CODE}"), ErrorKind::StateMismatch),
        (format!("state={state}"), ErrorKind::InvalidRequest),
        (format!("code=&state={state}"), ErrorKind::InvalidRequest),
    ] {
        let e = sign_in.code_from_redirect(&back(&bad)).unwrap_err();
        assert_eq!(e.kind(), kind, "{bad}");
        assert_no_secret(&format!("{e} {e:?}"));
    }
}

fn expected_kind(name: &str, token_endpoint: bool) -> ErrorKind {
    match name {
        "invalid_redirect_uri" => ErrorKind::InvalidRequest,
        "invalid_client_id" => ErrorKind::InvalidClient,
        "refresh_token_expired" | "invalid_token" if token_endpoint => {
            ErrorKind::RefreshTokenExpired
        }
        "refresh_token_expired" | "invalid_token" => ErrorKind::InvalidToken,
        "token_required" => ErrorKind::TokenRequired,
        "forbidden" => ErrorKind::Forbidden,
        other => panic!("unknown case {other}"),
    }
}

#[tokio::test]
async fn every_wire_error_with_http_200_and_with_real_statuses() {
    let h = harness().await;
    for grant in GRANTS {
        for (name, real_status, body) in WIRE_ERRORS {
            for status in [200, *real_status] {
                h.answer(grant.path(), json(status, body)).await;
                let e = grant.run(&h.client).await.unwrap_err();
                let want = expected_kind(name, grant.at_token_endpoint());
                assert_eq!(e.kind(), want, "{grant:?} {name} HTTP {status}: {e}");
                let arcgis = e.arcgis().expect("the ArcGIS body is kept");
                assert!(arcgis.code.is_some());
                assert_no_secret(&format!("{e} {e:?}"));
            }
        }
    }
}

#[tokio::test]
async fn messages_say_what_to_do() {
    let h = harness().await;
    h.answer(TOKEN_PATH, json(200, WIRE_ERRORS[2].2)).await;
    let e = h.client.refresh(&refresh_token()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RefreshTokenExpired);
    assert!(e.kind().needs_sign_in());
    assert!(e.to_string().contains("sign in again"), "{e}");
    assert!(e.to_string().contains("refresh_token expired"), "{e}");

    h.answer(GENERATE_PATH, json(200, WIRE_ERRORS[3].2)).await;
    let server = ServerRoot::parse("https://gis.example.com/server").unwrap();
    let e = h
        .client
        .generate_token(&GenerateTokenRequest::federated(
            SecretString::from(ACCESS),
            &server,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidToken);
    assert!(e.to_string().contains("retry once"), "{e}");
}

#[tokio::test]
async fn transport_failure_is_typed() {
    // A loopback port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let portal = Portal::parse(&format!("http://127.0.0.1:{port}/portal")).unwrap();
    let client = OAuthClient::new(portal, CLIENT_ID, http())
        .with_client_secret(SecretString::from(CLIENT_SECRET));
    let e = client.client_credentials(None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert!(e.kind().is_transient());
    let e = client
        .exchange_refresh_token(&refresh_token(), REDIRECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert_no_secret(&format!("{e} {e:?}"));
}

#[tokio::test]
async fn slow_answers_time_out_as_transport_errors() {
    let h = harness().await;
    h.answer(
        TOKEN_PATH,
        json(200, &user_token_body()).set_delay(Duration::from_secs(5)),
    )
    .await;
    let http = arcgis_auth_core::HttpClient::from_builder(
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let client = OAuthClient::new(h.portal.clone(), CLIENT_ID, http);
    let e = client.refresh(&refresh_token()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transport);
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_before_sending() {
    // No server exists at this address; if anything were sent, the error would
    // be a transport error, not InsecureTransport.
    let portal = Portal::parse("http://gis.example.com/portal").unwrap();
    let client = OAuthClient::new(portal, CLIENT_ID, http())
        .with_client_secret(SecretString::from(CLIENT_SECRET));
    let mut results = Vec::new();
    for grant in GRANTS {
        results.push(grant.run(&client).await);
    }
    results.push(
        client
            .authorize_url(REDIRECT, &AuthorizeOptions::new())
            .map(drop),
    );
    for r in results {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InsecureTransport, "{e}");
        assert!(e.to_string().contains("https://"), "{e}");
        assert_no_secret(&format!("{e} {e:?}"));
    }
    // generateToken at a standalone server over plain http, too.
    let url = url::Url::parse("http://gis.example.com/server/tokens/generateToken").unwrap();
    let e = GenerateTokenRequest::password(
        "jdoe",
        SecretString::from(PASSWORD),
        TokenBinding::RequestIp,
    )
    .send(&http(), &url, &arcgis_auth_core::SystemClock)
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InsecureTransport);
}

#[tokio::test]
async fn text_plain_json_is_accepted() {
    // ArcGIS often labels JSON as text/plain; oauth2 alone would refuse it.
    let h = harness().await;
    h.answer(
        TOKEN_PATH,
        ResponseTemplate::new(200)
            .set_body_raw(user_token_body().into_bytes(), "text/plain;charset=utf-8"),
    )
    .await;
    h.client.refresh(&refresh_token()).await.unwrap();
}

#[tokio::test]
async fn raw_oauth2_sees_server_response_with_our_error_type() {
    let h = harness().await;
    // HTTP 200 with an error body: plain oauth2 would call this a parse error.
    h.answer(TOKEN_PATH, json(200, WIRE_ERRORS[3].2)).await;
    let rt = oauth2::RefreshToken::new(REFRESH.to_owned());
    let result = h
        .client
        .oauth2_client()
        .exchange_refresh_token(&rt)
        .add_extra_param("f", "json")
        .request_async(h.client.http())
        .await;
    match result {
        Err(oauth2::RequestTokenError::ServerResponse(r)) => {
            assert_eq!(r.kind(), ErrorKind::RefreshTokenExpired);
            assert_eq!(r.status(), Some(200));
            assert_eq!(r.arcgis().and_then(|a| a.code), Some(498));
        }
        other => panic!("expected ServerResponse, got {other:?}"),
    }

    // And a success through the same client is our token response type.
    h.answer(TOKEN_PATH, json(200, &user_token_body())).await;
    let response = h
        .client
        .oauth2_client()
        .exchange_refresh_token(&rt)
        .request_async(h.client.http())
        .await
        .unwrap();
    use oauth2::TokenResponse;
    assert_eq!(
        response.token_type(),
        &oauth2::basic::BasicTokenType::Bearer
    );
    assert_eq!(response.expires_in(), Some(Duration::from_secs(1800)));
    assert_eq!(response.username(), Some("jdoe"));
}

/// Flows spawn these futures on a multi-threaded runtime and share clients.
#[test]
fn futures_and_clients_are_send_and_sync() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync + Clone + 'static>() {}
    send_sync::<OAuthClient>();
    send_sync::<arcgis_auth_core::HttpClient>();
    send_sync::<arcgis_auth_core::Error>();
    send_sync::<arcgis_auth_core::Token>();
    send_sync::<GenerateTokenRequest>();
    let client = OAuthClient::new(Portal::arcgis_online(), CLIENT_ID, http());
    let rt = refresh_token();
    let code = SecretString::from(CODE);
    send(&client.refresh(&rt));
    send(&client.exchange_refresh_token(&rt, REDIRECT));
    send(&client.exchange_code(&code, None, REDIRECT));
    send(&client.client_credentials(None));
    send(&client.revoke(&code, TokenTypeHint::AccessToken));
    let request = GenerateTokenRequest::password("u", code.clone(), TokenBinding::RequestIp);
    send(&client.generate_token(&request));
}

#[tokio::test]
async fn server_info_over_the_wire() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer};
    let server = MockServer::start().await;
    let portal_url = format!("{}/portal", server.uri());
    Mock::given(method("GET"))
        .and(path("/arcgis/rest/info"))
        .and(query_param("f", "json"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!(
                r#"{{"currentVersion":11.3,"owningSystemUrl":"{portal_url}","authInfo":{{"isTokenBasedSecurity":true,"tokenServicesUrl":"{portal_url}/sharing/rest/generateToken","shortLivedTokenValidity":60}}}}"#
            ),
            "text/plain;charset=utf-8",
        ))
        .mount(&server)
        .await;
    let root = ServerRoot::parse(&format!(
        "{}/arcgis/rest/services/A/MapServer",
        server.uri()
    ))
    .unwrap();
    let info = http().server_info(&root).await.unwrap();
    assert!(info.is_federated_with(&Portal::parse(&portal_url).unwrap()));
    assert_eq!(info.current_version(), Some("11.3"));
    assert_eq!(info.short_lived_token_validity_minutes(), Some(60));
    let requests = server.received_requests().await.unwrap();
    assert!(requests[0].headers.get("authorization").is_none());

    // An error answered with HTTP 200 is an error here too.
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(json(200, WIRE_ERRORS[4].2))
        .mount(&server)
        .await;
    let e = http().server_info(&root).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TokenRequired);
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let h = harness().await;
    for grant in [
        Grant::ClientCredentials,
        Grant::Exchange,
        Grant::GeneratePassword,
    ] {
        h.answer(
            grant.path(),
            ResponseTemplate::new(429).insert_header("Retry-After", "30"),
        )
        .await;
        let e = grant.run(&h.client).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{grant:?}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(30)), "{grant:?}");

        h.answer(
            grant.path(),
            ResponseTemplate::new(503).insert_header("Retry-After", "999999"),
        )
        .await;
        let e = grant.run(&h.client).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{grant:?}");
        assert_eq!(
            e.retry_after(),
            Some(Duration::from_secs(3600)),
            "{grant:?}"
        );

        // An HTTP-date is a wait from the client's clock (T0 here, long
        // before the machine's real time): 90 s, not 0. A date already past:
        // retry at once. A date days away: an hour.
        for (status, kind, date, wait) in [
            (503, ErrorKind::Server, T0 + Duration::from_secs(90), 90),
            (429, ErrorKind::RateLimited, T0 - Duration::from_secs(5), 0),
            (
                429,
                ErrorKind::RateLimited,
                T0 + Duration::from_secs(3 * 86_400),
                3600,
            ),
        ] {
            let date = httpdate::fmt_http_date(date.to_system_time());
            h.answer(
                grant.path(),
                ResponseTemplate::new(status).insert_header("Retry-After", date.as_str()),
            )
            .await;
            let e = grant.run(&h.client).await.unwrap_err();
            assert_eq!(e.kind(), kind, "{grant:?}");
            assert_eq!(
                e.retry_after(),
                Some(Duration::from_secs(wait)),
                "{grant:?} {date}"
            );
        }

        // Not transient: no retry hint even if the header is there.
        h.answer(
            grant.path(),
            json(200, WIRE_ERRORS[1].2).insert_header("Retry-After", "30"),
        )
        .await;
        let e = grant.run(&h.client).await.unwrap_err();
        assert_eq!(e.retry_after(), None, "{grant:?}");
    }
}

#[test]
fn implicit_flow() {
    let portal = Portal::parse("https://gis.example.com/portal").unwrap();
    let client = OAuthClient::new(portal, CLIENT_ID, http());
    let sign_in = client
        .authorize_url_implicit(
            REDIRECT,
            &AuthorizeOptions::new().expiration(Expiration::minutes(240)),
        )
        .unwrap();
    let lines: String = sign_in
        .url()
        .query_pairs()
        .map(|(k, v)| match k.as_ref() {
            "state" => format!("{k}=[RANDOM]\n"),
            _ => format!("{k}={v}\n"),
        })
        .collect();
    insta::assert_snapshot!("authorize_url_implicit", lines);
    assert!(arcgis_auth_core::ExposeSecret::expose_secret(sign_in.pkce_verifier()).is_empty());
    // -1 is for refresh tokens only.
    let e = client
        .authorize_url_implicit(
            REDIRECT,
            &AuthorizeOptions::new().expiration(Expiration::MAXIMUM),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);

    let state = sign_in.state().to_owned();
    let back = |f: &str| url::Url::parse(&format!("{REDIRECT}#{f}")).unwrap();
    let token = sign_in
        .token_from_implicit_redirect(
            &back(&format!(
                "access_token={ACCESS}&expires_in=7200&username=jdoe&ssl=true&state={state}"
            )),
            T0,
        )
        .unwrap();
    assert_eq!(token.access_token().expose_secret(), ACCESS);
    assert_eq!(token.expires_at(), T0 + Duration::from_secs(7200));
    assert_eq!(token.username(), Some("jdoe"));
    assert!(token.ssl());
    assert!(token.refresh_token().is_none());

    for (fragment, kind) in [
        (
            format!("access_token={ACCESS}&expires_in=7200&state=forged"),
            ErrorKind::StateMismatch,
        ),
        (
            format!("error=access_denied&state={state}"),
            ErrorKind::AccessDenied,
        ),
        (
            format!("expires_in=7200&state={state}"),
            ErrorKind::UnparseableResponse,
        ),
        (
            format!("access_token={ACCESS}&expires_in=-1&state={state}"),
            ErrorKind::UnparseableResponse,
        ),
        (
            format!("access_token={ACCESS}&expires_in=99999999999&state={state}"),
            ErrorKind::UnparseableResponse,
        ),
        (
            format!("access_token={ACCESS}&state={state}"),
            ErrorKind::UnparseableResponse,
        ),
        (
            format!("access_token={ACCESS}&expires_in=60&ssl=maybe&state={state}"),
            ErrorKind::UnparseableResponse,
        ),
    ] {
        let e = sign_in
            .token_from_implicit_redirect(&back(&fragment), T0)
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{fragment}");
        assert_no_secret(&format!("{e} {e:?}"));
    }
    // The token never arrives in the query of an implicit redirect.
    let query = url::Url::parse(&format!(
        "{REDIRECT}?access_token={ACCESS}&expires_in=60&state={state}"
    ))
    .unwrap();
    assert!(sign_in.token_from_implicit_redirect(&query, T0).is_err());
}
