//! The tour: every flow of arcgis-auth, end to end, in one command.
//!
//! ```text
//! cargo run --example tour
//! ```
//!
//! It starts the testkit's fake ArcGIS portal (with a federated ArcGIS
//! Server) on loopback and a file session store in a temporary directory,
//! then walks through app sign-in, user sign-in with PKCE (the tour plays the
//! browser), refresh, refresh-token exchange, a service call that gets a 498
//! and recovers, a federated server token, `generateToken`, the gateway
//! (its `Router` in-process: a proxied request gets the app's token, attack
//! URLs are refused), and sign-out.
//! Every step says what happens in plain words and checks that it happened:
//! the tour exits with an error as soon as a step does not behave as
//! described. Tokens are never printed, not even in part: only their length,
//! owner and expiry.
//!
//! Time is stopped: the tour moves the portal's clock and the token
//! managers' `ManualClock` forward together (26 minutes, 13 days) instead of
//! waiting.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arcgis_auth_core::{
    AuthorizeOptions, Clock, ExposeSecret, HttpClient, ManualClock, OAuthClient, RefreshToken,
    SecretString, Timestamp, TokenBinding,
};
use arcgis_auth_examples::BoxError;
use arcgis_auth_examples::browser::sign_in_with_loopback;
use arcgis_auth_examples::show;
use arcgis_auth_examples::target::Target;
use arcgis_auth_flows::AccessToken;
use arcgis_auth_flows::account::{Account, Revoked};
use arcgis_auth_flows::middleware::ArcGisAuth;
use arcgis_auth_flows::routing::TokenRouting;
use arcgis_auth_flows::signin::{AppSignIn, PasswordSignIn, UserSignIn};
use arcgis_auth_gateway::{Config, Gateway};
use arcgis_auth_storage::{FileStore, SessionStore};
use arcgis_auth_testkit::{
    CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET, Endpoint, FakePortal, Grant, PASSWORD,
    PUBLIC_CLIENT_ID, SERVER_NAME, USERNAME,
};
use reqwest_middleware::ClientWithMiddleware;

/// Where the tour is, and what it checks.
struct Tour {
    step: usize,
    checks: usize,
}

impl Tour {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n{}. {title}", self.step);
    }

    fn say(&self, text: impl AsRef<str>) {
        println!("   {}", text.as_ref());
    }

    /// Checks a promise the tour made; a broken one ends the tour with an error.
    fn check(&mut self, ok: bool, promise: impl AsRef<str>) -> Result<(), BoxError> {
        self.checks += 1;
        if ok {
            println!("   ✓ {}", promise.as_ref());
            Ok(())
        } else {
            Err(format!("step {}: expected: {}", self.step, promise.as_ref()).into())
        }
    }
}

#[tokio::main]
async fn main() {
    match tour().await {
        Ok(checks) => println!("\nThe tour is over: every flow worked ({checks} checks passed)."),
        Err(e) => {
            eprintln!("\nThe tour FAILED: {e}");
            std::process::exit(1);
        }
    }
}

