//! The conformance suite: async checks every [`SessionStore`] must pass.
//!
//! Run [`run_all`] from a test of your backend; each check panics with a
//! message starting `conformance:` when the store breaks the contract.
//!
//! ```
//! use arcgis_auth_storage::{MemoryStore, conformance};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_time().build().unwrap().block_on(async {
//! // `make` hands out handles on one and the same stored data.
//! let store = MemoryStore::new();
//! conformance::run_all(move || store.clone()).await;
//! # });
//! ```
//!
//! The checks use keys under a fresh random prefix (`conformance/<random>/`),
//! so they can run against a store that already holds data, and several runs
//! can share one store. They need a tokio runtime with the time driver enabled
//! (`#[tokio::test]` has it); the lease check sleeps for real (under a
//! second), so give stores that take an injected clock the system clock.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, Portal, SecretString, Timestamp};
use tokio::sync::broadcast;

use crate::error::{StoreError, StoreErrorKind, StoreResult};
use crate::id::random_id;
use crate::record::{ServerTokenRecord, SessionKind, SessionRecord};
use crate::store::{ChangeEvent, ChangeKind, SaveMode, SessionStore, Version};

/// How many writers [`concurrent_updates`] runs at once.
pub const CONCURRENT_WRITERS: usize = 64;

/// How long the lease checks hold a lease for.
pub const SHORT_LEASE: Duration = Duration::from_millis(300);

/// How long to wait for a change event before calling it missing.
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// Runs every check against handles from `make`.
///
/// Every call of `make` must return a handle on the same stored data: a clone
/// of one store, or a new handle on the same file or database. Handles from
/// separate calls stand in for separate processes in the concurrency and lock
/// checks.
///
/// # Panics
///
/// When the store breaks the contract, with a message saying how.
pub async fn run_all<S, F>(make: F)
where
    S: SessionStore + Clone + 'static,
    F: Fn() -> S,
{
    round_trip(&make()).await;
    create_conflicts(&make()).await;
    update_conflicts(&make()).await;
    delete_semantics(&make()).await;
    list_by_prefix(&make()).await;
    invalid_keys_rejected(&make()).await;
    odd_records_round_trip(&make()).await;
    change_events(&make()).await;
    no_secrets_in_errors(&make()).await;
    concurrent_updates(&make).await;
    refresh_lock_exclusion(&make(), &make()).await;
    lease_expiry(&make()).await;
    lease_extension(&make(), &make()).await;
}

/// A fresh key prefix for one check.
fn namespace() -> String {
    format!("conformance/{}/", random_id())
}

fn ok<T>(result: StoreResult<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("conformance: {what} failed: {e} ({:?})", e.kind()),
    }
}

fn expect_err<T: Debug>(result: StoreResult<T>, kind: StoreErrorKind, what: &str) -> StoreError {
    match result {
        Ok(v) => panic!("conformance: {what} succeeded ({v:?}) but must fail with {kind:?}"),
        Err(e) if e.kind() == kind => e,
        Err(e) => panic!(
            "conformance: {what} failed with {:?} ({e}) but must fail with {kind:?}",
            e.kind()
        ),
    }
}

/// A record with every field set.
pub fn sample_record() -> SessionRecord {
    let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
    r.client_id = Some("conformance-client".into());
    r.username = Some("conformance-user".into());
    r.access_token = Some(SecretString::from(format!("access-{}", random_id())));
    r.expires_at = Some(Timestamp::now() + Duration::from_secs(1800));
    r.ssl = true;
    r.refresh_token = Some(SecretString::from(format!("refresh-{}", random_id())));
    r.refresh_token_issued_at = Some(Timestamp::now());
    r.refresh_token_expires_at = Some(Timestamp::now() + Duration::from_secs(14 * 86_400));
    r.redirect_uri = Some("http://127.0.0.1:7777/callback".into());
    r.server_tokens.insert(
        "https://gis.example.com/server".into(),
        ServerTokenRecord {
            token: SecretString::from(format!("server-{}", random_id())),
            expires_at: Timestamp::now() + Duration::from_secs(3600),
            ssl: true,
        },
    );
    r.updated_at = Some(Timestamp::now());
    r
}

