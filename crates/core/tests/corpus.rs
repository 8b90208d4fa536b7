//! A corpus of bad and odd answers. Every one must give a typed error, never a
//! panic and never a token, whichever way the request was sent: through
//! `oauth2` (client_credentials, refresh), through our own form posts
//! (exchange_refresh_token, revokeToken) and to generateToken.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use arcgis_auth_core::ErrorKind;
use common::*;
use wiremock::ResponseTemplate;

use ErrorKind::*;

struct Case {
    name: &'static str,
    response: fn() -> ResponseTemplate,
    /// The kind at the token endpoint.
    kind: ErrorKind,
}

fn raw(status: u16, body: &'static str, mime: &'static str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), mime)
}

const HTML_LOGIN: &str = "<!DOCTYPE html><html><head><title>Sign In</title></head><body><form action=\"/login\"></form></body></html>";

fn corpus() -> Vec<Case> {
    vec![
        Case {
            name: "html sign-in page, 200",
            response: || raw(200, HTML_LOGIN, "text/html; charset=utf-8"),
            kind: Server,
        },
        Case {
            name: "html page labelled json",
            response: || raw(200, HTML_LOGIN, "application/json"),
            kind: Server,
        },
        Case {
            name: "empty body, no content type",
            response: || ResponseTemplate::new(200),
            kind: UnparseableResponse,
        },
        Case {
            name: "empty body, json",
            response: || raw(200, "", "application/json"),
            kind: UnparseableResponse,
        },
        Case {
            name: "whitespace body",
            response: || raw(200, " \r\n\t ", "application/json"),
            kind: UnparseableResponse,
        },
        Case {
            name: "204 no content",
            response: || ResponseTemplate::new(204),
            kind: UnparseableResponse,
        },
        Case {
            name: "truncated json",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expi"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "truncated error json",
            response: || raw(200, r#"{"error":{"code":498,"mess"#, "application/json"),
            kind: UnparseableResponse,
        },
        Case {
            name: "expires_in as a string",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":"1800","token":"ACCESS-TOKEN-VALUE","expires":"1732203600000","success":"true"}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "negative expires_in",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":-1800,"token":"ACCESS-TOKEN-VALUE","expires":-1}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "huge expires_in",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":99999999999999999999999,"token":"ACCESS-TOKEN-VALUE","expires":99999999999999999999999}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "u64::MAX expires_in",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":18446744073709551615,"token":"ACCESS-TOKEN-VALUE","expires":18446744073709551615}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "zero expires_in",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":0,"token":"ACCESS-TOKEN-VALUE","expires":0}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "fractional expires_in",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":1800.5,"token":"ACCESS-TOKEN-VALUE","expires":1732203600000.5}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "missing access token",
            response: || {
                raw(
                    200,
                    r#"{"expires_in":1800,"expires":1732203600000}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "missing expiry",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","token":"ACCESS-TOKEN-VALUE"}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "null access token",
            response: || {
                raw(
                    200,
                    r#"{"access_token":null,"expires_in":1800,"token":null,"expires":1732203600000}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "numeric access token",
            response: || {
                raw(
                    200,
                    r#"{"access_token":12345,"expires_in":1800,"token":12345,"expires":1732203600000}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "empty access token",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"","expires_in":1800,"token":"","expires":1732203600000}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "ssl as a string",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":1800,"ssl":"yes","token":"ACCESS-TOKEN-VALUE","expires":1732203600000,"success":"yes"}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "refresh_token_expires_in as a string",
            response: || {
                raw(
                    200,
                    r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":1800,"refresh_token":"REFRESH-TOKEN-VALUE","refresh_token_expires_in":"1209599","token":"ACCESS-TOKEN-VALUE","expires":"soon"}"#,
                    "application/json",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "empty object",
            response: || raw(200, "{}", "application/json"),
            kind: UnparseableResponse,
        },
        Case {
            name: "json array",
            response: || raw(200, "[]", "application/json"),
            kind: UnparseableResponse,
        },
        Case {
            name: "json string",
            response: || raw(200, r#""ok""#, "application/json"),
            kind: UnparseableResponse,
        },
        Case {
            name: "json null",
            response: || raw(200, "null", "application/json"),
            kind: UnparseableResponse,
        },
        Case {
            name: "xml with a wrong content type",
            response: || {
                raw(
                    200,
                    "<?xml version=\"1.0\"?><token>x</token>",
                    "application/xml",
                )
            },
            kind: Server,
        },
        Case {
            name: "binary garbage",
            response: || {
                ResponseTemplate::new(200).set_body_raw(
                    vec![0xff, 0xfe, 0x00, 0x12, 0x80],
                    "application/octet-stream",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "plain text",
            response: || raw(200, "OK", "text/plain"),
            kind: UnparseableResponse,
        },
        Case {
            name: "302 to a login page",
            response: || {
                ResponseTemplate::new(302).insert_header(
                    "Location",
                    "https://idp.example.com/login?returnUrl=%2Fportal",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "301 to https",
            response: || {
                ResponseTemplate::new(301).insert_header(
                    "Location",
                    "https://gis.example.com/portal/sharing/rest/oauth2/token",
                )
            },
            kind: UnparseableResponse,
        },
        Case {
            name: "307 without location",
            response: || ResponseTemplate::new(307),
            kind: UnparseableResponse,
        },
        Case {
            name: "500 html outage page",
            response: || {
                raw(
                    500,
                    "<html><body><h1>500 Internal Server Error</h1></body></html>",
                    "text/html",
                )
            },
            kind: Server,
        },
        Case {
            name: "502 empty",
            response: || ResponseTemplate::new(502),
            kind: Server,
        },
        Case {
            name: "503 generic arcgis error",
            response: || {
                raw(
                    503,
                    r#"{"error":{"code":500,"message":"Unable to complete operation.","details":[]}}"#,
                    "application/json",
                )
            },
            kind: Server,
        },
        Case {
            name: "504 truncated json",
            response: || raw(504, r#"{"error":{"co"#, "application/json"),
            kind: Server,
        },
        Case {
            name: "429 with retry-after",
            response: || {
                raw(429, "Too Many Requests", "text/plain").insert_header("Retry-After", "30")
            },
            kind: RateLimited,
        },
        Case {
            name: "200 top-level billing code",
            response: || {
                raw(
                    200,
                    r#"{"code":500,"message":"Internal server error"}"#,
                    "application/json",
                )
            },
            kind: Server,
        },
        Case {
            name: "404 html",
            response: || raw(404, "<html>Not Found</html>", "text/html"),
            kind: InvalidUrl,
        },
        Case {
            name: "401 empty at the token endpoint",
            response: || ResponseTemplate::new(401),
            kind: InvalidClient,
        },
        Case {
            name: "top-level oauth invalid_grant",
            response: || {
                raw(
                    400,
                    r#"{"error":"invalid_grant","error_description":"Invalid authorization code"}"#,
                    "application/json",
                )
            },
            kind: InvalidGrant,
        },
        Case {
            name: "empty error object",
            response: || raw(200, r#"{"error":{}}"#, "application/json"),
            kind: ArcGis,
        },
        Case {
            name: "admin-style error",
            response: || {
                raw(
                    200,
                    r#"{"status":"error","messages":["Unauthorized access."],"code":403}"#,
                    "application/json",
                )
            },
            kind: Forbidden,
        },
        Case {
            name: "answer over 1 MiB",
            response: || {
                ResponseTemplate::new(200)
                    .set_body_raw(vec![b' '; 2 * 1024 * 1024], "application/json")
            },
            kind: UnparseableResponse,
        },
    ]
}

/// The kind a generateToken call (a service endpoint) reports for the same answer.
fn service_kind(case: &Case) -> ErrorKind {
    match case.kind {
        InvalidClient => TokenRequired,
        k => k,
    }
}

#[tokio::test]
async fn every_odd_answer_is_a_typed_error() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 25,
        "the corpus must hold at least 25 answers"
    );
    let h = harness().await;
    for case in &corpus {
        for grant in GRANTS {
            h.answer(grant.path(), (case.response)()).await;
            let e = grant.run(&h.client).await.unwrap_err();
            let want = if grant.at_token_endpoint() {
                case.kind
            } else {
                service_kind(case)
            };
            assert_eq!(e.kind(), want, "{grant:?} / {}: {e}", case.name);
            assert_no_secret(&format!("{e} {e:?}"));
        }
    }
}

#[tokio::test]
async fn broken_answers_never_echo_the_token_they_carry() {
    let h = harness().await;
    h.answer(
        TOKEN_PATH,
        raw(200, r#"{"access_token":"ACCESS-TOKEN-VALUE","expires_in":"1800","refresh_token":"REFRESH-TOKEN-VALUE"}"#, "application/json"),
    )
    .await;
    let e = h.client.client_credentials(None).await.unwrap_err();
    assert_eq!(e.kind(), UnparseableResponse);
    assert!(
        e.to_string().contains("expires_in"),
        "the message names the field: {e}"
    );
    let mut chain = format!("{e} {e:?}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        chain.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert_no_secret(&chain);
}
