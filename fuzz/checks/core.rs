//! What the core fuzz targets check, one function per target. Shared with
//! `crates/core/tests/fuzz_corpus.rs`, which replays every checked-in corpus
//! file through the same function in CI.
//!
//! Each function takes arbitrary bytes, must never panic inside the library,
//! and asserts the properties that hold for whatever the parser accepted.
#![allow(dead_code, clippy::unwrap_used)]

use arcgis_auth_core::{
    ArcGisError, ArcGisTokenResponse, Authorization, GenerateTokenResponse, Origin, Portal,
    ServerInfo, ServerRoot, Timestamp, classify_response, classify_token_response,
    code_from_approval_page,
};
use http::StatusCode;
use url::Url;

/// A fixed "now" for expiry arithmetic.
const NOW: Timestamp = Timestamp::from_unix_millis(1_700_000_000_000);

/// `oauth2/token` answers: an accepted answer has a lifetime in range and
/// its expiry lies after "now".
pub(crate) fn token_response(data: &[u8]) {
    if let Ok(response) = ArcGisTokenResponse::from_body(data) {
        let secs = response.expires_in_secs();
        assert!(secs >= 1, "expires_in {secs} accepted");
        let token = response.into_token(NOW);
        assert!(token.expires_at() > NOW);
    }
}

/// `generateToken` answers: `expires` is epoch milliseconds.
pub(crate) fn generate_token_response(data: &[u8]) {
    if let Ok(response) = GenerateTokenResponse::from_body(data) {
        let expires = response.expires();
        if let Ok(token) = response.into_token(NOW) {
            assert_eq!(token.expires_at(), expires);
        }
    }
}

/// Error bodies and whole responses: the first two bytes pick the HTTP status
/// and the content type, the rest is the body. An ArcGIS error object is an
/// error whatever the status.
pub(crate) fn error_body(data: &[u8]) {
    let (head, body) = data.split_at(data.len().min(2));
    let status = StatusCode::from_u16(100 + u16::from(head.first().copied().unwrap_or(0)) * 2)
        .unwrap_or(StatusCode::OK);
    let content_type = match head.get(1).copied().unwrap_or(0) % 5 {
        0 => None,
        1 => Some("application/json"),
        2 => Some("text/plain; charset=utf-8"),
        3 => Some("text/html"),
        _ => Some("image/png"),
    };
    let found = ArcGisError::from_body(body);
    if let Some(err) = &found {
        let _ = (err.kind(), err.kind_at_token_endpoint(), err.to_string());
    }
    let service = classify_response(status, content_type, body);
    let token = classify_token_response(status, content_type, body);
    if found.is_some() {
        assert!(
            token.is_err(),
            "an ArcGIS error object passed the token endpoint check"
        );
    }
    if let Err(e) = service {
        let _ = (e.kind().is_transient(), e.to_string());
    }
}

/// Sign-in redirects: the first byte picks query (code flow) or fragment
/// (implicit flow), the rest is the encoded parameters. A code or token comes
/// back only with the right state and no `error`.
pub(crate) fn redirect(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(params) = std::str::from_utf8(rest) else {
        return;
    };
    let auth = Authorization::from_parts(
        Url::parse("https://www.arcgis.com/sharing/rest/oauth2/authorize").unwrap(),
        "s".to_owned(),
        "verifier".into(),
        "http://127.0.0.1/cb".to_owned(),
    );
    let _ = code_from_approval_page(params);
    let implicit = mode % 2 == 1;
    let separator = if implicit { '#' } else { '?' };
    let Ok(url) = Url::parse(&format!("http://127.0.0.1/cb{separator}{params}")) else {
        return;
    };
    // The oracle reads the parameters as the parsed URL holds them (URL
    // parsing trims and encodes; the raw text is not what the redirect says).
    let encoded = if implicit {
        url.fragment()
    } else {
        url.query()
    };
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(encoded.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let first = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let allowed = first("state") == Some("s") && first("error").is_none();
    if implicit {
        if let Ok(token) = auth.token_from_implicit_redirect(&url, NOW) {
            assert!(allowed, "a token was accepted without the state: {url}");
            assert!(token.expires_at() > NOW);
        }
    } else if auth.code_from_redirect(&url).is_ok() {
        assert!(allowed, "a code was accepted without the state: {url}");
    }
}

/// Portal, server and origin URLs: whatever parses, prints as a URL that
/// parses back to the same value.
pub(crate) fn urls(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(portal) = Portal::parse(text) {
        assert_eq!(
            Portal::parse(&portal.to_string()).ok(),
            Some(portal.clone()),
            "{text}"
        );
        assert!(portal.sharing_root().path().ends_with("/sharing/rest"));
        assert_eq!(
            Origin::of(portal.sharing_root()).ok(),
            Some(portal.origin().clone())
        );
    }
    if let Ok(root) = ServerRoot::parse(text) {
        assert_eq!(
            ServerRoot::parse(&root.to_string()).ok(),
            Some(root.clone()),
            "{text}"
        );
        assert!(root.contains(&root.services_url()));
    }
    if let Ok(origin) = Origin::parse(text) {
        assert_eq!(
            Origin::parse(&origin.to_string()).ok(),
            Some(origin.clone()),
            "{text}"
        );
        let _ = (origin.is_loopback(), origin.is_arcgis_online());
    }
}

/// `rest/info` answers: `owning_portal` and `is_federated_with` follow one
/// rule (a portal's own URL, with or without a trailing slash or
/// `/sharing/rest`; never a deeper one). Whatever portal `owning_portal`
/// finds, the server is federated with it; and a server whose
/// `owningSystemUrl` names a portal's root (or its sharing root) exactly
/// has an owning portal.
pub(crate) fn server_info(data: &[u8]) {
    if let Ok(info) = ServerInfo::from_body(data) {
        if let Some(portal) = info.owning_portal() {
            assert!(info.is_federated_with(&portal), "{portal}");
        }
        if let Some(url) = info.owning_system_url()
            && let Ok(portal) = Portal::from_url(url)
        {
            let root = portal.sharing_root().as_str();
            let base = root.trim_end_matches("/sharing/rest");
            let named = url.as_str().trim_end_matches('/');
            if (named == root || named == base) && url.username().is_empty() {
                assert_eq!(info.owning_portal().as_ref(), Some(&portal), "{url}");
                assert!(info.is_federated_with(&portal), "{url} vs {portal}");
            }
        }
        let _ = (
            info.token_services_url(),
            info.short_lived_token_validity_minutes(),
        );
    }
}