/// The record as JSON, secrets included, for exact comparisons.
fn as_json(record: &SessionRecord) -> serde_json::Value {
    match serde_json::to_value(record) {
        Ok(v) => v,
        Err(e) => panic!("conformance: a record failed to serialise: {e}"),
    }
}

fn assert_same(got: &SessionRecord, want: &SessionRecord, what: &str) {
    assert!(
        as_json(got) == as_json(want),
        "conformance: {what}: the loaded record differs from the saved one"
    );
}

/// Save, load, overwrite: what was saved comes back exactly, with the version
/// the save returned; every save makes a new version.
pub async fn round_trip<S: SessionStore + ?Sized>(store: &S) {
    let ns = namespace();
    let key = format!("{ns}session");
    assert!(
        ok(store.load(&key).await, "load of a missing key").is_none(),
        "conformance: a missing key loaded as Some"
    );
    let first = sample_record();
    let v1 = ok(store.save(&key, &first, SaveMode::Create).await, "create");
    let loaded = ok(store.load(&key).await, "load").unwrap_or_else(|| {
        panic!("conformance: a created record loaded as None");
    });
    assert_eq!(
        loaded.version, v1,
        "conformance: load must report the version save returned"
    );
    assert_same(&loaded.record, &first, "round trip");

    let second = sample_record();
    let v2 = ok(
        store.save(&key, &second, SaveMode::Overwrite).await,
        "overwrite",
    );
    assert_ne!(v1, v2, "conformance: every save must produce a new version");
    let v3 = ok(
        store
            .save(&key, &second, SaveMode::Update(v2.clone()))
            .await,
        "update",
    );
    assert_ne!(
        v2, v3,
        "conformance: saving an identical record must still produce a new version"
    );
    let loaded = ok(store.load(&key).await, "load").unwrap_or_else(|| {
        panic!("conformance: an updated record loaded as None");
    });
    assert_eq!(loaded.version, v3);
    assert_same(&loaded.record, &second, "after update");

    let fresh = format!("{ns}fresh");
    ok(
        store.save(&fresh, &first, SaveMode::Overwrite).await,
        "overwrite of a missing key",
    );
    assert!(ok(store.load(&fresh).await, "load").is_some());
    ok(store.delete(&key, None).await, "delete");
    ok(store.delete(&fresh, None).await, "delete");
}

/// `Create` fails with a conflict when a record exists and leaves it alone.
pub async fn create_conflicts<S: SessionStore + ?Sized>(store: &S) {
    let key = format!("{}session", namespace());
    let first = sample_record();
    let v1 = ok(store.save(&key, &first, SaveMode::Create).await, "create");
    expect_err(
        store.save(&key, &sample_record(), SaveMode::Create).await,
        StoreErrorKind::Conflict,
        "a second create of the same key",
    );
    let loaded = ok(store.load(&key).await, "load").unwrap_or_else(|| {
        panic!("conformance: the record vanished after a failed create");
    });
    assert_eq!(
        loaded.version, v1,
        "conformance: a failed create changed the version"
    );
    assert_same(&loaded.record, &first, "after a failed create");
    ok(store.delete(&key, None).await, "delete");
}

