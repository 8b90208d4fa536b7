//! Property tests over every core parser that reads network input: token and
//! `generateToken` answers, error bodies, whole responses, sign-in redirects
//! (query and fragment), the OOB approval page, portal, server and origin URLs,
//! `rest/info`. None may panic, whatever the bytes; where a value can be
//! written back out, reading it again gives the same value.
//!
//! The same parsers are fuzzed by `cargo xtask fuzz` (see `fuzz/`); its seed
//! corpora are replayed by `fuzz_corpus.rs`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use arcgis_auth_core::{
    ArcGisError, ArcGisTokenResponse, Authorization, ExposeSecret, GenerateTokenResponse, Origin,
    Portal, ServerInfo, ServerRoot, Timestamp, classify_response, classify_token_response,
    code_from_approval_page,
};
use http::StatusCode;
use proptest::prelude::*;
use serde_json::{Value, json};
use url::Url;

/// Any JSON value, a few levels deep, with ArcGIS-ish keys likely.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("error".to_owned()),
        Just("code".to_owned()),
        Just("message".to_owned()),
        Just("messageCode".to_owned()),
        Just("details".to_owned()),
        Just("error_description".to_owned()),
        Just("access_token".to_owned()),
        Just("expires_in".to_owned()),
        Just("refresh_token".to_owned()),
        Just("refresh_token_expires_in".to_owned()),
        Just("token".to_owned()),
        Just("expires".to_owned()),
        Just("ssl".to_owned()),
        Just("username".to_owned()),
        Just("owningSystemUrl".to_owned()),
        Just("authInfo".to_owned()),
        "[a-zA-Z_]{1,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        "https?://[a-z.]{1,12}(:[0-9]{1,5})?(/[a-zA-Z%0-9]{0,8}){0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes a server might send: arbitrary bytes, or JSON (possibly cut short).
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let s = v.to_string().into_bytes();
            let at = cut.index(s.len() + 1);
            s[..at].to_vec()
        }),
        ".{0,64}".prop_map(|s| format!("<html><title>{s}</title></html>").into_bytes()),
    ]
}

fn status() -> impl Strategy<Value = StatusCode> {
    (100u16..=999).prop_map(|s| StatusCode::from_u16(s).unwrap())
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        Just("application/json".to_owned()),
        Just("application/json; charset=utf-8".to_owned()),
        Just("text/plain".to_owned()),
        Just("text/html".to_owned()),
        Just("image/png".to_owned()),
        ".{0,20}",
    ])
}

/// URL-ish text: real URL shapes with odd parts, and anything at all.
fn url_text() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("sharing".to_owned()),
        Just("rest".to_owned()),
        Just("services".to_owned()),
        Just("admin".to_owned()),
        Just("home".to_owned()),
        Just("apps".to_owned()),
        Just("tokens".to_owned()),
        Just("portal".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("%2e".to_owned()),
        Just(String::new()),
        "[a-zA-Z0-9%_~-]{1,10}",
        ".{1,6}",
    ];
    let host = prop_oneof![
        Just("www.arcgis.com".to_owned()),
        Just("GIS.Example.com".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
        Just("xn--bcher-kva.example".to_owned()),
        Just("bücher.example".to_owned()),
        "[a-zA-Z0-9.-]{1,20}",
    ];
    prop_oneof![
        4 => (
            prop_oneof![Just("https"), Just("http"), Just("HTTPS"), Just("ftp"), Just("mailto")],
            prop::option::of("[a-z:@]{1,8}@"),
            host,
            prop::option::of(0u32..70_000),
            prop::collection::vec(segment, 0..7),
            prop::option::of(".{0,12}"),
            prop::option::of(".{0,12}"),
        )
            .prop_map(|(scheme, user, host, port, segs, query, frag)| {
                let mut s = format!("{scheme}://{}{host}", user.unwrap_or_default());
                if let Some(p) = port {
                    s.push_str(&format!(":{p}"));
                }
                for seg in segs {
                    s.push('/');
                    s.push_str(&seg);
                }
                if let Some(q) = query {
                    s.push('?');
                    s.push_str(&q);
                }
                if let Some(f) = frag {
                    s.push('#');
                    s.push_str(&f);
                }
                s
            }),
        1 => ".{0,64}",
    ]
}

