//! Account helpers on the wire: community/self, portals/self,
//! validateAppAccess, and sign-out (revoke, then delete, whatever happens).

use super::support::*;
use arcgis_auth_core::{ErrorKind, HttpClient};
use arcgis_auth_flows::account::{Account, Revoked};
use arcgis_auth_flows::{FlowErrorKind, Renewal};
use arcgis_auth_storage::test_util::FaultyStore;
use arcgis_auth_storage::{SessionKind, SessionStore};
use serde_json::json;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REVOKE: &str = "/portal/sharing/rest/oauth2/revokeToken";

fn account(session: &Session) -> Account {
    Account::new(session.manager.clone(), HttpClient::new().unwrap())
}

async fn user_session(portal_server: &MockServer) -> Session {
    session_with(
        portal_of(portal_server),
        SessionKind::User,
        Renewal::RefreshToken,
        |record| {
            record.client_id = Some("my-app".into());
            record.refresh_token = Some("refresh-1".into());
        },
    )
    .await
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_then_deletes_the_session() {
    let portal_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(REVOKE))
        .and(body_string_contains("auth_token=refresh-1"))
        .and(body_string_contains("token_type_hint=refresh_token"))
        .and(body_string_contains("client_id=my-app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&portal_server)
        .await;
    let session = user_session(&portal_server).await;
    assert_eq!(
        arcgis_auth_flows::account::stored_portal(&session.manager)
            .await
            .unwrap(),
        session.portal
    );
    let account = account(&session);
    let report = account.sign_out().await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.revoked.unwrap(), Revoked::RefreshToken);
    assert!(report.deleted.unwrap());
    assert!(session.store.load(KEY).await.unwrap().is_none());
    // The manager no longer hands out the old token.
    let err = session.manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NoSession);
    let err = arcgis_auth_flows::account::stored_portal(&session.manager)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NoSession);
    assert_no_token_in_urls(&portal_server).await;
}

