//! `RedisStore` against a real loopback `redis-server` (see
//! `arcgis_auth_storage::test_util::RedisServer`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::Duration;

use arcgis_auth_core::{Portal, Timestamp};
use arcgis_auth_storage::test_util::{RedisServer, TlsRedisServer};
use arcgis_auth_storage::{
    ChangeEvent, ChangeKind, RedisStore, SaveMode, SessionKind, SessionRecord, SessionStore,
    StoreErrorKind, conformance,
};
use tokio::sync::broadcast;

async fn store(server: &RedisServer, prefix: &str) -> RedisStore {
    RedisStore::builder(server.url())
        .prefix(prefix)
        .connect()
        .await
        .unwrap()
}

/// Removes what a test left under `prefix` (matters on a shared server).
async fn clean(server: &RedisServer, prefix: &str) {
    let mut conn = raw(server).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    for key in keys {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// How many connections the server has subscribed to `store`'s change channel.
async fn subscribers(conn: &mut redis::aio::MultiplexedConnection, store: &RedisStore) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(format!("{}:changes", store.prefix()))
        .query_async(conn)
        .await
        .unwrap();
    n
}

/// Waits until the server counts `want` subscribers of `store`'s channel.
async fn wait_for_subscribers(
    conn: &mut redis::aio::MultiplexedConnection,
    store: &RedisStore,
    want: i64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = subscribers(conn, store).await;
        if n == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} subscribers of the change channel, not {want}, after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next event, which must come within `wait`.
async fn next_event(events: &mut broadcast::Receiver<ChangeEvent>, wait: Duration) -> ChangeEvent {
    tokio::time::timeout(wait, events.recv())
        .await
        .unwrap_or_else(|_| panic!("no change event within {wait:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_passes_the_conformance_suite() {
    let Some(server) = RedisServer::for_test("redis_store_passes_the_conformance_suite") else {
        return;
    };
    let prefix = RedisServer::unique_prefix();
    // Separate connections stand in for separate processes.
    let handles = [
        store(&server, &prefix).await,
        store(&server, &prefix).await,
        store(&server, &prefix).await,
    ];
    let next = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(move || {
        handles[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % handles.len()].clone()
    })
    .await;
    clean(&server, &prefix).await;
}

#[tokio::test]
async fn other_processes_changes_arrive_as_events() {
    let Some(server) = RedisServer::for_test("other_processes_changes_arrive_as_events") else {
        return;
    };
    let prefix = RedisServer::unique_prefix();
    let a = store(&server, &prefix).await;
    let b = store(&server, &prefix).await;
    let elsewhere = store(&server, &RedisServer::unique_prefix()).await;
    let mut a_events = a.subscribe();
    let mut b_events = b.subscribe();
    // Remote changes are delivered from the resync that confirms the subscription on.
    for events in [&mut a_events, &mut b_events] {
        let first = next_event(events, Duration::from_secs(5)).await;
        assert_eq!(first, ChangeEvent::resync());
    }

    let record = conformance::sample_record();
    elsewhere
        .save("k", &record, SaveMode::Create)
        .await
        .unwrap();
    let v1 = b.save("k", &record, SaveMode::Create).await.unwrap();
    let v2 = b
        .save("k", &record, SaveMode::Update(v1.clone()))
        .await
        .unwrap();
    b.delete("k", None).await.unwrap();

    for events in [&mut a_events, &mut b_events] {
        let mut got = Vec::new();
        for _ in 0..3 {
            let e = next_event(events, Duration::from_secs(5)).await;
            got.push((e.key, e.kind, e.version));
        }
        assert_eq!(
            got,
            [
                ("k".to_owned(), ChangeKind::Created, Some(v1.clone())),
                ("k".to_owned(), ChangeKind::Updated, Some(v2.clone())),
                ("k".to_owned(), ChangeKind::Deleted, None),
            ]
        );
    }
    // b's own writes were delivered once, not again from the channel; the
    // other prefix's write never showed up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(b_events.try_recv().is_err());
    assert!(a_events.try_recv().is_err());
    clean(&server, &prefix).await;
    clean(&server, elsewhere.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_subscription_starts_with_the_first_subscriber_and_ends_with_the_store() {
    let Some(server) = RedisServer::for_test(
        "the_change_subscription_starts_with_the_first_subscriber_and_ends_with_the_store",
    ) else {
        return;
    };
    let prefix = RedisServer::unique_prefix();
    let mut conn = raw(&server).await;
    let s = store(&server, &prefix).await;
    let other = store(&server, &prefix).await;

    // Nobody subscribed: no subscriber connection, though the store saves
    // (and so publishes) and another process publishes too.
    let record = conformance::sample_record();
    s.save("k", &record, SaveMode::Create).await.unwrap();
    other.save("k", &record, SaveMode::Overwrite).await.unwrap();
    assert!(format!("{s:?}").contains("listening: false"), "{s:?}");
    assert_eq!(subscribers(&mut conn, &s).await, 0);

    // The first subscriber starts it; a resync confirms it.
    let mut first = s.subscribe();
    assert!(format!("{s:?}").contains("listening: true"), "{s:?}");
    // Many more, at once, from clones on runtime tasks and from plain threads
    // outside any runtime: still one subscription.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.subscribe() }));
    }
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || s.subscribe())
        })
        .collect();
    let mut receivers = Vec::new();
    for task in tasks {
        receivers.push(task.await.unwrap());
    }
    for thread in threads {
        receivers.push(thread.join().unwrap());
    }
    assert_eq!(
        next_event(&mut first, Duration::from_secs(5)).await,
        ChangeEvent::resync()
    );
    wait_for_subscribers(&mut conn, &s, 1).await;

    // Other processes' changes arrive; own echoes are not delivered twice.
    let v = other.save("k", &record, SaveMode::Overwrite).await.unwrap();
    let e = next_event(&mut first, Duration::from_secs(5)).await;
    assert_eq!(
        (e.key.as_str(), e.kind, e.version),
        ("k", ChangeKind::Updated, Some(v))
    );
    let v = s.save("k", &record, SaveMode::Overwrite).await.unwrap();
    let e = next_event(&mut first, Duration::from_secs(5)).await;
    assert_eq!(e.version, Some(v));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(first.try_recv().is_err(), "an echo was delivered");
    assert_eq!(
        subscribers(&mut conn, &s).await,
        1,
        "more than one listener"
    );
    // Each receiver saw at most one resync: one listener, subscribed once.
    for mut r in receivers {
        let mut resyncs = 0;
        while let Ok(e) = r.try_recv() {
            resyncs += usize::from(e.kind == ChangeKind::Resync);
        }
        assert!(resyncs <= 1, "{resyncs} resyncs without a reconnect");
    }

    // Receivers do not keep the store alive: dropping its last clone ends
    // the subscription.
    drop(s);
    wait_for_subscribers(&mut conn, &other, 0).await;
    assert!(matches!(
        first.recv().await,
        Err(broadcast::error::RecvError::Closed)
    ));

    // With remote events off, subscribing never subscribes on the server.
    let quiet = RedisStore::builder(server.url())
        .prefix(&prefix)
        .remote_events(false)
        .connect()
        .await
        .unwrap();
    let mut events = quiet.subscribe();
    let v = quiet.save("k", &record, SaveMode::Overwrite).await.unwrap();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5))
            .await
            .version,
        Some(v)
    );
    other.save("k", &record, SaveMode::Overwrite).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        events.try_recv().is_err(),
        "a remote change or a resync arrived"
    );
    assert_eq!(subscribers(&mut conn, &quiet).await, 0);
    clean(&server, &prefix).await;
}

