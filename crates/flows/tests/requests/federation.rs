//! Federated and standalone servers: discovery, server tokens, caching,
//! persistence, and dropping server tokens when the portal token changes.

use std::time::Duration;

use super::support::*;
use arcgis_auth_core::{Clock, ExposeSecret, HttpClient, ServerRoot};
use arcgis_auth_flows::Renewal;
use arcgis_auth_flows::federation::{Credential, Federation, FederationConfig};
use arcgis_auth_flows::middleware::{ArcGisAuth, flow_error};
use arcgis_auth_flows::routing::{ServerCredentials, TokenRouting};
use arcgis_auth_storage::{SaveMode, SessionKind, SessionStore};
use reqwest_middleware::ClientWithMiddleware;
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const GENERATE: &str = "/portal/sharing/rest/generateToken";
const SERVICE: &str = "/server/rest/services/Roads/MapServer";

fn ok_json() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(r#"{"ok":true}"#, "application/json")
}

fn info(owner: Option<&str>) -> ResponseTemplate {
    let mut body = json!({
        "currentVersion": 11.1,
        "authInfo": {"isTokenBasedSecurity": true, "shortLivedTokenValidity": 60}
    });
    if let Some(owner) = owner {
        body["owningSystemUrl"] = json!(owner);
    }
    ResponseTemplate::new(200).set_body_raw(body.to_string(), "text/plain;charset=utf-8")
}

/// A portal whose generateToken hands out server-1, server-2, ... and
/// records which portal token each request carried.
async fn mount_generate_token(portal_server: &MockServer, session: &Session) {
    let clock = session.clock.clone();
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path(GENERATE))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            ResponseTemplate::new(200)
                .set_body_json(generate_token_answer(&format!("server-{n}"), clock.now()))
        })
        .mount(portal_server)
        .await;
}

async fn generate_requests(portal_server: &MockServer) -> Vec<Request> {
    portal_server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == GENERATE)
        .collect()
}

fn form_value(request: &Request, key: &str) -> Option<String> {
    url::form_urlencoded::parse(&request.body)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn client(session: &Session, routing: TokenRouting) -> (ClientWithMiddleware, Federation) {
    let federation = Federation::new(session.manager.clone(), routing, HttpClient::new().unwrap());
    let client = ArcGisAuth::from_federation(federation.clone())
        .into_client()
        .unwrap();
    (client, federation)
}

#[tokio::test]
async fn a_federated_server_gets_its_own_token_cached_and_stored() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    // Federated with "http://host/portal/" (trailing slash): ArcGIS is tolerant, so are we.
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal/", portal_server.uri()))))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(SERVICE))
        .and(header("x-esri-authorization", "Bearer server-1"))
        .respond_with(ok_json())
        .expect(3)
        .mount(&server)
        .await;
    let (client, _) = client(&session, TokenRouting::new(portal));
    for _ in 0..3 {
        let r = client
            .get(format!("{}{SERVICE}?f=json", server.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let generated = generate_requests(&portal_server).await;
    assert_eq!(generated.len(), 1, "one server token for three requests");
    assert_eq!(
        form_value(&generated[0], "token").as_deref(),
        Some("token-0")
    );
    assert_eq!(
        form_value(&generated[0], "serverUrl").as_deref(),
        Some(format!("{}/server", server.uri()).as_str())
    );
    // Persisted in the session record.
    let stored = session.store.load(KEY).await.unwrap().unwrap().record;
    let root = format!("{}/server", server.uri());
    assert_eq!(
        stored.server_tokens[&root].token.expose_secret(),
        "server-1",
        "{stored:?}"
    );
    assert_no_token_in_urls(&server).await;
    assert_no_token_in_urls(&portal_server).await;
}

#[tokio::test]
async fn server_tokens_are_dropped_when_the_portal_token_changes() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    Mock::given(path(SERVICE))
        .respond_with(ok_json())
        .mount(&server)
        .await;
    let (client, federation) = client(&session, TokenRouting::new(portal));
    let url = format!("{}{SERVICE}?f=json", server.uri());

    client.get(&url).send().await.unwrap();
    // The portal token expires and is renewed (token-1): the server token
    // made from token-0 must not be used any more.
    session.clock.advance(Duration::from_secs(7200));
    client.get(&url).send().await.unwrap();
    // Reported invalid by someone else (token-2 next).
    let current = session.manager.token().await.unwrap();
    session.manager.report_invalid(&current);
    client.get(&url).send().await.unwrap();

    let generated = generate_requests(&portal_server).await;
    let portal_tokens: Vec<_> = generated
        .iter()
        .map(|r| form_value(r, "token").unwrap())
        .collect();
    let all: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (r.url.path().to_owned(), esri_header(r)))
        .collect();
    assert_eq!(
        portal_tokens,
        ["token-0", "token-1", "token-2"],
        "{all:?} {}",
        session.source.calls()
    );
    let sent: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == SERVICE)
        .map(|r| esri_header(r).unwrap())
        .collect();
    assert_eq!(
        sent,
        ["Bearer server-1", "Bearer server-2", "Bearer server-3"]
    );

    // The stored server tokens belong to the current portal token only.
    let stored = session.store.load(KEY).await.unwrap().unwrap().record;
    assert_eq!(stored.server_tokens.len(), 1);
    // And a new federation over the same store reuses the stored one.
    let again = Federation::new(
        session.manager.clone(),
        TokenRouting::new(session.portal.clone()),
        HttpClient::new().unwrap(),
    );
    let root = ServerRoot::parse(&server.uri()).unwrap();
    let root = ServerRoot::parse(&format!("{root}/server")).unwrap();
    let token = again.server_token(&root).await.unwrap();
    assert_eq!(generate_requests(&portal_server).await.len(), 3);
    assert_eq!(token.secret().expose_secret(), "server-3");
    assert!(!format!("{token:?}").contains("server-3"));
    drop(federation);
}