pub(crate) async fn tour() -> Result<usize, BoxError> {
    let mut t = Tour { step: 0, checks: 0 };
    println!("A tour of arcgis-auth: every flow against a fake ArcGIS portal on this machine.");

    // The portal decides expiry on its own clock, stopped at its start; the
    // token managers get a clock stopped at the same time. The tour moves
    // both together (`advance`) instead of waiting.
    let fake = FakePortal::start().await;
    let clock = ManualClock::new(fake.now());
    let shared_clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let advance = |fake: &FakePortal, by: Duration| {
        clock.advance(by);
        fake.advance_clock(by);
    };
    // The examples' `Target`: the browser helper plays the user on it.
    let target = Target::Testkit(Box::new(fake));
    let fake = target.fake().ok_or("no fake portal")?;
    let server = fake
        .server(SERVER_NAME)
        .ok_or("the fake portal has no server")?;
    let portal = fake.portal();
    let dir = tempfile::tempdir()?;
    let store_path = dir.path().join("sessions.json");
    let store: Arc<dyn SessionStore> = Arc::new(FileStore::new(&store_path)?);
    let http = HttpClient::new()?;
    println!(
        "   portal:  {} (signed-in user: {USERNAME})",
        fake.portal_url()
    );
    println!(
        "   server:  {} (federated with the portal)",
        server.root_url()
    );
    println!("   store:   {}", store_path.display());

    // ---------------------------------------------------------------- app
    t.step("App sign-in (client credentials): a server acting as the app itself");
    let app = AppSignIn::new(
        portal.clone(),
        CONFIDENTIAL_CLIENT_ID,
        SecretString::from(CONFIDENTIAL_CLIENT_SECRET),
        http.clone(),
    )
    .with_clock(shared_clock.clone());
    let app_manager = app
        .sign_in()
        .await?
        .into_manager(store.clone(), "tour:app")
        .await?;
    let app_token = app_manager.token().await?;
    t.say(format!(
        "the app got {}",
        show::access(&app_token, clock.now())
    ));
    t.check(
        fake.calls().token(Grant::ClientCredentials) == 1,
        "one client_credentials request to oauth2/token",
    )?;
    t.check(
        about(
            lifetime(&app_token, clock.now()),
            Duration::from_secs(2 * 3600),
        ),
        "an app token lives 2 hours (ArcGIS's default)",
    )?;
    t.check(
        app_manager.token().await?.same_token(&app_token)
            && fake.calls().endpoint(Endpoint::Token) == 1,
        "asking again serves the same token from memory, without a request",
    )?;
    t.check(
        !file_contains(&store_path, CONFIDENTIAL_CLIENT_SECRET)?,
        "the session is in the store file, without the client secret",
    )?;

    // ---------------------------------------------------------------- user
    t.step("User sign-in with PKCE through a loopback listener (the tour plays the browser)");
    let user = UserSignIn::new(portal.clone(), PUBLIC_CLIENT_ID, http.clone())
        .with_clock(shared_clock.clone());
    let signed_in = sign_in_with_loopback(&target, &user, 0, &AuthorizeOptions::new()).await?;
    t.say(format!(
        "signed in: {}",
        show::token(signed_in.token(), clock.now())
    ));
    let refresh_expires = signed_in
        .token()
        .refresh_token()
        .and_then(RefreshToken::expires_at)
        .ok_or("no refresh token, or no expiry for it")?;
    t.say(format!(
        "with a refresh token valid for {}",
        show::duration(refresh_expires.saturating_duration_since(clock.now()))
    ));
    t.check(
        signed_in.token().username() == Some(USERNAME),
        format!("the portal says the user is {USERNAME}"),
    )?;
    t.check(
        fake.calls().token(Grant::AuthorizationCode) == 1,
        "one authorization_code request (code + PKCE verifier)",
    )?;
    t.check(
        about(
            lifetime_of(signed_in.token().expires_at(), clock.now()),
            Duration::from_secs(1800),
        ),
        "the access token lives 30 minutes",
    )?;
    t.check(
        about(
            lifetime_of(refresh_expires, clock.now()),
            Duration::from_secs(14 * 24 * 3600),
        ),
        "the refresh token lives 2 weeks (ArcGIS's default)",
    )?;
    let manager = signed_in.into_manager(store.clone(), "tour:jdoe").await?;
    let first = manager.token().await?;

    // ---------------------------------------------------------------- refresh
    t.step("Refresh: 26 minutes later the access token is due, and the manager renews it");
    advance(fake, Duration::from_secs(26 * 60));
    let still_valid = manager.token().await?;
    t.check(
        still_valid.same_token(&first),
        "the caller gets the still-valid token at once; the renewal runs in the background",
    )?;
    manager.wait_for_renewal().await;
    let second = manager.token().await?;
    t.say(format!("now: {}", show::access(&second, clock.now())));
    t.check(!second.same_token(&first), "a new access token")?;
    t.check(
        fake.calls().token(Grant::RefreshToken) == 1,
        "one refresh_token request",
    )?;
    t.check(
        stored_access_token(&*store, "tour:jdoe").await?.as_deref()
            == Some(second.secret().expose_secret()),
        "the store holds the new token, for the next process or restart",
    )?;

    // ---------------------------------------------------------------- exchange
    t.step("Refresh-token exchange: 13 days later the refresh token nears its end, and is swapped for a new one");
    let old_refresh = stored_refresh_token(&*store, "tour:jdoe").await?;
    advance(fake, Duration::from_secs(13 * 24 * 3600));
    let third = manager.token().await?;
    t.say(format!("now: {}", show::access(&third, clock.now())));
    let new_refresh = stored_refresh_token(&*store, "tour:jdoe").await?;
    t.check(
        fake.calls().token(Grant::ExchangeRefreshToken) == 1,
        "one exchange_refresh_token request",
    )?;
    t.check(
        new_refresh.expose_secret() != old_refresh.expose_secret(),
        "the store holds the new refresh token",
    )?;
    let oauth = OAuthClient::new(portal.clone(), PUBLIC_CLIENT_ID, http.clone())
        .with_clock(shared_clock.clone());
    let old = RefreshToken::new(old_refresh, clock.now(), None);
    let refused = oauth.refresh(&old).await;
    if let Err(e) = &refused {
        t.say(format!("the portal, asked with the old refresh token: {e}"));
    }
    t.check(refused.is_err(), "the old refresh token no longer works")?;

    // ---------------------------------------------------------------- 498
    t.step("A service call that gets a 498 and recovers (the middleware)");
    let client = ArcGisAuth::new(
        manager.clone(),
        TokenRouting::new(portal.clone()),
        http.clone(),
    )
    .into_client()?;
    fake.expire_access_tokens();
    t.say("the portal has just expired every access token (as after a password change), though the manager thinks its token is fine");
    let refreshes = fake.calls().token(Grant::RefreshToken);
    let item = get_json(
        &client,
        &format!("{}?f=json", fake.secured_item_url("tour-item")),
    )
    .await?;
    t.check(
        item.get("error").is_none(),
        "the secured item was read, without an error in the answer",
    )?;
    t.check(
        fake.calls().endpoint(Endpoint::ContentItem) == 2,
        "two calls to the item: the first answered 498 \"Invalid token\" inside HTTP 200, the retry worked",
    )?;
    t.check(
        fake.calls().token(Grant::RefreshToken) == refreshes + 1,
        "in between, the middleware reported the token and the manager refreshed it once",
    )?;

    // ---------------------------------------------------------------- federated
    t.step(
        "A federated ArcGIS Server: the middleware trades the portal token for the server's own",
    );
    let service = format!("{}?f=json", server.service_url("Tour/MapServer"));
    let answer = get_json(&client, &service).await?;
    t.check(
        answer.get("error").is_none(),
        "the server's secured service answered",
    )?;
    t.check(
        fake.calls().server(SERVER_NAME, Endpoint::ServerInfo) >= 1,
        "the middleware read the server's rest/info: its owningSystemUrl is this portal",
    )?;
    t.check(
        fake.calls().endpoint(Endpoint::GenerateToken) == 1,
        "one generateToken request with serverUrl made a server token",
    )?;
    get_json(&client, &service).await?;
    t.check(
        fake.calls().endpoint(Endpoint::GenerateToken) == 1,
        "a second call reuses the server token",
    )?;
    let portal_token = manager.token().await?;
    let mut leaked = false;
    for request in server
        .mock_server()
        .received_requests()
        .await
        .unwrap_or_default()
    {
        let seen = format!(
            "{} {:?} {}",
            request.url,
            request.headers,
            String::from_utf8_lossy(&request.body)
        );
        leaked |= seen.contains(portal_token.secret().expose_secret())
            || seen.contains(third.secret().expose_secret());
    }
    t.check(!leaked, "the portal token itself never went to the server")?;

    // ---------------------------------------------------------------- generateToken
    t.step("generateToken: a script signs in with a username and password");
    let script = PasswordSignIn::new(portal.clone(), http.clone(), TokenBinding::RequestIp)
        .with_clock(shared_clock.clone())
        .sign_in(USERNAME, SecretString::from(PASSWORD))
        .await?;
    t.say(format!("got {}", show::token(script.token(), clock.now())));
    t.check(
        about(
            lifetime_of(script.token().expires_at(), clock.now()),
            Duration::from_secs(3600),
        ),
        "it lives 60 minutes (the answer's `expires` is epoch milliseconds)",
    )?;
    let script_manager = script.into_manager(store.clone(), "tour:script").await?;
    script_manager.token().await?;
    t.check(
        !file_contains(&store_path, PASSWORD)?,
        "the session is stored, the password is not (it stays in memory to sign in again)",
    )?;

    // ---------------------------------------------------------------- gateway
    t.step("The gateway: a browser's request proxied with the app's token, an attack URL refused");
    let gateway_config = Config::from_toml(
        &format!(
            r#"portal = "{portal}"

[[apps]]
name = "tour"
client_id = "{CONFIDENTIAL_CLIENT_ID}"
client_secret_env = "TOUR_APP_SECRET"

[[routes]]
url = "{root}/sharing/rest/content/items"
match_all = true
auth = "app:tour"
"#,
            portal = fake.portal_url(),
            root = fake.url_root(),
        ),
        &BTreeMap::from([(
            "TOUR_APP_SECRET".to_owned(),
            CONFIDENTIAL_CLIENT_SECRET.to_owned(),
        )]),
    )?;
    let gateway = Gateway::builder(gateway_config)
        .clock(shared_clock.clone())
        .build()
        .await?;
    // The library's Router, mounted in a server of our own (as a web app's backend would).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway_url = format!("http://{}", listener.local_addr()?);
    let router = gateway.router();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    t.say(format!(
        "gateway: {gateway_url} (one route: {}/sharing/rest/content/items, app:tour)",
        fake.url_root()
    ));
    let browser = reqwest::Client::builder().no_proxy().build()?;
    let sign_ins = fake.calls().token(Grant::ClientCredentials);
    let items = fake.calls().endpoint(Endpoint::ContentItem);
    let asked = format!(
        "{gateway_url}/proxy?{}?f=json",
        fake.secured_item_url("tour-item")
    );
    t.say("the browser asks /proxy?<the secured item's URL>, with no token of its own");
    let answer = browser.get(&asked).send().await?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await?;
    t.check(
        status == 200 && body.get("error").is_none(),
        "the secured item came back through the gateway",
    )?;
    t.check(
        fake.calls().token(Grant::ClientCredentials) == sign_ins + 1
            && fake.calls().endpoint(Endpoint::ContentItem) == items + 1,
        "the gateway signed in as the app once and added its token on the way",
    )?;
    let root = fake.url_root();
    let host_port = root.trim_start_matches("http://");
    let (fake_host, fake_port) = host_port.split_once(':').unwrap_or((host_port, "80"));
    for (attack, expected) in [
        (
            format!("http://{host_port}@evil.example/sharing/rest/content/items/tour-item"),
            400,
        ),
        (
            format!(
                "http://{}.evil.example:{}/sharing/rest/content/items/tour-item",
                fake_host, fake_port
            ),
            403,
        ),
        (format!("{root}/sharing/rest/content/itemsX/tour-item"), 403),
    ] {
        let refused = browser
            .get(format!("{gateway_url}/proxy?{attack}"))
            .send()
            .await?;
        let status = refused.status().as_u16();
        let body: serde_json::Value = refused.json().await?;
        t.say(format!(
            "{attack} → {status} \"{}\"",
            body["error"]["message"].as_str().unwrap_or("")
        ));
        t.check(
            status == expected && body["error"]["code"] == expected,
            format!("refused with {expected}, ArcGIS-shaped"),
        )?;
    }
    t.check(
        fake.calls().endpoint(Endpoint::ContentItem) == items + 1,
        "nothing refused reached the portal, and no token left the gateway for it",
    )?;

    // ---------------------------------------------------------------- sign-out
    t.step("Sign-out: revoke the refresh token at the portal and delete the session");
    let last_access = manager.token().await?;
    let before = stored_refresh_token(&*store, "tour:jdoe").await?;
    let report = Account::new(manager.clone(), http.clone()).sign_out().await;
    t.check(
        matches!(report.revoked, Ok(Revoked::RefreshToken)),
        "the refresh token was revoked",
    )?;
    t.check(
        matches!(report.deleted, Ok(true)),
        "the session was deleted from the store",
    )?;
    t.check(
        oauth
            .refresh(&RefreshToken::new(before, clock.now(), None))
            .await
            .is_err(),
        "the portal refuses the revoked refresh token",
    )?;
    let plain = reqwest::Client::builder().no_proxy().build()?;
    let with_old = plain
        .post(fake.secured_item_url("tour-item"))
        .form(&[
            ("f", "json"),
            ("token", last_access.secret().expose_secret()),
        ])
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    t.check(
        with_old["error"]["code"] == 498,
        "and its access tokens went with it (498)",
    )?;
    let after = manager.token().await;
    t.check(
        after.as_ref().is_err_and(|e| e.kind().needs_sign_in()),
        "the manager now says: sign in again",
    )?;
    t.check(
        !store
            .list("tour:jdoe")
            .await?
            .contains(&"tour:jdoe".to_owned()),
        "the store no longer has the user's session",
    )?;

    println!("\nWhat the portal saw:");
    let calls = fake.calls();
    for (what, n) in [
        ("authorize", calls.endpoint(Endpoint::Authorize)),
        (
            "token: client_credentials",
            calls.token(Grant::ClientCredentials),
        ),
        (
            "token: authorization_code",
            calls.token(Grant::AuthorizationCode),
        ),
        // Two of these are the tour's own checks that dead refresh tokens are refused.
        ("token: refresh_token", calls.token(Grant::RefreshToken)),
        (
            "token: exchange_refresh_token",
            calls.token(Grant::ExchangeRefreshToken),
        ),
        ("generateToken", calls.endpoint(Endpoint::GenerateToken)),
        ("revokeToken", calls.endpoint(Endpoint::RevokeToken)),
        ("secured item", calls.endpoint(Endpoint::ContentItem)),
        ("server calls", calls.server_total(SERVER_NAME)),
    ] {
        println!("   {what:<30} {n}");
    }
    t.check(
        calls.secrets_in_url() == 0,
        "no token or secret was ever sent in a URL",
    )?;
    Ok(t.checks)
}