/// `Update` fails with a conflict on a stale version, after a delete, on a key
/// that never existed, and when a deleted key was created again (versions are
/// never reused).
pub async fn update_conflicts<S: SessionStore + ?Sized>(store: &S) {
    let ns = namespace();
    let key = format!("{ns}session");
    let v1 = ok(
        store.save(&key, &sample_record(), SaveMode::Create).await,
        "create",
    );
    let v2 = ok(
        store
            .save(&key, &sample_record(), SaveMode::Update(v1.clone()))
            .await,
        "update",
    );
    expect_err(
        store
            .save(&key, &sample_record(), SaveMode::Update(v1.clone()))
            .await,
        StoreErrorKind::Conflict,
        "an update naming a stale version",
    );
    assert_eq!(
        ok(store.load(&key).await, "load").map(|v| v.version),
        Some(v2.clone()),
        "conformance: a failed update changed the record"
    );

    assert!(ok(store.delete(&key, None).await, "delete"));
    expect_err(
        store
            .save(&key, &sample_record(), SaveMode::Update(v2.clone()))
            .await,
        StoreErrorKind::Conflict,
        "an update after the record was deleted",
    );
    assert!(
        ok(store.load(&key).await, "load").is_none(),
        "conformance: a failed update after delete re-created the record"
    );

    // No ABA: the re-created record has a version none of the old ones match.
    let v3 = ok(
        store.save(&key, &sample_record(), SaveMode::Create).await,
        "re-create",
    );
    assert!(
        v3 != v1 && v3 != v2,
        "conformance: a version was reused after delete"
    );
    for stale in [v1, v2] {
        expect_err(
            store
                .save(&key, &sample_record(), SaveMode::Update(stale))
                .await,
            StoreErrorKind::Conflict,
            "an update naming a version from before the delete",
        );
    }

    expect_err(
        store
            .save(
                &format!("{ns}never"),
                &sample_record(),
                SaveMode::Update(v3),
            )
            .await,
        StoreErrorKind::Conflict,
        "an update of a key that never existed",
    );
    expect_err(
        store
            .save(
                &key,
                &sample_record(),
                SaveMode::Update(Version::new("no-such-version")),
            )
            .await,
        StoreErrorKind::Conflict,
        "an update naming a made-up version",
    );
    ok(store.delete(&key, None).await, "delete");
}

/// Delete without a version always deletes; with one, only at that version;
/// deleting nothing is `Ok(false)`.
pub async fn delete_semantics<S: SessionStore + ?Sized>(store: &S) {
    let ns = namespace();
    let key = format!("{ns}session");
    assert!(
        !ok(store.delete(&key, None).await, "delete of a missing key"),
        "conformance: deleting a missing key must return false"
    );
    let v1 = ok(
        store.save(&key, &sample_record(), SaveMode::Create).await,
        "create",
    );
    let v2 = ok(
        store
            .save(&key, &sample_record(), SaveMode::Overwrite)
            .await,
        "overwrite",
    );
    expect_err(
        store.delete(&key, Some(&v1)).await,
        StoreErrorKind::Conflict,
        "a delete naming a stale version",
    );
    assert!(
        ok(store.load(&key).await, "load").is_some(),
        "conformance: a failed delete removed the record"
    );
    assert!(ok(
        store.delete(&key, Some(&v2)).await,
        "delete at the current version"
    ));
    assert!(
        ok(store.load(&key).await, "load").is_none(),
        "conformance: deleted record loads"
    );
    expect_err(
        store.delete(&key, Some(&v2)).await,
        StoreErrorKind::Conflict,
        "a versioned delete of a record someone else deleted",
    );

    ok(
        store.save(&key, &sample_record(), SaveMode::Create).await,
        "create",
    );
    assert!(ok(store.delete(&key, None).await, "unconditional delete"));
    assert!(ok(store.load(&key).await, "load").is_none());
    assert!(!ok(store.delete(&key, None).await, "second delete"));
}

