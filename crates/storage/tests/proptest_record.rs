//! Property tests over stored session records, the one parser of the storage
//! crate that reads input it did not write itself (a file edited by hand, a
//! Redis key set by another program, a newer release's format): no input
//! panics, errors never quote the input (it may hold tokens), and every record
//! survives a write and a read unchanged, unknown fields included.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use arcgis_auth_core::{ExposeSecret, Portal, SecretString, Timestamp};
use arcgis_auth_storage::{
    FORMAT_VERSION, ServerTokenRecord, SessionKind, SessionRecord, StoreErrorKind,
};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Field names the record knows; generated unknown fields avoid them.
const KNOWN: &[&str] = &[
    "format",
    "portal",
    "kind",
    "client_id",
    "username",
    "access_token",
    "expires_at",
    "ssl",
    "refresh_token",
    "refresh_token_issued_at",
    "refresh_token_expires_at",
    "redirect_uri",
    "referer",
    "server_tokens",
    "updated_at",
];

fn portal() -> impl Strategy<Value = Portal> {
    prop_oneof![
        Just("https://www.arcgis.com/sharing/rest"),
        Just("https://myorg.maps.arcgis.com"),
        Just("https://gis.example.com/portal/home"),
        Just("http://127.0.0.1:8080/my%20portal/sharing/rest"),
    ]
    .prop_map(|u| Portal::parse(u).unwrap())
}

fn kind() -> impl Strategy<Value = SessionKind> {
    prop_oneof![
        Just(SessionKind::User),
        Just(SessionKind::App),
        Just(SessionKind::GenerateToken),
        Just(SessionKind::ApiKey),
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp::from_unix_millis)
}

fn secret() -> impl Strategy<Value = SecretString> {
    ".{0,40}".prop_map(SecretString::from)
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Floats must come back bit for bit (serde_json's float_roundtrip).
        any::<f64>().prop_map(Value::from),
        ".{0,16}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

prop_compose! {
    fn record()(
        portal in portal(),
        kind in kind(),
        client_id in prop::option::of(".{0,20}"),
        username in prop::option::of(".{0,20}"),
        access_token in prop::option::of(secret()),
        expires_at in prop::option::of(timestamp()),
        ssl in any::<bool>(),
        refresh_token in prop::option::of(secret()),
        refresh_token_issued_at in prop::option::of(timestamp()),
        refresh_token_expires_at in prop::option::of(timestamp()),
        redirect_uri in prop::option::of(".{0,30}"),
        referer in prop::option::of(".{0,30}"),
        server_tokens in prop::collection::btree_map(".{0,20}", (secret(), timestamp(), any::<bool>()), 0..3),
        updated_at in prop::option::of(timestamp()),
        extra in prop::collection::btree_map("[a-z_]{1,12}", json_value(), 0..4),
    ) -> SessionRecord {
        let mut r = SessionRecord::new(portal, kind);
        r.client_id = client_id;
        r.username = username;
        r.access_token = access_token;
        r.expires_at = expires_at;
        r.ssl = ssl;
        r.refresh_token = refresh_token;
        r.refresh_token_issued_at = refresh_token_issued_at;
        r.refresh_token_expires_at = refresh_token_expires_at;
        r.redirect_uri = redirect_uri;
        r.referer = referer;
        r.server_tokens = server_tokens
            .into_iter()
            .map(|(k, (token, expires_at, ssl))| (k, ServerTokenRecord { token, expires_at, ssl }))
            .collect();
        r.updated_at = updated_at;
        r.extra = extra.into_iter().filter(|(k, _)| !KNOWN.contains(&k.as_str())).collect();
        r
    }
}

fn exposed(s: &Option<SecretString>) -> Option<&str> {
    s.as_ref().map(|s| s.expose_secret())
}

/// Everything in a record, secrets exposed, for comparison.
fn fields(r: &SessionRecord) -> Value {
    let servers: BTreeMap<_, _> = r
        .server_tokens
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!([v.token.expose_secret(), v.expires_at, v.ssl]),
            )
        })
        .collect();
    json!({
        "format": r.format, "portal": r.portal.to_string(), "kind": format!("{:?}", r.kind),
        "client_id": r.client_id, "username": r.username,
        "access_token": exposed(&r.access_token), "expires_at": r.expires_at, "ssl": r.ssl,
        "refresh_token": exposed(&r.refresh_token),
        "refresh_token_issued_at": r.refresh_token_issued_at,
        "refresh_token_expires_at": r.refresh_token_expires_at,
        "redirect_uri": r.redirect_uri, "referer": r.referer, "server_tokens": servers,
        "updated_at": r.updated_at, "extra": r.extra,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Write, read, write again: the same record and the same bytes.
    #[test]
    fn records_round_trip(record in record()) {
        let json = record.to_json().unwrap();
        let back = SessionRecord::from_json(&json).unwrap();
        prop_assert_eq!(fields(&back), fields(&record));
        prop_assert_eq!(back.to_json().unwrap(), json.clone());
        let from_bytes = SessionRecord::from_slice(json.as_bytes()).unwrap();
        prop_assert_eq!(fields(&from_bytes), fields(&record));
        // Debug never shows a secret.
        let debug = format!("{record:?}");
        for s in [exposed(&record.access_token), exposed(&record.refresh_token)].into_iter().flatten() {
            prop_assert!(s.len() < 3 || !debug.contains(&format!("\"{s}\"")), "Debug shows a secret");
        }
    }

    /// Arbitrary bytes: a record or a typed `Corrupt` error, never a panic.
    #[test]
    fn any_bytes_are_a_record_or_corrupt(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = SessionRecord::from_slice(&bytes) {
            prop_assert_eq!(e.kind(), StoreErrorKind::Corrupt);
        }
    }

    /// Records damaged field by field: a typed error that never quotes the
    /// input, which may be a token.
    #[test]
    fn damaged_records_are_corrupt_and_quote_nothing(
        record in record(),
        field in prop::sample::select(KNOWN),
        value in json_value(),
        marker in "[a-z]{6}",
    ) {
        let mut json: Value = serde_json::from_str(&record.to_json().unwrap()).unwrap();
        let planted = format!("SECRET-{marker}");
        let value = match value {
            Value::String(_) => Value::String(planted.clone()),
            other => json!([planted.clone(), other]),
        };
        json[field] = value;
        if let Err(e) = SessionRecord::from_slice(json.to_string().as_bytes()) {
            prop_assert_eq!(e.kind(), StoreErrorKind::Corrupt);
            prop_assert!(!e.to_string().contains(&planted), "{}", e);
            prop_assert!(!format!("{e:?}").contains(&planted), "{:?}", e);
        }
    }

    /// Formats from a newer release are refused, not half-read.
    #[test]
    fn newer_formats_are_refused(record in record(), format in (FORMAT_VERSION + 1)..u32::MAX) {
        let mut json: Value = serde_json::from_str(&record.to_json().unwrap()).unwrap();
        json["format"] = json!(format);
        let err = SessionRecord::from_slice(json.to_string().as_bytes()).unwrap_err();
        prop_assert_eq!(err.kind(), StoreErrorKind::Corrupt);
        prop_assert!(err.to_string().contains("upgrade"), "{}", err);
    }
}
