//! `HttpClient::probe_portal` / `probe_server`: how a portal is secured, read
//! from an answer to a request sent without credentials, against loopback
//! wiremock servers; and the errors a missing web-tier credential gives.
#![allow(clippy::unwrap_used)]

use arcgis_auth_core::{ErrorKind, HttpClient, Portal, ServerRoot, SignInMethod, WebTierScheme};
use url::Url;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn portal_answering(answer: ResponseTemplate) -> (MockServer, Portal) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/portal/sharing/rest/info"))
        .and(query_param("f", "json"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let portal = Portal::parse(&format!("{}/portal", server.uri())).unwrap();
    (server, portal)
}

fn no_credential_sent(requests: &[wiremock::Request]) {
    assert!(!requests.is_empty());
    for r in requests {
        for h in ["authorization", "x-esri-authorization", "cookie"] {
            assert!(!r.headers.contains_key(h), "{h} sent to {}", r.url);
        }
        assert!(r.url.query().is_none_or(|q| !q.contains("token")));
    }
}

#[tokio::test]
async fn a_basic_web_tier_is_recognised_and_named() {
    let (server, portal) = portal_answering(
        ResponseTemplate::new(401)
            .append_header("www-authenticate", "Negotiate")
            .append_header("www-authenticate", r#"Basic realm="GIS Directory""#)
            .set_body_string("<html>401 Unauthorized</html>"),
    )
    .await;
    let http = HttpClient::new().unwrap();
    let security = http.probe_portal(&portal).await.unwrap();
    assert!(!security.is_token_based());
    assert_eq!(
        security.web_tier(),
        [
            WebTierScheme::Negotiate,
            WebTierScheme::Basic {
                realm: Some("GIS Directory".into())
            }
        ]
    );
    assert_eq!(
        security.sign_ins(),
        vec![SignInMethod::Kerberos, SignInMethod::Basic]
    );
    no_credential_sent(&server.received_requests().await.unwrap());

    // Any other call to that portal says which credential is missing.
    let info = Url::parse(&format!("{}/portal/sharing/rest/info", server.uri())).unwrap();
    let err = http.get_json(&info, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WebTierCredentialRequired);
    assert!(err.to_string().contains("login basic"), "{err}");
}

#[tokio::test]
async fn token_based_and_not_token_based_info() {
    let (_s, portal) = portal_answering(ResponseTemplate::new(200).set_body_raw(
        r#"{"owningSystemUrl":"x","authInfo":{"isTokenBasedSecurity":true}}"#,
        "text/plain",
    ))
    .await;
    let security = HttpClient::new()
        .unwrap()
        .probe_portal(&portal)
        .await
        .unwrap();
    assert!(security.is_token_based());
    assert_eq!(
        security.sign_ins(),
        vec![SignInMethod::OAuth, SignInMethod::Password]
    );

    let (_s, portal) = portal_answering(ResponseTemplate::new(200).set_body_raw(
        r#"{"authInfo":{"isTokenBasedSecurity":false}}"#,
        "application/json",
    ))
    .await;
    let security = HttpClient::new()
        .unwrap()
        .probe_portal(&portal)
        .await
        .unwrap();
    assert_eq!(security.web_tier(), [WebTierScheme::Unspecified]);
}

#[tokio::test]
async fn a_server_is_probed_at_rest_info() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/server/rest/info"))
        .respond_with(ResponseTemplate::new(403).set_body_string("403.7 Forbidden"))
        .mount(&server)
        .await;
    let root = ServerRoot::parse(&format!("{}/server/rest/services", server.uri())).unwrap();
    let security = HttpClient::new()
        .unwrap()
        .probe_server(&root)
        .await
        .unwrap();
    assert_eq!(security.sign_ins(), vec![SignInMethod::ClientCertificate]);
    no_credential_sent(&server.received_requests().await.unwrap());
}

#[tokio::test]
async fn outages_are_errors_not_answers() {
    let (_s, portal) = portal_answering(ResponseTemplate::new(503)).await;
    let err = HttpClient::new()
        .unwrap()
        .probe_portal(&portal)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
}