/// `list` returns exactly the keys under a prefix, sorted, and treats glob
/// characters in the prefix literally.
pub async fn list_by_prefix<S: SessionStore + ?Sized>(store: &S) {
    let ns = namespace();
    let names = [
        "a/1", "a/2", "a/10", "ab", "b/1", "x*y", "x?z", "x[1]", "x\\y", "ü/🦀", "z",
    ];
    let record = sample_record();
    for name in names {
        ok(
            store
                .save(&format!("{ns}{name}"), &record, SaveMode::Create)
                .await,
            "create",
        );
    }
    let list = |prefix: &str| list_under(store, &ns, prefix.to_owned());
    let mut all: Vec<&str> = names.to_vec();
    all.sort_unstable();
    assert_eq!(
        list("").await,
        all,
        "conformance: list of the whole namespace"
    );
    assert_eq!(
        list("a/").await,
        ["a/1", "a/10", "a/2"],
        "conformance: list(\"a/\")"
    );
    assert_eq!(
        list("a").await,
        ["a/1", "a/10", "a/2", "ab"],
        "conformance: list(\"a\")"
    );
    assert_eq!(
        list("x*").await,
        ["x*y"],
        "conformance: `*` in a prefix is not a wildcard"
    );
    assert_eq!(
        list("x?").await,
        ["x?z"],
        "conformance: `?` in a prefix is not a wildcard"
    );
    assert_eq!(
        list("x[").await,
        ["x[1]"],
        "conformance: `[` in a prefix is not a pattern"
    );
    assert_eq!(
        list("x\\").await,
        ["x\\y"],
        "conformance: `\\` in a prefix is literal"
    );
    assert_eq!(list("ü/").await, ["ü/🦀"]);
    assert!(list("nothing").await.is_empty());

    let everything = ok(store.list("").await, "list(\"\")");
    assert!(
        everything.windows(2).all(|w| w[0] < w[1]),
        "conformance: list must be sorted and without duplicates"
    );
    assert!(everything.contains(&format!("{ns}z")));

    for name in names {
        ok(store.delete(&format!("{ns}{name}"), None).await, "delete");
    }
    assert!(
        list("").await.is_empty(),
        "conformance: deleted keys are still listed"
    );
}

/// The keys under `ns` + `prefix`, with `ns` cut off.
async fn list_under<S: SessionStore + ?Sized>(store: &S, ns: &str, prefix: String) -> Vec<String> {
    ok(store.list(&format!("{ns}{prefix}")).await, "list")
        .into_iter()
        .map(|k| match k.strip_prefix(ns) {
            Some(rest) => rest.to_owned(),
            None => panic!("conformance: list returned a key outside the prefix"),
        })
        .collect()
}

/// Empty keys, overlong keys and keys with control characters are refused
/// with [`StoreErrorKind::InvalidInput`] by every operation.
pub async fn invalid_keys_rejected<S: SessionStore + ?Sized>(store: &S) {
    let long = "k".repeat(513);
    let max = format!("{}{}", namespace(), "m".repeat(512 - 45));
    let bad = ["", "a\nb", "tab\there", "nul\0", "\u{7f}", long.as_str()];
    let record = sample_record();
    for key in bad {
        let what = format!("an operation on the invalid key {key:?}");
        expect_err(store.load(key).await, StoreErrorKind::InvalidInput, &what);
        expect_err(
            store.save(key, &record, SaveMode::Overwrite).await,
            StoreErrorKind::InvalidInput,
            &what,
        );
        expect_err(
            store.delete(key, None).await,
            StoreErrorKind::InvalidInput,
            &what,
        );
        if let Some(lock) = store.refresh_lock() {
            expect_err(
                lock.try_acquire(key, SHORT_LEASE).await,
                StoreErrorKind::InvalidInput,
                &what,
            );
        }
    }
    // The longest valid key works.
    assert!(max.len() <= 512);
    ok(
        store.save(&max, &record, SaveMode::Create).await,
        "save under a 512-byte key",
    );
    assert!(ok(store.load(&max).await, "load").is_some());
    ok(store.delete(&max, None).await, "delete");
}