fn authorization(state: &str) -> Authorization {
    Authorization::from_parts(
        Url::parse("https://www.arcgis.com/sharing/rest/oauth2/authorize").unwrap(),
        state.to_owned(),
        "verifier".into(),
        "http://127.0.0.1:8765/callback".to_owned(),
    )
}

fn form(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Redirect parameters: the expected ones with odd values, plus noise.
fn redirect_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    let key = prop_oneof![
        Just("code".to_owned()),
        Just("state".to_owned()),
        Just("error".to_owned()),
        Just("error_description".to_owned()),
        Just("access_token".to_owned()),
        Just("expires_in".to_owned()),
        Just("username".to_owned()),
        Just("ssl".to_owned()),
        ".{0,8}",
    ];
    let value = prop_oneof![
        Just("the-state".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("access_denied".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        ".{0,16}",
    ];
    prop::collection::vec((key, value), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn token_responses_never_panic(body in body(), now in any::<i64>()) {
        if let Ok(response) = ArcGisTokenResponse::from_body(&body) {
            let token = response.into_token(Timestamp::from_unix_millis(now));
            let _ = token.expires_at();
        }
    }

    /// A well-formed answer reads back exactly, and its expiry is `now + expires_in`.
    #[test]
    fn token_responses_round_trip(
        access in "[!-~]{0,60}".prop_map(|s| format!("ÄT§{s}")),
        expires_in in 1u64..=1_209_600,
        username in prop::option::of("[a-zA-Z0-9._@-]{1,20}"),
        ssl in prop::option::of(any::<bool>()),
        refresh in prop::option::of(("[!-~]{1,64}", prop::option::of(1u64..=7_776_000))),
        now in 0i64..4_000_000_000_000,
    ) {
        let mut body = json!({"access_token": access, "expires_in": expires_in});
        if let Some(u) = &username { body["username"] = json!(u); }
        if let Some(s) = ssl { body["ssl"] = json!(s); }
        if let Some((rt, rt_in)) = &refresh {
            body["refresh_token"] = json!(rt);
            if let Some(n) = rt_in { body["refresh_token_expires_in"] = json!(n); }
        }
        let response = ArcGisTokenResponse::from_body(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(response.expires_in_secs(), expires_in);
        prop_assert_eq!(response.username(), username.as_deref());
        prop_assert_eq!(response.ssl(), ssl);
        prop_assert_eq!(response.has_refresh_token(), refresh.is_some());
        let now = Timestamp::from_unix_millis(now);
        let token = response.into_token(now);
        prop_assert_eq!(token.access_token().expose_secret(), access.as_str());
        prop_assert_eq!(token.expires_at(), now + Duration::from_secs(expires_in));
        prop_assert!(!format!("{token:?}").contains("ÄT§"), "Debug shows the secret");
        match (&refresh, token.refresh_token()) {
            (Some((rt, rt_in)), Some(got)) => {
                prop_assert_eq!(got.secret().expose_secret(), rt.as_str());
                prop_assert_eq!(got.expires_at(), rt_in.map(|n| now + Duration::from_secs(n)));
            }
            (None, None) => {}
            (want, got) => prop_assert!(false, "refresh token {:?} became {:?}", want.is_some(), got.is_some()),
        }
    }

    #[test]
    fn generate_token_responses_never_panic(body in body(), now in any::<i64>()) {
        if let Ok(response) = GenerateTokenResponse::from_body(&body) {
            let _ = response.into_token(Timestamp::from_unix_millis(now));
        }
    }

    /// `expires` is epoch milliseconds and reads back exactly.
    #[test]
    fn generate_token_responses_round_trip(
        token in "[!-~]{1,64}",
        expires in 100_000_000_000i64..4_000_000_000_000,
        ssl in prop::option::of(any::<bool>()),
    ) {
        let mut body = json!({"token": token, "expires": expires});
        if let Some(s) = ssl { body["ssl"] = json!(s); }
        let response = GenerateTokenResponse::from_body(body.to_string().as_bytes()).unwrap();
        prop_assert_eq!(response.token().expose_secret(), token.as_str());
        prop_assert_eq!(response.expires(), Timestamp::from_unix_millis(expires));
        prop_assert_eq!(response.ssl(), ssl);
    }

    /// Error bodies never panic; whatever ArcGIS error is found has a kind and
    /// a message, and an `{"error":{"code":N,...}}` body is always found.
    #[test]
    fn error_bodies_never_panic(body in body()) {
        if let Some(err) = ArcGisError::from_body(&body) {
            let _ = (err.kind(), err.kind_at_token_endpoint(), err.description(), err.to_string());
        }
        let _ = arcgis_auth_core::Error::from_arcgis_body(&body);
    }

    #[test]
    fn error_objects_are_always_recognised(
        code in prop::option::of(any::<i32>()),
        message in prop::option::of(".{0,40}"),
        message_code in prop::option::of("[A-Z]{3}_[0-9]{4}"),
        details in prop::collection::vec(".{0,20}", 0..3),
    ) {
        let mut error = json!({"details": details});
        if let Some(c) = code { error["code"] = json!(c); }
        if let Some(m) = &message { error["message"] = json!(m); }
        if let Some(m) = &message_code { error["messageCode"] = json!(m); }
        let body = json!({"error": error}).to_string();
        let found = ArcGisError::from_body(body.as_bytes());
        prop_assert!(found.is_some(), "{}", body);
        // And the classifiers call it an error, whatever the HTTP status says.
        prop_assert!(classify_response(StatusCode::OK, Some("application/json"), body.as_bytes()).is_err());
        prop_assert!(classify_token_response(StatusCode::OK, Some("application/json"), body.as_bytes()).is_err());
    }

    #[test]
    fn classifying_any_response_never_panics(
        status in status(),
        content_type in content_type(),
        body in body(),
    ) {
        for result in [
            classify_response(status, content_type.as_deref(), &body),
            classify_token_response(status, content_type.as_deref(), &body),
        ] {
            if let Err(e) = result {
                let _ = (e.kind(), e.to_string(), e.kind().is_transient());
            }
        }
    }

    /// Portal URLs: never a panic; a parsed portal prints as a URL that parses
    /// back to the same portal, on the same origin, ending in /sharing/rest.
    #[test]
    fn portals_round_trip(input in url_text()) {
        if let Ok(portal) = Portal::parse(&input) {
            let again = Portal::parse(&portal.to_string());
            prop_assert_eq!(again.as_ref().ok(), Some(&portal), "{} -> {}", input, portal);
            prop_assert!(portal.sharing_root().path().ends_with("/sharing/rest"));
            prop_assert_eq!(Origin::of(portal.sharing_root()).ok(), Some(portal.origin().clone()));
            prop_assert!(portal.sharing_root().query().is_none());
            prop_assert!(portal.sharing_root().fragment().is_none());
            let _ = (portal.token_url(), portal.is_arcgis_online());
        }
    }

    /// Server roots: never a panic; a root parses back to itself and contains
    /// its own service URLs.
    #[test]
    fn server_roots_round_trip(input in url_text()) {
        if let Ok(root) = ServerRoot::parse(&input) {
            let again = ServerRoot::parse(&root.to_string());
            prop_assert_eq!(again.as_ref().ok(), Some(&root), "{} -> {}", input, root);
            prop_assert!(root.contains(&root.services_url()));
            prop_assert!(root.contains(&root.rest_info_url()));
            prop_assert_eq!(ServerRoot::from_url(&root.rest_info_url()).ok(), Some(root.clone()));
        }
    }

    /// Origins: never a panic; equal origins print alike and parse back equal.
    #[test]
    fn origins_round_trip(a in url_text(), b in url_text()) {
        if let (Ok(x), Ok(y)) = (Origin::parse(&a), Origin::parse(&b)) {
            prop_assert_eq!(x == y, x.to_string() == y.to_string());
        }
        if let Ok(x) = Origin::parse(&a) {
            prop_assert_eq!(Origin::parse(&x.to_string()).ok(), Some(x.clone()));
            let _ = (x.is_loopback(), x.is_arcgis_online(), x.is_https());
        }
    }

    /// Sign-in redirects, query (code flow) and fragment (implicit flow): no
    /// panic; a code or token is only ever returned with the right state.
    #[test]
    fn redirects_never_panic_and_check_the_state(pairs in redirect_pairs(), now in any::<i64>()) {
        let auth = authorization("the-state");
        let encoded = form(&pairs);
        let has_state = pairs.iter().find(|(k, _)| k == "state").is_some_and(|(_, v)| v == "the-state");
        let has_error = pairs.iter().any(|(k, _)| k == "error");
        let query = Url::parse(&format!("http://127.0.0.1:8765/callback?{encoded}")).unwrap();
        if auth.code_from_redirect(&query).is_ok() {
            prop_assert!(has_state && !has_error);
        }
        let fragment = Url::parse(&format!("http://127.0.0.1:8765/callback#{encoded}")).unwrap();
        if auth.token_from_implicit_redirect(&fragment, Timestamp::from_unix_millis(now)).is_ok() {
            prop_assert!(has_state && !has_error);
        }
    }

    /// A good redirect gives back exactly the code it carried.
    #[test]
    fn codes_round_trip(code in ".{1,40}", noise in redirect_pairs()) {
        let noise: Vec<_> = noise.into_iter().filter(|(k, _)| !matches!(k.as_str(), "code" | "state" | "error")).collect();
        let mut pairs = vec![("state".to_owned(), "s".to_owned()), ("code".to_owned(), code.clone())];
        pairs.extend(noise);
        let url = Url::parse(&format!("http://127.0.0.1/cb?{}", form(&pairs))).unwrap();
        let got = authorization("s").code_from_redirect(&url).unwrap();
        prop_assert_eq!(got.expose_secret(), code.as_str());
    }

    #[test]
    fn approval_pages_never_panic(html in ".{0,200}", code in "[A-Za-z0-9]{1,30}") {
        let _ = code_from_approval_page(&html);
        let page = format!("<html><head><TITLE>SUCCESS code={code}</TITLE></head><body>{html}</body></html>");
        let found = code_from_approval_page(&page).unwrap();
        prop_assert_eq!(found.expose_secret(), code.as_str());
    }

    #[test]
    fn server_info_never_panics(body in body()) {
        if let Ok(info) = ServerInfo::from_body(&body) {
            let _ = (info.owning_portal(), info.is_token_based_security(), info.token_services_url());
            let _ = info.is_federated_with(&Portal::arcgis_online());
        }
    }

    /// `owning_portal` and `is_federated_with` follow one rule: a portal is
    /// found exactly when one is federated, and it is the one federated.
    #[test]
    fn owning_portal_and_federation_agree(owner in url_text(), other in url_text()) {
        let body = json!({ "owningSystemUrl": owner }).to_string();
        let info = ServerInfo::from_body(body.as_bytes()).unwrap();
        let found = info.owning_portal();
        if let Some(portal) = &found {
            prop_assert!(info.is_federated_with(portal), "{owner} vs {portal}");
        }
        // Candidates: the portal a user would find behind the URL (deeper
        // URLs included) and an unrelated one.
        for candidate in [Portal::parse(&owner), Portal::parse(&other)].into_iter().flatten() {
            if info.is_federated_with(&candidate) {
                let found = found.as_ref();
                prop_assert!(
                    found.is_some_and(|p| candidate.is_owning_system_url(p.sharing_root())),
                    "{owner}: federated with {candidate}, owning portal {found:?}"
                );
            }
        }
    }

    /// RFC 3339 text sorts like the timestamps it prints (within years 0–9999).
    #[test]
    fn rfc3339_is_monotonic(a in -62_167_219_200_000i64..=253_402_300_799_999, b in -62_167_219_200_000i64..=253_402_300_799_999) {
        let (ta, tb) = (Timestamp::from_unix_millis(a), Timestamp::from_unix_millis(b));
        prop_assert_eq!(ta.to_rfc3339().cmp(&tb.to_rfc3339()), a.cmp(&b));
        prop_assert_eq!(ta.to_rfc3339().len(), 24);
    }

    #[test]
    fn rfc3339_never_panics(t in any::<i64>()) {
        let s = Timestamp::from_unix_millis(t).to_rfc3339();
        prop_assert!(s.ends_with('Z'));
    }
}
