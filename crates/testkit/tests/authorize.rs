//! `oauth2/authorize` and `oauth2/approval`, with plain reqwest.

mod common;

use arcgis_auth_testkit::{App, Endpoint, FakePortal, OOB_REDIRECT_URI, PUBLIC_CLIENT_ID};
use common::*;

#[tokio::test]
async fn code_flow_redirects_with_code_and_state_keeping_the_uri_query() {
    let portal = FakePortal::builder()
        .app(App::public("app").redirect_uri("https://app.example.com/cb?tenant=a%20b"))
        .user("jdoe", "pw")
        .start()
        .await;
    let location = authorize_location(
        &portal,
        &[
            ("client_id", "app"),
            ("response_type", "code"),
            ("redirect_uri", "https://app.example.com/cb?tenant=a%20b"),
            ("state", "xyz 123"),
        ],
    )
    .await;
    assert_eq!(location.host_str(), Some("app.example.com"));
    assert_eq!(location.path(), "/cb");
    assert_eq!(query(&location, "tenant").as_deref(), Some("a b"));
    assert_eq!(query(&location, "state").as_deref(), Some("xyz 123"));
    let code = query(&location, "code").unwrap();
    assert!(code.len() >= 16);
    assert_eq!(portal.calls().endpoint(Endpoint::Authorize), 1);
}

#[tokio::test]
async fn loopback_redirect_uri_matches_any_port_but_nothing_else() {
    let portal = FakePortal::start().await;
    for (uri, ok) in [
        ("http://127.0.0.1/callback", true),
        ("http://127.0.0.1:54321/callback", true),
        ("http://127.0.0.1:54321/callback/evil", false),
        ("http://127.0.0.1.evil.com/callback", false),
        ("https://127.0.0.1/callback", false),
    ] {
        let response = authorize_response(
            &portal,
            &[
                ("client_id", PUBLIC_CLIENT_ID),
                ("response_type", "code"),
                ("redirect_uri", uri),
            ],
        )
        .await;
        if ok {
            assert_eq!(response.status(), 302, "{uri}");
            let location = response.headers()["location"].to_str().unwrap();
            assert!(location.starts_with(uri), "{uri} -> {location}");
        } else {
            // Never redirected to an unregistered URI: the portal shows the error itself.
            assert_eq!(response.status(), 400, "{uri}");
            assert!(response.headers().get("location").is_none());
            let page = response.text().await.unwrap();
            assert!(page.contains("Invalid redirect_uri"), "{page}");
        }
    }
}