#[tokio::test]
async fn a_rejected_server_token_is_replaced_once() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    Mock::given(path(SERVICE))
        .and(header("x-esri-authorization", "Bearer server-1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"error":{"code":498,"message":"Invalid token."}}"#,
            "text/plain",
        ))
        .mount(&server)
        .await;
    Mock::given(path(SERVICE))
        .and(header("x-esri-authorization", "Bearer server-2"))
        .respond_with(ok_json())
        .mount(&server)
        .await;
    let (client, _) = client(&session, TokenRouting::new(portal));
    let r = client
        .get(format!("{}{SERVICE}?f=json", server.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The portal token was fine: only the server token was replaced.
    assert_eq!(session.source.calls(), 0);
    assert_eq!(generate_requests(&portal_server).await.len(), 2);
}

// A server of another portal: see `servers_of_another_portal_and_untrusted_standalone_servers_get_no_token`
// in tests/e2e/requests.rs (against the testkit portal).

#[tokio::test]
async fn standalone_servers_get_a_token_only_when_trusted() {
    let portal_server = MockServer::start().await;
    let standalone = MockServer::start().await;
    let own = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    for s in [&standalone, &own] {
        Mock::given(path("/arcgis/rest/info"))
            .respond_with(info(None))
            .mount(s)
            .await;
        Mock::given(path("/arcgis/rest/services/A/MapServer"))
            .respond_with(ok_json())
            .mount(s)
            .await;
    }
    let clock = session.clock.clone();
    Mock::given(method("POST"))
        .and(path("/arcgis/tokens/generateToken"))
        .and(body_string_contains("username=svc"))
        .and(body_string_contains("password=pw%21"))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(200).set_body_json(generate_token_answer("own-1", clock.now()))
        })
        .expect(1)
        .mount(&own)
        .await;
    let own_root = ServerRoot::parse(&format!("{}/arcgis", own.uri())).unwrap();
    let standalone_url = format!(
        "{}/arcgis/rest/services/A/MapServer?f=json",
        standalone.uri()
    );

    // Not trusted: no token.
    let (plain, _) = client(&session, TokenRouting::new(portal.clone()));
    plain.get(&standalone_url).send().await.unwrap();
    assert!(!carries_token(
        &standalone.received_requests().await.unwrap()[1]
    ));

    // Trusted: the portal token; trusted with credentials: its own token, cached.
    let routing = TokenRouting::new(portal)
        .trust_server(ServerRoot::parse(&format!("{}/arcgis", standalone.uri())).unwrap())
        .trust_server_with_credentials(own_root, ServerCredentials::new("svc", "pw!".into()));
    let (trusted, _) = client(&session, routing);
    trusted.get(&standalone_url).send().await.unwrap();
    let last = standalone.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(esri_header(&last).as_deref(), Some("Bearer token-0"));
    for _ in 0..2 {
        trusted
            .get(format!(
                "{}/arcgis/rest/services/A/MapServer?f=json",
                own.uri()
            ))
            .send()
            .await
            .unwrap();
    }
    let last = own.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(esri_header(&last).as_deref(), Some("Bearer own-1"));
    assert_no_token_in_urls(&own).await;
}