/// A record with unicode everywhere, 8 KiB tokens, many server tokens, extreme
/// timestamps and unknown fields (kept verbatim) survives a round trip.
pub async fn odd_records_round_trip<S: SessionStore + ?Sized>(store: &S) {
    let ns = namespace();
    let token_8k: String = "Tok-_.~+/=".chars().cycle().take(8 * 1024).collect();
    let unicode_8k: String = "ä山🦀\"\\'<>&".chars().cycle().take(8 * 1024).collect();
    let portal = match Portal::parse("https://gis.example.com/portal/sharing/rest") {
        Ok(p) => p,
        Err(e) => panic!("conformance: portal parse failed: {e}"),
    };
    let mut r = SessionRecord::new(portal, SessionKind::GenerateToken);
    r.username = Some("Zoë Åström 山田太郎 🦀 \"quoted\" back\\slash\u{200d}".into());
    r.client_id = Some("client-ü".into());
    r.access_token = Some(SecretString::from(token_8k.clone()));
    r.refresh_token = Some(SecretString::from(unicode_8k.clone()));
    r.expires_at = Some(Timestamp::MAX);
    r.refresh_token_issued_at = Some(Timestamp::from_unix_millis(i64::MIN));
    r.refresh_token_expires_at = Some(Timestamp::MAX);
    r.referer = Some("https://app.example.com/päth?q=1&r=ü".into());
    for i in 0..50 {
        r.server_tokens.insert(
            format!("https://server{i}.example.com/arcgis/ünï"),
            ServerTokenRecord {
                token: SecretString::from(format!("{i}-{token_8k}")),
                expires_at: Timestamp::from_unix_millis(i64::from(i) * 1_000_000_007),
                ssl: i % 2 == 0,
            },
        );
    }
    r.extra.insert(
        "from_a_newer_release".into(),
        serde_json::json!({
            "nested": [1, 2.5, null, true, "x", {"deep": ["ü", "🦀"]}],
            "big": u64::MAX,
            "negative": i64::MIN,
            "float": 1.0e300,
            "empty": {}
        }),
    );
    r.extra
        .insert("z_unicode_ключ".into(), serde_json::json!("значение"));

    for key in [
        format!("{ns}user/ünïcödé/🦀"),
        format!("{ns}with spaces and \"quotes\""),
        format!("{ns}glob*?[chars]"),
    ] {
        let v = ok(
            store.save(&key, &r, SaveMode::Create).await,
            "create of an odd record",
        );
        let loaded = ok(store.load(&key).await, "load of an odd record")
            .unwrap_or_else(|| panic!("conformance: an odd record loaded as None"));
        assert_eq!(loaded.version, v);
        assert_same(&loaded.record, &r, "odd record");
        assert_eq!(
            loaded
                .record
                .access_token
                .as_ref()
                .map(|t| t.expose_secret().len()),
            Some(token_8k.len())
        );
        assert_eq!(
            loaded.record.extra.get("from_a_newer_release"),
            r.extra.get("from_a_newer_release"),
            "conformance: unknown fields must be kept"
        );
        ok(store.delete(&key, None).await, "delete");
    }
}

/// Receives events until one for `key` arrives, skipping other keys (the store
/// may be shared with other writers).
async fn next_event_for(events: &mut broadcast::Receiver<ChangeEvent>, key: &str) -> ChangeEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(e) if e.key == key => return e,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    panic!("conformance: the event receiver lagged by {n} events")
                }
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("conformance: the event channel closed")
                }
            }
        }
    };
    match tokio::time::timeout(EVENT_WAIT, wait).await {
        Ok(e) => e,
        Err(_) => panic!("conformance: no change event for `{key}` within {EVENT_WAIT:?}"),
    }
}

