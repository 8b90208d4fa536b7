//! A server's `rest/info` and secured `rest/services/...`.

use serde_json::json;
use wiremock::{Request, ResponseTemplate};

use crate::config::Federation;
use crate::feature_layer;
use crate::state::{Audience, State};
use crate::wire::{self, Params};

/// `{server}/rest/info`: federation and token settings, no token needed.
pub(super) fn info(state: &State, server: Option<&str>, params: &Params) -> ResponseTemplate {
    let Some(s) = server
        .and_then(|n| state.server_index(n))
        .and_then(|i| state.servers.get(i))
    else {
        return wire::invalid_url();
    };
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    let (owner, token_url) = match &s.federation {
        Federation::ThisPortal => (
            Some(state.settings.url_root.clone()),
            format!("{}/generateToken", state.settings.sharing_root),
        ),
        Federation::Standalone => (None, format!("{}/tokens/generateToken", s.root)),
        Federation::Other(url) => (
            Some(url.trim_end_matches('/').to_owned()),
            format!("{}/sharing/rest/generateToken", url.trim_end_matches('/')),
        ),
    };
    let mut body = json!({
        "currentVersion": 11.3,
        "fullVersion": "11.3.0",
        "authInfo": {
            "isTokenBasedSecurity": true,
            "tokenServicesUrl": token_url,
            "shortLivedTokenValidity": s.short_lived_minutes,
        },
    });
    if let (Some(owner), Some(obj)) = (owner, body.as_object_mut()) {
        obj.insert("owningSystemUrl".into(), owner.into());
    }
    wire::json_ok(body)
}

/// `{server}/admin/...` of a standalone server: only its tokens from
/// `admin/generateToken` open it. Refusals in the Administrator API's shape
/// (`{"status":"error","messages":[...],"code":...}`, HTTP 200): 499 without
/// a token, 498 for any other token (a service token of this server too).
pub(super) fn admin(
    state: &State,
    server: Option<&str>,
    params: &Params,
    request: &Request,
    path: &str,
) -> ResponseTemplate {
    let Some(s) = server
        .and_then(|n| state.server_index(n))
        .and_then(|i| state.servers.get(i))
        .filter(|s| s.federation == Federation::Standalone)
    else {
        return wire::invalid_url();
    };
    let admin_error = |code: u16, message: &str| {
        wire::json_ok(json!({"status": "error", "messages": [message], "code": code}))
    };
    let Some(token) = wire::presented_token(request, params) else {
        return admin_error(
            499,
            "Unauthorized access. Token not found. You can generate a token using the \
             'generateToken' operation.",
        );
    };
    let record = match state.check_access(
        &token,
        Audience::ServerAdmin(&s.name),
        wire::referer(request),
    ) {
        Ok(r) => r,
        Err(_) => return admin_error(498, "Invalid token."),
    };
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    wire::json_ok(json!({
        "path": path,
        "server": s.name,
        "user": record.username,
        "resources": ["machines", "services", "security"],
    }))
}

/// `{server}/rest/services/...`: only this server's tokens open it; 499
/// without a token, 498 for any other token, both with HTTP 200. The
/// feature service answers its layer and queries; any other path answers
/// who opened it.
pub(super) fn services(
    state: &State,
    server: Option<&str>,
    params: &Params,
    request: &Request,
    path: &str,
) -> ResponseTemplate {
    let Some(name) = server else {
        return wire::invalid_url();
    };
    let Some(token) = wire::presented_token(request, params) else {
        return wire::json_ok(wire::rest_error(499, "Token Required", None, &[]));
    };
    let record = match state.check_access(&token, Audience::Server(name), wire::referer(request)) {
        Ok(r) => r,
        Err(_) => return wire::json_ok(wire::rest_error(498, "Invalid Token", None, &[])),
    };
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    let service = path.strip_prefix("/rest/services").unwrap_or_default();
    if let Some(resource) = feature_layer::resource(service) {
        return wire::json_ok(feature_layer::answer(resource, params));
    }
    wire::json_ok(json!({
        "currentVersion": 11.3,
        "path": path,
        "server": name,
        "user": record.username,
        "services": [{"name": "Testkit/Secured", "type": "FeatureServer"}],
    }))
}