#[tokio::test]
async fn invalid_client_and_redirect_uri_errors_in_json_with_f_json() {
    let portal = FakePortal::start().await;
    let body: serde_json::Value = authorize_response(
        &portal,
        &[
            ("client_id", "nope"),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("f", "json"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error":{"code":400,"error":"invalid_client_id","error_description":"Invalid client_id","message":"Invalid client_id","details":[]}})
    );

    let response = authorize_response(
        &portal,
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example.com/cb"),
            ("f", "json"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["error"], "invalid_request");
    assert_eq!(body["error"]["error_description"], "Invalid redirect_uri");
}

#[tokio::test]
async fn denial_and_bad_parameters_go_back_to_the_app() {
    let portal = FakePortal::start().await;
    let base = [
        ("client_id", PUBLIC_CLIENT_ID),
        ("redirect_uri", "http://127.0.0.1:9000/callback"),
        ("state", "s1"),
    ];

    portal.deny_next_authorization();
    let mut params = base.to_vec();
    params.push(("response_type", "code"));
    let location = authorize_location(&portal, &params).await;
    assert_eq!(query(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        query(&location, "error_description").as_deref(),
        Some("The user denied your request.")
    );
    assert_eq!(query(&location, "state").as_deref(), Some("s1"));
    assert!(query(&location, "code").is_none());

    // Only the next one was denied.
    let location = authorize_location(&portal, &params).await;
    assert!(query(&location, "code").is_some());

    let mut bad = base.to_vec();
    bad.push(("response_type", "id_token"));
    let location = authorize_location(&portal, &bad).await;
    assert_eq!(
        query(&location, "error").as_deref(),
        Some("unsupported_response_type")
    );

    let mut bad = params.clone();
    bad.push(("code_challenge", "abc"));
    bad.push(("code_challenge_method", "S512"));
    let location = authorize_location(&portal, &bad).await;
    assert_eq!(
        query(&location, "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn oob_code_is_shown_in_the_approval_page_title() {
    let portal = FakePortal::start().await;
    let location = authorize_location(
        &portal,
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", OOB_REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(
        location.as_str().split('?').next().unwrap(),
        portal.url("oauth2/approval")
    );
    let code = query(&location, "code").unwrap();
    let page = client()
        .get(location.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("<title>SUCCESS code={code}</title>")),
        "{page}"
    );

    // The code works with the OOB redirect URI.
    let answer = token(
        &portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", PUBLIC_CLIENT_ID),
            ("code", &code),
            ("redirect_uri", OOB_REDIRECT_URI),
        ],
    )
    .await;
    assert!(answer["access_token"].is_string(), "{answer}");

    // An unknown code gets no SUCCESS title.
    let page = client()
        .get(with_query(
            &portal.url("oauth2/approval"),
            &[("code", "made-up")],
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("SUCCESS"));
}

#[tokio::test]
async fn oob_needs_registration() {
    let portal = FakePortal::builder()
        .app(App::public("web").redirect_uri("https://app.example.com/cb"))
        .user("jdoe", "pw")
        .start()
        .await;
    let response = authorize_response(
        &portal,
        &[
            ("client_id", "web"),
            ("response_type", "code"),
            ("redirect_uri", OOB_REDIRECT_URI),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn implicit_grant_answers_in_the_fragment() {
    let portal = FakePortal::start().await;
    let location = authorize_location(
        &portal,
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", "token"),
            ("redirect_uri", "http://127.0.0.1/callback"),
            ("state", "st"),
            ("expiration", "60"),
        ],
    )
    .await;
    assert!(location.query().is_none());
    let fragment: Vec<(String, String)> =
        url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let keys: Vec<&str> = fragment.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "username", "ssl", "state"]
    );
    assert_eq!(fragment[1].1, "3600");
    assert_eq!(fragment[2].1, "jdoe");
    assert_eq!(fragment[3].1, "false");
    assert_eq!(fragment[4].1, "st");

    // The implicit token is a portal token.
    let me = get_with_token(&portal.url("community/self"), Some(&fragment[0].1)).await;
    assert_eq!(me["username"], "jdoe");
}

#[tokio::test]
async fn nobody_signed_in_shows_the_sign_in_page_until_someone_is() {
    let portal = FakePortal::builder()
        .app(App::public("app").redirect_uri("http://127.0.0.1/cb"))
        .user("alice", "pw")
        .user("bob", "pw")
        .nobody_signed_in()
        .start()
        .await;
    let params = [
        ("client_id", "app"),
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1/cb"),
    ];
    let response = authorize_response(&portal, &params).await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<title>Sign In</title>")
    );

    portal.set_signed_in_user("bob").unwrap();
    let location = authorize_location(&portal, &params).await;
    let code = query(&location, "code").unwrap();
    let answer = token(
        &portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1/cb"),
        ],
    )
    .await;
    assert_eq!(answer["username"], "bob");

    portal.sign_out();
    let response = authorize_response(&portal, &params).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn added_redirect_uri_is_accepted() {
    let portal = FakePortal::start().await;
    portal
        .add_redirect_uri(PUBLIC_CLIENT_ID, "myapp://auth")
        .unwrap();
    let location = authorize_location(
        &portal,
        &[
            ("client_id", PUBLIC_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "myapp://auth"),
        ],
    )
    .await;
    assert_eq!(location.scheme(), "myapp");
    assert!(portal.add_redirect_uri("nope", "x:y").is_err());
}

/// The `(name, value)` pairs of the hidden inputs of an HTML form.
fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|rest| {
            let attr = |key: &str| {
                let start = rest.find(&format!("{key}=\"")).expect("attribute") + key.len() + 2;
                let end = start + rest[start..].find('"').expect("closing quote");
                rest[start..end]
                    .replace("&amp;", "&")
                    .replace("&quot;", "\"")
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

#[tokio::test]
async fn the_sign_in_form_checks_the_password_and_authorizes() {
    let portal = FakePortal::builder()
        .app(App::public("app").redirect_uri("http://127.0.0.1/cb"))
        .user("alice", "alice-pw")
        .nobody_signed_in()
        .start()
        .await;
    let (challenge, verifier) = pkce();
    let page = authorize_response(
        &portal,
        &[
            ("client_id", "app"),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1:7000/cb"),
            ("state", "a&b\"c"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(page.contains(&format!("action=\"{}\"", portal.url("oauth2/signin"))));
    let mut form = hidden_inputs(&page);
    assert_eq!(form.len(), 6, "{page}");
    assert!(form.contains(&("state".into(), "a&b\"c".into())));

    let submit = |form: Vec<(String, String)>| {
        client()
            .post(portal.url("oauth2/signin"))
            .form(&form)
            .send()
    };
    let mut wrong = form.clone();
    wrong.push(("username".into(), "alice".into()));
    wrong.push(("password".into(), "guess".into()));
    let again = submit(wrong).await.unwrap();
    assert_eq!(again.status(), 200);
    let again = again.text().await.unwrap();
    assert!(again.contains("Invalid username or password."));
    assert_eq!(hidden_inputs(&again), form);

    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "alice-pw".into()));
    let redirected = submit(form).await.unwrap();
    assert_eq!(redirected.status(), 302);
    let location = url::Url::parse(redirected.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(query(&location, "state").as_deref(), Some("a&b\"c"));
    let code = query(&location, "code").unwrap();
    let answer = token(
        &portal,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:7000/cb"),
            ("code_verifier", verifier.secret()),
        ],
    )
    .await;
    assert_eq!(answer["username"], "alice");
    assert_eq!(portal.calls().endpoint(Endpoint::SignIn), 2);
    // No session: the next authorize shows the form again.
    let page = authorize_response(
        &portal,
        &[
            ("client_id", "app"),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1/cb"),
        ],
    )
    .await;
    assert_eq!(page.status(), 200);
}