#[tokio::test]
async fn rest_info_is_cached_for_a_bounded_time() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(None))
        .mount(&server)
        .await;
    let mut config = FederationConfig::default();
    config.info_ttl = Duration::from_secs(60);
    let federation = Federation::with_config(
        session.manager.clone(),
        TokenRouting::new(portal),
        HttpClient::new().unwrap(),
        config,
    );
    let root = ServerRoot::parse(&format!("{}/server", server.uri())).unwrap();
    let count = || async { server.received_requests().await.unwrap().len() };
    federation.server_info(&root).await.unwrap();
    federation.server_info(&root).await.unwrap();
    assert_eq!(count().await, 1);
    session.clock.advance(Duration::from_secs(59));
    federation.server_info(&root).await.unwrap();
    assert_eq!(count().await, 1);
    session.clock.advance(Duration::from_secs(2));
    federation.server_info(&root).await.unwrap();
    assert_eq!(count().await, 2);
}

#[tokio::test]
async fn a_server_behind_the_portals_web_server_is_discovered_first() {
    let portal_server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    // Federated /server, standalone /other: both on the portal's origin.
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&portal_server)
        .await;
    Mock::given(path("/other/rest/info"))
        .respond_with(info(None))
        .mount(&portal_server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ok_json())
        .mount(&portal_server)
        .await;
    let (client, _) = client(&session, TokenRouting::new(portal));
    client
        .get(format!("{}{SERVICE}?f=json", portal_server.uri()))
        .send()
        .await
        .unwrap();
    client
        .get(format!(
            "{}/other/rest/services/A/MapServer?f=json",
            portal_server.uri()
        ))
        .send()
        .await
        .unwrap();
    let got = portal_server.received_requests().await.unwrap();
    let service = got.iter().find(|r| r.url.path() == SERVICE).unwrap();
    assert_eq!(esri_header(service).as_deref(), Some("Bearer server-1"));
    let other = got
        .iter()
        .find(|r| r.url.path() == "/other/rest/services/A/MapServer")
        .unwrap();
    assert_eq!(esri_header(other).as_deref(), Some("Bearer token-0"));
}

#[tokio::test]
async fn the_portal_rejecting_its_own_token_during_generate_token_renews_it_once() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    Mock::given(path(GENERATE))
        .and(body_string_contains("token=token-0"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            r#"{"error":{"code":498,"message":"Invalid token."}}"#,
            "text/plain",
        ))
        .mount(&portal_server)
        .await;
    mount_generate_token(&portal_server, &session).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    Mock::given(path(SERVICE))
        .respond_with(ok_json())
        .mount(&server)
        .await;
    let (client, _) = client(&session, TokenRouting::new(portal));
    let r = client
        .get(format!("{}{SERVICE}?f=json", server.uri()))
        .send()
        .await;
    let r = r.unwrap_or_else(|e| panic!("{e} {:?}", flow_error(&e)));
    assert_eq!(r.status(), 200);
    assert_eq!(session.source.calls(), 1);
    let last = server.received_requests().await.unwrap().pop().unwrap();
    assert_eq!(esri_header(&last).as_deref(), Some("Bearer server-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_server_token_request_for_many_concurrent_callers() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    Mock::given(path(SERVICE))
        .and(header("x-esri-authorization", "Bearer server-1"))
        .respond_with(ok_json())
        .expect(50)
        .mount(&server)
        .await;
    let (client, _) = client(&session, TokenRouting::new(portal));
    let url = format!("{}{SERVICE}?f=json", server.uri());
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    assert_eq!(generate_requests(&portal_server).await.len(), 1);
    drop_servers(vec![portal_server, server]).await;
}

#[tokio::test]
async fn server_tokens_are_renewed_early() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    let federation = Federation::new(
        session.manager.clone(),
        TokenRouting::new(portal),
        HttpClient::new().unwrap(),
    );
    let root = ServerRoot::parse(&format!("{}/server", server.uri())).unwrap();
    let first = federation.server_token(&root).await.unwrap();
    assert_eq!(first.secret().expose_secret(), "server-1");
    // 54 minutes into a one-hour token: still fresh (the lead is 5 minutes).
    session.clock.advance(Duration::from_secs(54 * 60));
    let same = federation.server_token(&root).await.unwrap();
    assert_eq!(same.secret().expose_secret(), "server-1");
    // 56 minutes in: renewed before it expires, with the same portal token.
    session.clock.advance(Duration::from_secs(2 * 60));
    let next = federation.server_token(&root).await.unwrap();
    assert_eq!(next.secret().expose_secret(), "server-2");
    let generated = generate_requests(&portal_server).await;
    assert_eq!(generated.len(), 2);
    assert_eq!(
        form_value(&generated[1], "token").as_deref(),
        Some("token-0")
    );
    assert_eq!(session.source.calls(), 0);
}