#[tokio::test]
async fn a_failed_revocation_still_deletes_and_says_so() {
    for answer in [
        ResponseTemplate::new(200).set_body_json(json!({"success": false})),
        ResponseTemplate::new(502).set_body_raw("<html>Bad gateway</html>", "text/html"),
    ] {
        let portal_server = MockServer::start().await;
        Mock::given(path(REVOKE))
            .respond_with(answer)
            .expect(1)
            .mount(&portal_server)
            .await;
        let session = user_session(&portal_server).await;
        let report = account(&session).sign_out().await;
        assert!(!report.is_complete());
        let err = report.revoked.unwrap_err();
        assert!(matches!(err.kind(), FlowErrorKind::ArcGis(_)), "{err:?}");
        assert!(!err.to_string().contains("refresh-1"), "{err}");
        assert!(report.deleted.unwrap());
        assert!(session.store.load(KEY).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn without_a_refresh_token_the_access_token_is_revoked_and_app_tokens_are_not() {
    let portal_server = MockServer::start().await;
    Mock::given(path(REVOKE))
        .and(body_string_contains("auth_token=token-0"))
        .and(body_string_contains("token_type_hint=access_token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&portal_server)
        .await;
    let session = session_with(
        portal_of(&portal_server),
        SessionKind::User,
        Renewal::Never,
        |record| record.client_id = Some("my-app".into()),
    )
    .await;
    let report = account(&session).sign_out().await;
    assert_eq!(report.revoked.unwrap(), Revoked::AccessToken);

    let app = session_with(
        portal_of(&portal_server),
        SessionKind::App,
        Renewal::SignInAgain,
        |record| record.client_id = Some("my-app".into()),
    )
    .await;
    let report = account(&app).sign_out().await;
    assert_eq!(report.revoked.unwrap(), Revoked::NothingToRevoke);
    assert!(report.deleted.unwrap());
}

#[tokio::test]
async fn user_and_portal_are_read_once_per_session() {
    let portal_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/community/self"))
        .and(body_string_contains("token=token-0"))
        .and(body_string_contains("f=json"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(
                json!({
                    "username": "jdoe", "fullName": "Jane Doe", "orgId": "Org1",
                    "role": "org_publisher", "userLicenseTypeId": "creatorUT",
                    "privileges": ["portal:user:createItem", "portal:publisher:publishFeatures"]
                })
                .to_string(),
                "text/plain; charset=utf-8",
            ),
        )
        .expect(1)
        .mount(&portal_server)
        .await;
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/portals/self"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "Org1", "name": "Example Org", "urlKey": "example", "isPortal": true,
            "user": {"username": "jdoe"}
        })))
        .expect(1)
        .mount(&portal_server)
        .await;
    let session = user_session(&portal_server).await;
    let account = account(&session);
    for _ in 0..2 {
        let user = account.user().await.unwrap();
        assert_eq!(user.username, "jdoe");
        assert_eq!(user.full_name.as_deref(), Some("Jane Doe"));
        assert_eq!(user.org_id.as_deref(), Some("Org1"));
        assert_eq!(user.role.as_deref(), Some("org_publisher"));
        assert!(user.has_privilege("portal:publisher:publishFeatures"));
        let portal = account.portal().await.unwrap();
        assert_eq!(portal.name.as_deref(), Some("Example Org"));
        assert!(portal.is_portal);
    }
    assert_no_token_in_urls(&portal_server).await;
}

#[tokio::test]
async fn a_store_outage_does_not_stop_a_session_the_manager_still_serves() {
    // The manager keeps serving a session the store cannot hold right now;
    // the account helpers work from that session too.
    let portal_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/community/self"))
        .and(body_string_contains("token=token-0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"username": "jdoe"})))
        .expect(1)
        .mount(&portal_server)
        .await;
    let store: std::sync::Arc<dyn SessionStore> = std::sync::Arc::new(FaultyStore::down());
    let manager =
        arcgis_auth_flows::TokenManager::builder(counting(Renewal::RefreshToken), store, KEY)
            .build()
            .unwrap();
    let mut record =
        arcgis_auth_storage::SessionRecord::new(portal_of(&portal_server), SessionKind::User);
    record.set_token(&arcgis_auth_core::Token::new(
        "token-0".into(),
        arcgis_auth_core::Timestamp::now() + std::time::Duration::from_secs(7200),
    ));
    assert!(
        manager.set_session(record).await.is_err(),
        "the store is down"
    );
    let account = Account::new(manager.clone(), HttpClient::new().unwrap());
    assert_eq!(account.user().await.unwrap().username, "jdoe");
    assert_eq!(
        arcgis_auth_flows::account::stored_portal(&manager)
            .await
            .unwrap(),
        portal_of(&portal_server)
    );
}

#[tokio::test]
async fn calls_renew_once_after_a_498() {
    // The testkit portal: its community/self answers 498 in an HTTP 200 for
    // a token it expired, and its token endpoint really refreshes.
    use arcgis_auth_testkit::{Endpoint, FakePortal, Grant, PUBLIC_CLIENT_ID, USERNAME};
    let clock = arcgis_auth_core::ManualClock::new(arcgis_auth_core::Timestamp::now());
    let kit = FakePortal::builder()
        .clock(clock.clone())
        .app(
            arcgis_auth_testkit::App::public(PUBLIC_CLIENT_ID)
                .redirect_uri(arcgis_auth_testkit::LOOPBACK_REDIRECT_URI),
        )
        .user(USERNAME, "pw")
        .signed_in_user(USERNAME)
        .start()
        .await;
    let http = HttpClient::new().unwrap();
    let sign_in =
        arcgis_auth_flows::signin::UserSignIn::new(kit.portal(), PUBLIC_CLIENT_ID, http.clone())
            .with_clock(std::sync::Arc::new(clock.clone()));
    let pending = sign_in
        .begin(
            arcgis_auth_testkit::LOOPBACK_REDIRECT_URI,
            &Default::default(),
        )
        .unwrap();
    let callback = kit
        .authorize_redirect(pending.url().as_str())
        .await
        .unwrap();
    let store = std::sync::Arc::new(arcgis_auth_storage::MemoryStore::default());
    let manager = sign_in
        .complete(&pending, callback.as_str())
        .await
        .unwrap()
        .into_manager(store, KEY)
        .await
        .unwrap();
    kit.expire_access_tokens();

    let account = Account::new(manager, http);
    assert_eq!(account.user().await.unwrap().username, USERNAME);
    let calls = kit.calls();
    assert_eq!(calls.token(Grant::RefreshToken), 1);
    assert_eq!(calls.endpoint(Endpoint::CommunitySelf), 2);
    assert_eq!(calls.secrets_in_url(), 0);
}

#[tokio::test]
async fn validate_app_access() {
    let portal_server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/oauth2/validateAppAccess"))
        .and(body_string_contains("client_id=my-app"))
        .and(body_string_contains("token=token-0"))
        .and(body_string_contains("f=json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"valid": true, "viewOnlyUserTypeApp": false})),
        )
        .mount(&portal_server)
        .await;
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/oauth2/validateAppAccess"))
        .and(body_string_contains("client_id=other-app"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "error": {"code": 400, "messageCode": "OAUTH_0070",
                      "message": "User does not have access to this app."}
        })))
        .mount(&portal_server)
        .await;
    let session = user_session(&portal_server).await;
    let account = account(&session);
    let access = account.validate_app_access(None).await.unwrap();
    assert!(access.valid);
    assert!(!access.view_only_user_type_app);
    let err = account
        .validate_app_access(Some("other-app"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            FlowErrorKind::ArcGis(ErrorKind::ArcGis | ErrorKind::InvalidRequest)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not have access"), "{err}");
    assert_no_token_in_urls(&portal_server).await;
}

#[tokio::test]
async fn after_sign_out_a_token_due_for_renewal_is_not_served_either() {
    use std::time::Duration;

    let portal_server = MockServer::start().await;
    Mock::given(path(REVOKE))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .mount(&portal_server)
        .await;
    let session = user_session(&portal_server).await;
    // 1h57m into a 2h token: due for renewal (off the fast path), still valid.
    session.clock.advance(Duration::from_secs(7020));
    assert!(session.manager.cached().is_none());
    let report = account(&session).sign_out().await;
    assert!(report.is_complete(), "{report:?}");
    let err = session.manager.token().await.unwrap_err();
    assert_eq!(err.kind(), FlowErrorKind::NoSession);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_read_community_self_and_portals_self_once() {
    let portal_server = MockServer::start().await;
    // Slow answers, so every caller asks while the first read is under way.
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/community/self"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"username": "jdoe"}))
                .set_delay(std::time::Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&portal_server)
        .await;
    Mock::given(method("POST"))
        .and(path("/portal/sharing/rest/portals/self"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "Org1", "name": "Example Org"}))
                .set_delay(std::time::Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&portal_server)
        .await;
    let session = user_session(&portal_server).await;
    let account = account(&session);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let account = account.clone();
        tasks.push(tokio::spawn(async move {
            let (user, portal) = tokio::join!(account.user(), account.portal());
            (user.unwrap().username.clone(), portal.unwrap().name.clone())
        }));
    }
    for task in tasks {
        let (username, name) = task.await.unwrap();
        assert_eq!(username, "jdoe");
        assert_eq!(name.as_deref(), Some("Example Org"));
    }
    let reads = portal_server.received_requests().await.unwrap().len();
    assert_eq!(reads, 2, "one read of each for 20 callers");
    drop_servers(vec![portal_server]).await;
}