#[tokio::test]
async fn records_expire_after_their_refresh_token() {
    let Some(server) = RedisServer::for_test("records_expire_after_their_refresh_token") else {
        return;
    };
    let prefix = RedisServer::unique_prefix();
    let s = RedisStore::builder(server.url())
        .prefix(&prefix)
        .ttl_margin(Duration::from_secs(60))
        .connect()
        .await
        .unwrap();
    let mut conn = raw(&server).await;
    let pttl = |key: String| {
        let mut conn = conn.clone();
        async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };

    // Refresh token good for two weeks: expires two weeks and a minute from now.
    let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
    r.expires_at = Some(Timestamp::now() + Duration::from_secs(1800));
    r.refresh_token_expires_at = Some(Timestamp::now() + Duration::from_secs(14 * 86_400));
    s.save("user", &r, SaveMode::Create).await.unwrap();
    let ttl = pttl(s.session_key("user")).await;
    let want = (14 * 86_400 + 60) * 1000;
    assert!((want - 5_000..=want).contains(&ttl), "pttl {ttl}");

    // No known refresh expiry: no TTL (and an update removes an old one).
    r.refresh_token_expires_at = None;
    s.save("user", &r, SaveMode::Overwrite).await.unwrap();
    assert_eq!(pttl(s.session_key("user")).await, -1);

    // Already expired: kept for the margin, not dropped as it is written.
    r.refresh_token_expires_at = Some(Timestamp::now() - Duration::from_secs(3600));
    r.expires_at = None;
    s.save("user", &r, SaveMode::Overwrite).await.unwrap();
    let ttl = pttl(s.session_key("user")).await;
    assert!((55_000..=60_000).contains(&ttl), "pttl {ttl}");
    assert!(s.load("user").await.unwrap().is_some());

    // The lock key carries the lease as PX.
    let lease = s
        .refresh_lock()
        .unwrap()
        .try_acquire("user", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let ttl = pttl(s.lock_key("user")).await;
    assert!((25_000..=30_000).contains(&ttl), "lock pttl {ttl}");
    let holder: String = redis::cmd("GET")
        .arg(s.lock_key("user"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(holder, lease.holder);
    clean(&server, &prefix).await;
}

#[tokio::test]
async fn foreign_data_is_corrupt_and_left_untouched() {
    let Some(server) = RedisServer::for_test("foreign_data_is_corrupt_and_left_untouched") else {
        return;
    };
    let prefix = RedisServer::unique_prefix();
    let s = store(&server, &prefix).await;
    let mut conn = raw(&server).await;
    let record = conformance::sample_record();

    let _: () = redis::cmd("SET")
        .arg(s.session_key("string"))
        .arg("very-secret-access")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(s.session_key("foreign-hash"))
        .arg("owner")
        .arg("someone else")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(s.session_key("bad-record"))
        .arg("v")
        .arg("1")
        .arg("r")
        .arg("{\"format\":1,\"kind\":\"user\",\"portal\":\"very-secret-access\"")
        .query_async(&mut conn)
        .await
        .unwrap();

    for key in ["string", "foreign-hash", "bad-record"] {
        let err = s.load(key).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{key}: {err}");
        assert!(!format!("{err} {err:?}").contains("very-secret-access"));
    }
    for key in ["string", "foreign-hash"] {
        for err in [
            s.save(key, &record, SaveMode::Overwrite).await.unwrap_err(),
            s.delete(key, None).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{key}: {err}");
        }
    }
    let still: String = redis::cmd("GET")
        .arg(s.session_key("string"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(still, "very-secret-access");
    let owner: String = redis::cmd("HGET")
        .arg(s.session_key("foreign-hash"))
        .arg("owner")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(owner, "someone else");
    clean(&server, &prefix).await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // A port nobody listens on: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = RedisStore::builder(format!("redis://:hunter2@127.0.0.1:{port}/"))
        .connection_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.is_transient());
    assert!(!format!("{err} {err:?}").contains("hunter2"));

    let err = RedisStore::connect("not a url with a p@ssw0rd")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::InvalidInput);
    assert!(!format!("{err} {err:?}").contains("p@ssw0rd"));
}

#[tokio::test]
async fn a_server_going_away_is_unavailable_and_coming_back_heals() {
    let Some(mut server) =
        RedisServer::for_test("a_server_going_away_is_unavailable_and_coming_back_heals")
    else {
        return;
    };
    if !server.is_private() {
        return; // Never shut down a server we did not start.
    }
    let s = RedisStore::builder(server.url())
        .prefix(RedisServer::unique_prefix())
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    s.save("k", &conformance::sample_record(), SaveMode::Create)
        .await
        .unwrap();
    let mut events = s.subscribe();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        ChangeEvent::resync()
    );
    server.kill(); // SIGKILL
    let err = s.load("k").await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.is_transient());

    // Back on the same port (empty: no persistence): the same store heals by itself.
    server.restart().unwrap();
    let mut healed = false;
    for _ in 0..50 {
        match s.load("k").await {
            Ok(loaded) => {
                assert!(loaded.is_none(), "the new server starts empty");
                healed = true;
                break;
            }
            Err(e) => {
                assert_eq!(e.kind(), StoreErrorKind::Unavailable, "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(
        healed,
        "the store did not reconnect to the restarted server"
    );
    s.save("k", &conformance::sample_record(), SaveMode::Create)
        .await
        .unwrap();

    // The change subscription came back too, and said so: subscribers get a
    // resync (whatever happened while it was down was missed), after which
    // another process's writes arrive again.
    let mut own = Vec::new();
    let resync = loop {
        let e = next_event(&mut events, Duration::from_secs(20)).await;
        if e.kind == ChangeKind::Resync {
            break e;
        }
        own.push(e); // the save above, delivered locally
    };
    assert_eq!(resync, ChangeEvent::resync());
    assert!(own.iter().all(|e| e.key == "k"), "{own:?}");
    let other = RedisStore::builder(server.url())
        .prefix(s.prefix())
        .connect()
        .await
        .unwrap();
    let v = other
        .save(
            "after-restart",
            &conformance::sample_record(),
            SaveMode::Create,
        )
        .await
        .unwrap();
    let e = loop {
        let e = next_event(&mut events, Duration::from_secs(5)).await;
        if e.key != "k" {
            break e; // past the local event of the save above, if it came after the resync
        }
    };
    assert_eq!(
        (e.key.as_str(), e.kind, e.version),
        ("after-restart", ChangeKind::Created, Some(v)),
        "remote change events did not resume after the restart"
    );
}

// ---- TLS (`rediss://`) -------------------------------------------------

async fn tls_store(server: &TlsRedisServer, prefix: &str) -> RedisStore {
    RedisStore::builder(server.url())
        .prefix(prefix)
        .root_certificates(server.ca_pem().to_vec())
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_over_tls_passes_the_conformance_suite() {
    let Some(server) =
        TlsRedisServer::for_test("redis_store_over_tls_passes_the_conformance_suite")
    else {
        return;
    };
    assert!(server.url().starts_with("rediss://"));
    let prefix = RedisServer::unique_prefix();
    let handles = [
        tls_store(&server, &prefix).await,
        tls_store(&server, &prefix).await,
        tls_store(&server, &prefix).await,
    ];
    // Another process's change arrives through the TLS pub/sub connection.
    let mut events = handles[0].subscribe();
    assert_eq!(
        next_event(&mut events, Duration::from_secs(5)).await,
        ChangeEvent::resync()
    );
    let v = handles[1]
        .save("tls", &conformance::sample_record(), SaveMode::Create)
        .await
        .unwrap();
    let e = next_event(&mut events, Duration::from_secs(5)).await;
    assert_eq!(
        (e.key.as_str(), e.kind, e.version),
        ("tls", ChangeKind::Created, Some(v))
    );
    handles[1].delete("tls", None).await.unwrap();
    drop(events);

    let next = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(move || {
        handles[next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % handles.len()].clone()
    })
    .await;
}

#[tokio::test]
async fn a_server_certificate_that_does_not_verify_is_refused() {
    let Some(server) =
        TlsRedisServer::for_test("a_server_certificate_that_does_not_verify_is_refused")
    else {
        return;
    };
    let url = server.url();
    // Another CA's bundle (on top of the system's roots), and the system's
    // roots alone (which do not hold this test's CA): both refuse the
    // server's certificate.
    let other_ca = RedisStore::builder(url)
        .root_certificates(server.other_ca_pem().to_vec())
        .connection_timeout(Duration::from_secs(2))
        .connect()
        .await;
    let system_roots = RedisStore::builder(url)
        .connection_timeout(Duration::from_secs(2))
        .connect()
        .await;
    for (who, result) in [("other CA", other_ca), ("system roots", system_roots)] {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{who}: {err}");
        let message = err.to_string();
        assert!(
            message.contains("certificate was refused")
                && message.contains("RedisStoreBuilder::root_certificates"),
            "{who}: {message}"
        );
        assert_says_each_thing_once(&err);
    }
    // The right CA, but a name the certificate is not for (it names
    // 127.0.0.1 only): refused too.
    let wrong_name = RedisStore::builder(url.replacen("127.0.0.1", "localhost", 1))
        .root_certificates(server.ca_pem().to_vec())
        .connection_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        wrong_name.kind(),
        StoreErrorKind::Unavailable,
        "{wrong_name}"
    );
    assert!(
        wrong_name.to_string().contains("certificate was refused"),
        "{wrong_name}"
    );
    assert_says_each_thing_once(&wrong_name);
    // The same server, its CA trusted: accepted (so the refusals above were
    // about the CA, not about the server).
    let trusted = tls_store(&server, &RedisServer::unique_prefix()).await;
    assert!(trusted.load("k").await.unwrap().is_none());
}

/// A printed chain of `err` (its message, then each `source()`) says each
/// thing once: no message is repeated inside another.
fn assert_says_each_thing_once(err: &(dyn std::error::Error + 'static)) {
    let mut messages = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        messages.push(cause.to_string());
        next = cause.source();
    }
    for (i, message) in messages.iter().enumerate() {
        for (j, other) in messages.iter().enumerate() {
            assert!(
                i == j || !other.contains(message.as_str()),
                "`{message}` is said again by `{other}`"
            );
        }
    }
}

#[tokio::test]
async fn rediss_to_a_plain_text_server_is_unavailable() {
    let Some(server) = RedisServer::for_test("rediss_to_a_plain_text_server_is_unavailable") else {
        return;
    };
    let url = server.url().replacen("redis://", "rediss://", 1);
    assert!(url.starts_with("rediss://"), "{url}");
    let err = RedisStore::builder(url)
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    assert_says_each_thing_once(&err);
}

#[tokio::test]
async fn tls_settings_that_cannot_work_are_invalid_input() {
    let ca = b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
    let unterminated = b"-----BEGIN CERTIFICATE-----\nTUlJQg==\n";
    // Valid PEM and base64, but its bytes are not a certificate.
    let not_x509 =
        b"-----BEGIN CERTIFICATE-----\nc2VjcmV0LWxvb2tpbmctYnl0ZXM=\n-----END CERTIFICATE-----\n";
    let cases: [(&str, Option<&[u8]>, &str); 7] = [
        ("redis://127.0.0.1:1/", Some(b"irrelevant"), "use rediss://"),
        ("rediss://127.0.0.1:1/#insecure", None, "remove it"),
        ("rediss://127.0.0.1:1/", Some(b""), "holds no certificate"),
        (
            "rediss://127.0.0.1:1/",
            Some(b"just some text"),
            "holds no certificate",
        ),
        ("rediss://127.0.0.1:1/", Some(ca), "not valid PEM"),
        ("rediss://127.0.0.1:1/", Some(unterminated), "not valid PEM"),
        ("rediss://127.0.0.1:1/", Some(not_x509), "trust anchor"),
    ];
    for (url, pem, says) in cases {
        let mut builder = RedisStore::builder(url);
        if let Some(pem) = pem {
            builder = builder.root_certificates(pem);
        }
        let err = builder.connect().await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::InvalidInput, "{url}: {err}");
        assert!(err.to_string().contains(says), "{url} {pem:?}: {err}");
        // The bundle is never quoted (a key file given by mistake stays out of logs).
        let shown = format!("{err} {err:?}");
        for quoted in ["not base64", "c2VjcmV0", "TUlJQg", "some text"] {
            assert!(!shown.contains(quoted), "{url}: {shown}");
        }
    }
}

#[tokio::test]
async fn a_private_cas_bundle_is_trusted_on_top_of_the_system_roots() {
    let Some(server) =
        TlsRedisServer::for_test("a_private_cas_bundle_is_trusted_on_top_of_the_system_roots")
    else {
        return;
    };
    // A bundle of two CAs, the server's second: every certificate of the
    // bundle is trusted, not only the first.
    let mut bundle = server.other_ca_pem().to_vec();
    bundle.extend_from_slice(server.ca_pem());
    let prefix = RedisServer::unique_prefix();
    let store = RedisStore::builder(server.url())
        .prefix(&prefix)
        .root_certificates(bundle)
        .connect()
        .await
        .unwrap();
    let record = conformance::sample_record();
    let v = store
        .save("private-ca", &record, SaveMode::Create)
        .await
        .unwrap();
    let loaded = store.load("private-ca").await.unwrap().unwrap();
    assert_eq!(loaded.version, v);
    assert_eq!(
        serde_json::to_value(&loaded.record).unwrap(),
        serde_json::to_value(&record).unwrap()
    );
    store.delete("private-ca", None).await.unwrap();
}

/// Set (to a URL) only in the child process of
/// [`the_system_roots_stay_trusted_with_a_bundle`].
const CHILD_URL_VAR: &str = "ARCGIS_AUTH_TEST_SYSTEM_ROOTS_CHILD_URL";
/// The path of the PEM bundle the child trusts.
const CHILD_BUNDLE_VAR: &str = "ARCGIS_AUTH_TEST_SYSTEM_ROOTS_CHILD_BUNDLE";

#[tokio::test]
async fn the_system_roots_stay_trusted_with_a_bundle() {
    let Some(server) = TlsRedisServer::for_test("the_system_roots_stay_trusted_with_a_bundle")
    else {
        return;
    };
    // The child process sees the server's CA as a system root
    // (`SSL_CERT_FILE`) and is given only the other CA's bundle: it connects
    // only if the bundle is added to the system's roots, not put in their place.
    let dir = tempfile::tempdir().unwrap();
    let system = dir.path().join("system-roots.pem");
    std::fs::write(&system, server.ca_pem()).unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, server.other_ca_pem()).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "--ignored", "--nocapture", "system_roots_child"])
        .env("SSL_CERT_FILE", &system)
        .env_remove("SSL_CERT_DIR")
        .env(CHILD_URL_VAR, server.url())
        .env(CHILD_BUNDLE_VAR, &bundle)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The child of [`the_system_roots_stay_trusted_with_a_bundle`], which runs it.
#[tokio::test]
#[ignore = "run by the_system_roots_stay_trusted_with_a_bundle, with its environment"]
async fn system_roots_child() {
    // Outside its parent (`--include-ignored`), there is nothing to check.
    let Ok(url) = std::env::var(CHILD_URL_VAR) else {
        return;
    };
    let bundle = std::fs::read(std::env::var_os(CHILD_BUNDLE_VAR).unwrap()).unwrap();
    let store = RedisStore::builder(url)
        .prefix(RedisServer::unique_prefix())
        .root_certificates(bundle)
        .connect()
        .await
        .unwrap();
    assert!(store.load("k").await.unwrap().is_none());
}