#[tokio::test]
async fn debug_output_never_shows_a_token() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    let routing = TokenRouting::new(portal).trust_server_with_credentials(
        ServerRoot::parse("https://own.example.com/arcgis").unwrap(),
        ServerCredentials::new("svc", "pw-secret".into()),
    );
    let (client, federation) = client(&session, routing);
    let url = url::Url::parse(&format!("{}{SERVICE}", server.uri())).unwrap();
    let route = federation.routing().route(&url);
    let credential = federation.credential(&route).await.unwrap().unwrap();
    assert_eq!(credential.token().secret().expose_secret(), "server-1");
    let auth = ArcGisAuth::from_federation(federation.clone());
    let shown = format!(
        "{credential:?} {federation:?} {auth:?} {client:?} {route:?} {:?}",
        federation.routing()
    );
    for secret in ["server-1", "token-0", "pw-secret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}

#[tokio::test]
async fn a_stale_portal_token_reported_late_keeps_the_new_server_tokens() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    mount_generate_token(&portal_server, &session).await;
    for instance in ["server", "server2"] {
        Mock::given(path(format!("/{instance}/rest/info")))
            .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
            .mount(&server)
            .await;
    }
    let roots = ["server", "server2"]
        .map(|instance| ServerRoot::parse(&format!("{}/{instance}", server.uri())).unwrap());
    let federation = Federation::new(
        session.manager.clone(),
        TokenRouting::new(portal),
        HttpClient::new().unwrap(),
    );
    for root in &roots {
        federation.server_token(root).await.unwrap();
    }
    assert_eq!(generate_requests(&portal_server).await.len(), 2);

    // Two callers hold token-0 when ArcGIS rejects it. The first report
    // renews the portal token and the server tokens are made again from
    // token-1 ...
    let stale = session.manager.token().await.unwrap();
    federation.report_invalid(&Credential::Portal(stale.clone()));
    for root in &roots {
        federation.server_token(root).await.unwrap();
    }
    assert_eq!(generate_requests(&portal_server).await.len(), 4);
    // (The store keeps no server tokens, as when another process's save won:
    // only the federation's memory holds them.)
    let mut record = session.store.load(KEY).await.unwrap().unwrap().record;
    assert_eq!(record.server_tokens.len(), 2);
    record.server_tokens.clear();
    session
        .store
        .save(KEY, &record, SaveMode::Overwrite)
        .await
        .unwrap();
    // ... then the second caller's report of the old token arrives: the
    // server tokens from token-1 stay.
    federation.report_invalid(&Credential::Portal(stale));
    for root in &roots {
        let token = federation.server_token(root).await.unwrap();
        assert!(token.secret().expose_secret().starts_with("server-"));
    }
    let generated = generate_requests(&portal_server).await;
    let portal_tokens: Vec<_> = generated
        .iter()
        .map(|r| form_value(r, "token").unwrap())
        .collect();
    assert_eq!(
        portal_tokens,
        ["token-0", "token-0", "token-1", "token-1"],
        "one generateToken per server after the renewal"
    );
    assert_eq!(session.source.calls(), 1, "one portal renewal");
}