/// Creates, updates and deletes produce one event each, in order, with the new
/// version; failed saves and deletes produce none.
pub async fn change_events<S: SessionStore + ?Sized>(store: &S) {
    let ns = namespace();
    let key = format!("{ns}session");
    let mut events = store.subscribe();
    let v1 = ok(
        store.save(&key, &sample_record(), SaveMode::Create).await,
        "create",
    );
    let _ = store.save(&key, &sample_record(), SaveMode::Create).await;
    let v2 = ok(
        store
            .save(&key, &sample_record(), SaveMode::Update(v1.clone()))
            .await,
        "update",
    );
    let _ = store
        .save(&key, &sample_record(), SaveMode::Update(v1.clone()))
        .await;
    let v3 = ok(
        store
            .save(&key, &sample_record(), SaveMode::Overwrite)
            .await,
        "overwrite",
    );
    let _ = store.delete(&key, Some(&v1)).await;
    ok(store.delete(&key, None).await, "delete");
    let _ = store.delete(&key, None).await;
    let v4 = ok(
        store
            .save(&key, &sample_record(), SaveMode::Overwrite)
            .await,
        "overwrite",
    );
    ok(store.delete(&key, Some(&v4)).await, "delete");

    let expected = [
        (ChangeKind::Created, Some(v1)),
        (ChangeKind::Updated, Some(v2)),
        (ChangeKind::Updated, Some(v3)),
        (ChangeKind::Deleted, None),
        (ChangeKind::Created, Some(v4)),
        (ChangeKind::Deleted, None),
    ];
    for (i, (kind, version)) in expected.into_iter().enumerate() {
        let event = next_event_for(&mut events, &key).await;
        assert_eq!(
            (&event.kind, &event.version),
            (&kind, &version),
            "conformance: change event #{i} is wrong (failed operations must not send events)"
        );
    }
}

/// No error and no `Debug` output contains a token: conflicts, invalid keys
/// and corrupt input say what happened without quoting secrets.
pub async fn no_secrets_in_errors<S: SessionStore + ?Sized>(store: &S) {
    let ns = namespace();
    let key = format!("{ns}session");
    let record = sample_record();
    let secrets: Vec<String> = [&record.access_token, &record.refresh_token]
        .into_iter()
        .flatten()
        .map(|s| s.expose_secret().to_owned())
        .chain(
            record
                .server_tokens
                .values()
                .map(|t| t.token.expose_secret().to_owned()),
        )
        .collect();
    let check = |what: &str, text: String| {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "conformance: {what} contains a token: {text}"
            );
        }
    };

    let v1 = ok(store.save(&key, &record, SaveMode::Create).await, "create");
    let mut errors = vec![
        store.save(&key, &record, SaveMode::Create).await.err(),
        store
            .save(&key, &record, SaveMode::Update(Version::new("stale")))
            .await
            .err(),
        store
            .save("bad\nkey", &record, SaveMode::Overwrite)
            .await
            .err(),
        store.delete(&key, Some(&Version::new("stale"))).await.err(),
    ];
    let mut corrupt = record.to_json().unwrap_or_default();
    corrupt.truncate(corrupt.len() / 2);
    errors.push(SessionRecord::from_json(&corrupt).err());
    let wrong_type = serde_json::json!({
        "format": 1, "portal": secrets.first(), "kind": "user", "access_token": 5
    });
    errors.push(SessionRecord::from_json(&wrong_type.to_string()).err());
    for (i, e) in errors.into_iter().enumerate() {
        let e = e.unwrap_or_else(|| panic!("conformance: error case #{i} did not fail"));
        check("an error's Display", e.to_string());
        check("an error's Debug", format!("{e:?}"));
    }

    let loaded = ok(store.load(&key).await, "load");
    check("a loaded record's Debug", format!("{loaded:?}"));
    check("the store's Debug", format!("{store:?}"));
    let mut events = store.subscribe();
    ok(
        store.save(&key, &record, SaveMode::Update(v1)).await,
        "update",
    );
    check(
        "a change event",
        format!("{:?}", next_event_for(&mut events, &key).await),
    );
    ok(store.delete(&key, None).await, "delete");
}