/// How long a token lives from `now`.
fn lifetime(token: &AccessToken, now: Timestamp) -> Duration {
    lifetime_of(token.expires_at(), now)
}

fn lifetime_of(expires: Timestamp, now: Timestamp) -> Duration {
    expires.saturating_duration_since(now)
}

/// Whether a lifetime is `expected`, give or take a minute (ArcGIS answers
/// `1209599` seconds for two weeks, for example).
fn about(lifetime: Duration, expected: Duration) -> bool {
    lifetime.abs_diff(expected) <= Duration::from_secs(60)
}

/// Whether the store file contains `text` anywhere.
fn file_contains(path: &Path, text: &str) -> Result<bool, BoxError> {
    Ok(std::fs::read_to_string(path)?.contains(text))
}

async fn stored_access_token(
    store: &dyn SessionStore,
    key: &str,
) -> Result<Option<String>, BoxError> {
    let stored = store.load(key).await?.ok_or("no session in the store")?;
    Ok(stored
        .record
        .access_token
        .map(|t| t.expose_secret().to_owned()))
}

async fn stored_refresh_token(
    store: &dyn SessionStore,
    key: &str,
) -> Result<SecretString, BoxError> {
    let stored = store.load(key).await?.ok_or("no session in the store")?;
    Ok(stored
        .record
        .refresh_token
        .ok_or("no refresh token in the store")?)
}

/// GETs `url` through the middleware and reads the JSON answer.
async fn get_json(client: &ClientWithMiddleware, url: &str) -> Result<serde_json::Value, BoxError> {
    Ok(client.get(url).send().await?.json().await?)
}