/// Lets the manager's change watcher take in the event of the save just
/// made: waits for the event on a receiver of our own, then lets the other
/// tasks run.
async fn settle(events: &mut tokio::sync::broadcast::Receiver<arcgis_auth_storage::ChangeEvent>) {
    events.recv().await.unwrap();
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn saving_server_tokens_never_makes_the_portal_token_stale_or_conflict() {
    use arcgis_auth_core::{ManualClock, Timestamp, Token};
    use arcgis_auth_flows::TokenManager;
    use arcgis_auth_storage::SessionRecord;
    use arcgis_auth_storage::test_util::FaultyStore;
    use std::sync::Arc;

    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let store = FaultyStore::new(arcgis_auth_storage::MemoryStore::new());
    let clock = ManualClock::new(Timestamp::now());
    let source = counting(Renewal::SignInAgain);
    let dyn_store: Arc<dyn SessionStore> = Arc::new(store.clone());
    let manager = TokenManager::builder(source.clone(), dyn_store, KEY)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let mut record = SessionRecord::new(portal.clone(), SessionKind::User);
    record.set_token(&Token::new(
        "token-0".into(),
        clock.now() + Duration::from_secs(7200),
    ));
    manager.set_session(record).await.unwrap();
    let mut events = store.subscribe();
    let session = Session {
        manager: manager.clone(),
        store: Arc::new(store.inner().clone()),
        source: source.clone(),
        clock: clock.clone(),
        portal: portal.clone(),
    };
    mount_generate_token(&portal_server, &session).await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    let federation = Federation::new(
        manager.clone(),
        TokenRouting::new(portal),
        HttpClient::new().unwrap(),
    );
    let root = ServerRoot::parse(&format!("{}/server", server.uri())).unwrap();
    let root_key = format!("{}/server", server.uri());
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "token-0"
    );
    let slow_before = manager.slow_path_calls();

    // A server token, then its early renewal 56 minutes later: each saved
    // in the session record.
    for (advance, expected) in [(0, "server-1"), (56 * 60, "server-2")] {
        clock.advance(Duration::from_secs(advance));
        let token = federation.server_token(&root).await.unwrap();
        assert_eq!(token.secret().expose_secret(), expected);
        settle(&mut events).await;
        let stored = store.inner().load(KEY).await.unwrap().unwrap().record;
        assert_eq!(
            stored.server_tokens[&root_key].token.expose_secret(),
            expected
        );
        // The portal token is still served from the cache.
        for _ in 0..3 {
            assert!(
                manager.cached().is_some(),
                "the save made the portal token stale"
            );
            assert_eq!(
                manager.token().await.unwrap().secret().expose_secret(),
                "token-0"
            );
        }
        assert_eq!(
            manager.slow_path_calls(),
            slow_before,
            "saving {expected} sent the portal token down the slow path"
        );
    }
    // The manager holds the server token it saved, as it is in the store.
    let held = manager.session().await.unwrap();
    assert_eq!(
        held.server_tokens[&root_key].token.expose_secret(),
        "server-2"
    );

    // The portal token's own renewal saves without a conflict.
    // (In its refresh window: served at once, renewed in the background.)
    clock.advance(Duration::from_secs(60 * 60));
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "token-0"
    );
    manager.wait_for_renewal().await;
    assert_eq!(
        manager.token().await.unwrap().secret().expose_secret(),
        "token-1"
    );
    assert_eq!(manager.slow_path_calls(), slow_before + 1, "one renewal");
    assert_eq!(
        store.conflicts(),
        0,
        "a save met a conflict the manager caused"
    );
    let stored = store.inner().load(KEY).await.unwrap().unwrap().record;
    assert!(
        stored.server_tokens.is_empty(),
        "server tokens go with the portal token"
    );
    assert_eq!(source.calls(), 1);
    drop_servers(vec![portal_server, server]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_token_rejected_during_its_renewal_is_not_served_when_the_renewal_fails() {
    let portal_server = MockServer::start().await;
    let server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    let clock = session.clock.clone();
    Mock::given(method("POST"))
        .and(path(GENERATE))
        .respond_with(move |_: &Request| {
            ResponseTemplate::new(200).set_body_json(generate_token_answer("server-1", clock.now()))
        })
        .up_to_n_times(1)
        .mount(&portal_server)
        .await;
    // The early renewal fails, slowly enough for the 498 below to land while it runs.
    Mock::given(method("POST"))
        .and(path(GENERATE))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(
                    r#"{"error":{"code":400,"message":"Not allowed.","details":[]}}"#,
                    "text/plain",
                )
                .set_delay(Duration::from_secs(1)),
        )
        .mount(&portal_server)
        .await;
    Mock::given(path("/server/rest/info"))
        .respond_with(info(Some(&format!("{}/portal", portal_server.uri()))))
        .mount(&server)
        .await;
    let federation = Federation::new(
        session.manager.clone(),
        TokenRouting::new(portal),
        HttpClient::new().unwrap(),
    );
    let root = ServerRoot::parse(&format!("{}/server", server.uri())).unwrap();
    let first = federation.server_token(&root).await.unwrap();
    assert_eq!(first.secret().expose_secret(), "server-1");
    // Due for early renewal, still valid: the renewal starts.
    session.clock.advance(Duration::from_secs(56 * 60));
    let renewing = {
        let (federation, root) = (federation.clone(), root.clone());
        tokio::spawn(async move { federation.server_token(&root).await })
    };
    while generate_requests(&portal_server).await.len() < 2 {
        tokio::task::yield_now().await;
    }
    // ArcGIS rejects server-1 while its renewal is in flight.
    federation.report_invalid(&Credential::Server {
        server: root.clone(),
        token: first,
    });
    // The renewal fails: the rejected token is not handed out as a fallback.
    let err = renewing.await.unwrap().unwrap_err();
    assert!(!err.to_string().contains("server-1"));
    assert_eq!(generate_requests(&portal_server).await.len(), 2);
    drop_servers(vec![portal_server, server]).await;
}