/// [`CONCURRENT_WRITERS`] tasks on several handles each add themselves to one
/// record with load → modify → `Update`, retrying on conflict: the final record
/// holds every writer (no lost update) and other errors never happen.
pub async fn concurrent_updates<S, F>(make: F)
where
    S: SessionStore + Clone + 'static,
    F: Fn() -> S,
{
    let key = format!("{}counter", namespace());
    let handles: Vec<S> = (0..4).map(|_| make()).collect();
    let mut record = sample_record();
    record.extra.insert("count".into(), serde_json::json!(0));
    record.extra.insert("writers".into(), serde_json::json!([]));
    ok(
        handles[0].save(&key, &record, SaveMode::Create).await,
        "create",
    );

    let mut tasks = tokio::task::JoinSet::new();
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CONCURRENT_WRITERS));
    for writer in 0..CONCURRENT_WRITERS {
        let store = handles[writer % handles.len()].clone();
        let key = key.clone();
        let start = std::sync::Arc::clone(&start);
        tasks.spawn(async move {
            start.wait().await;
            let mut conflicts = 0u64;
            loop {
                let current = match store.load(&key).await {
                    Ok(Some(v)) => v,
                    Ok(None) => panic!("conformance: the shared record vanished"),
                    Err(e) => panic!("conformance: concurrent load failed: {e}"),
                };
                // Let the other writers run between the read and the write, as a
                // real refresh would: a store without compare-and-swap loses updates.
                tokio::task::yield_now().await;
                let mut record = current.record;
                let count = record
                    .extra
                    .get("count")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or_else(|| panic!("conformance: the counter field was lost"));
                record
                    .extra
                    .insert("count".into(), serde_json::json!(count + 1));
                if let Some(serde_json::Value::Array(list)) = record.extra.get_mut("writers") {
                    list.push(serde_json::json!(writer));
                } else {
                    panic!("conformance: the writers field was lost");
                }
                match store
                    .save(&key, &record, SaveMode::Update(current.version))
                    .await
                {
                    Ok(_) => return conflicts,
                    Err(e) if e.kind() == StoreErrorKind::Conflict => {
                        conflicts += 1;
                        assert!(
                            conflicts < 100_000,
                            "conformance: writer {writer} never got its update in"
                        );
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("conformance: concurrent save failed: {e} ({:?})", e.kind()),
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
            panic!("conformance: a writer task was cancelled");
        }
    }

    let fin = ok(handles[1 % handles.len()].load(&key).await, "final load")
        .unwrap_or_else(|| panic!("conformance: the shared record vanished"));
    assert_eq!(
        fin.record.extra.get("count"),
        Some(&serde_json::json!(CONCURRENT_WRITERS)),
        "conformance: lost update: the counter does not count every writer"
    );
    let writers: BTreeSet<u64> = fin
        .record
        .extra
        .get("writers")
        .and_then(serde_json::Value::as_array)
        .map(|l| l.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(
        writers,
        (0..CONCURRENT_WRITERS as u64).collect::<BTreeSet<_>>(),
        "conformance: lost update: some writers are missing from the record"
    );
    ok(handles[0].delete(&key, None).await, "delete");
}

/// The refresh lock (when offered) excludes other holders on the same and other
/// handles, is per key, ignores releases by anyone but the holder, and can be
/// taken again once released.
pub async fn refresh_lock_exclusion<S: SessionStore + ?Sized>(a: &S, b: &S) {
    let (Some(la), Some(lb)) = (a.refresh_lock(), b.refresh_lock()) else {
        return;
    };
    let ns = namespace();
    let key = format!("{ns}session");
    let lease = Duration::from_secs(30);
    let held = ok(la.try_acquire(&key, lease).await, "acquire")
        .unwrap_or_else(|| panic!("conformance: a free lock could not be taken"));
    assert_eq!(held.key, key);
    assert_eq!(held.duration, lease);
    assert!(
        ok(lb.try_acquire(&key, lease).await, "second acquire").is_none(),
        "conformance: two holders got the same lock"
    );
    assert!(
        ok(
            la.try_acquire(&key, lease).await,
            "second acquire on the same handle"
        )
        .is_none(),
        "conformance: the same handle got a held lock twice"
    );
    let other = ok(
        lb.try_acquire(&format!("{ns}other"), lease).await,
        "acquire",
    )
    .unwrap_or_else(|| panic!("conformance: locks of different keys must not exclude each other"));

    let mut forged = held.clone();
    forged.holder = format!("not-{}", held.holder);
    assert!(
        !ok(lb.release(&forged).await, "release by a wrong holder"),
        "conformance: a wrong holder released the lock"
    );
    assert!(
        ok(lb.try_acquire(&key, lease).await, "acquire").is_none(),
        "conformance: a release by a wrong holder freed the lock"
    );

    assert!(
        ok(lb.release(&held).await, "release"),
        "conformance: the holder could not release"
    );
    assert!(
        !ok(la.release(&held).await, "second release"),
        "conformance: a lease was released twice"
    );
    let again = ok(lb.try_acquire(&key, lease).await, "acquire after release")
        .unwrap_or_else(|| panic!("conformance: a released lock could not be taken again"));
    assert_ne!(
        again.holder, held.holder,
        "conformance: holders must be unique"
    );
    assert!(ok(la.release(&again).await, "release"));
    assert!(ok(la.release(&other).await, "release"));
}

/// A live lease can be extended by its holder only (a heartbeat): it then
/// holds past its first term, on every handle; an expired or released lease
/// cannot be extended. Backends that cannot extend (the trait's default
/// answer, `false`) skip the rest.
pub async fn lease_extension<S: SessionStore + ?Sized>(a: &S, b: &S) {
    let (Some(la), Some(lb)) = (a.refresh_lock(), b.refresh_lock()) else {
        return;
    };
    let key = format!("{}session", namespace());
    let held = ok(la.try_acquire(&key, SHORT_LEASE).await, "acquire")
        .unwrap_or_else(|| panic!("conformance: a free lock could not be taken"));
    let mut forged = held.clone();
    forged.holder = format!("not-{}", held.holder);
    assert!(
        !ok(lb.extend(&forged).await, "extend by a wrong holder"),
        "conformance: a wrong holder extended the lease"
    );
    if !ok(la.extend(&held).await, "extend") {
        // This backend does not extend leases.
        assert!(ok(la.release(&held).await, "release"));
        return;
    }
    // Extended half-way through its term, it outlives the first term.
    tokio::time::sleep(SHORT_LEASE / 2).await;
    assert!(ok(lb.extend(&held).await, "extend on another handle"));
    tokio::time::sleep(SHORT_LEASE / 2 + Duration::from_millis(50)).await;
    assert!(
        ok(lb.try_acquire(&key, SHORT_LEASE).await, "acquire").is_none(),
        "conformance: an extended lease ran out at the end of its first term"
    );
    assert!(ok(la.release(&held).await, "release"));
    assert!(
        !ok(la.extend(&held).await, "extend after release"),
        "conformance: a released lease was extended"
    );
    let next = ok(la.try_acquire(&key, SHORT_LEASE).await, "acquire")
        .unwrap_or_else(|| panic!("conformance: a released lock could not be taken again"));
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(150)).await;
    assert!(
        !ok(la.extend(&next).await, "extend after expiry"),
        "conformance: an expired lease was extended"
    );
}

/// A lease runs out on its own (the holder died): after [`SHORT_LEASE`] the lock
/// can be taken again, and the old holder can no longer release it.
pub async fn lease_expiry<S: SessionStore + ?Sized>(store: &S) {
    let Some(lock) = store.refresh_lock() else {
        return;
    };
    let key = format!("{}session", namespace());
    let first = ok(lock.try_acquire(&key, SHORT_LEASE).await, "acquire")
        .unwrap_or_else(|| panic!("conformance: a free lock could not be taken"));
    assert!(ok(lock.try_acquire(&key, SHORT_LEASE).await, "acquire").is_none());
    tokio::time::sleep(SHORT_LEASE + Duration::from_millis(150)).await;
    let second = ok(
        lock.try_acquire(&key, Duration::from_secs(30)).await,
        "acquire",
    )
    .unwrap_or_else(|| panic!("conformance: an expired lease still holds the lock"));
    assert!(
        !ok(lock.release(&first).await, "release of an expired lease"),
        "conformance: an expired lease reported a successful release"
    );
    assert!(
        ok(lock.try_acquire(&key, SHORT_LEASE).await, "acquire").is_none(),
        "conformance: an expired holder's release freed the new holder's lock"
    );
    assert!(ok(lock.release(&second).await, "release"));
}