#[tokio::test]
async fn a_token_services_url_ending_in_tokens_means_its_generate_token() {
    let portal_server = MockServer::start().await;
    let portal = portal_of(&portal_server);
    let session =
        super::support::session(portal.clone(), SessionKind::User, Renewal::SignInAgain).await;
    // Each server names its token service in another shape; junk falls back
    // on the root's own tokens/generateToken.
    for (reported, endpoint) in [
        (
            "/arcgis/custom/tokens/",
            "/arcgis/custom/tokens/generateToken",
        ),
        (
            "/arcgis/custom/tokens",
            "/arcgis/custom/tokens/generateToken",
        ),
        (
            "/arcgis/custom/tokens/generateToken",
            "/arcgis/custom/tokens/generateToken",
        ),
        ("/arcgis/rest/info", "/arcgis/tokens/generateToken"),
    ] {
        let own = MockServer::start().await;
        let body = json!({"authInfo": {"isTokenBasedSecurity": true,
            "tokenServicesUrl": format!("{}{reported}", own.uri())}});
        Mock::given(path("/arcgis/rest/info"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&own)
            .await;
        Mock::given(path("/arcgis/rest/services/A/MapServer"))
            .respond_with(ok_json())
            .mount(&own)
            .await;
        let clock = session.clock.clone();
        Mock::given(method("POST"))
            .and(path(endpoint))
            .and(body_string_contains("username=svc"))
            .respond_with(move |_: &Request| {
                ResponseTemplate::new(200)
                    .set_body_json(generate_token_answer("own-1", clock.now()))
            })
            .expect(1)
            .mount(&own)
            .await;
        let root = ServerRoot::parse(&format!("{}/arcgis", own.uri())).unwrap();
        let routing = TokenRouting::new(portal.clone())
            .trust_server_with_credentials(root, ServerCredentials::new("svc", "pw".into()));
        let (client, _) = client(&session, routing);
        let url = format!("{}/arcgis/rest/services/A/MapServer?f=json", own.uri());
        client.get(&url).send().await.unwrap();
        let last = own.received_requests().await.unwrap().pop().unwrap();
        assert_eq!(
            esri_header(&last).as_deref(),
            Some("Bearer own-1"),
            "{reported}"
        );
    }
}
