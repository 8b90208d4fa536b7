//! The portal's other endpoints: `revokeToken`, `info`, `portals/self`,
//! `community/self`, the secured `content/items/{id}` and the hosted services.

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use crate::config::Federation;
use crate::feature_layer;
use crate::portal::ORG_ID;
use crate::state::{AccessRecord, Audience, Refusal, State};
use crate::tokens::TokenKind;
use crate::wire::{self, Params};

/// `POST oauth2/revokeToken`: `{"success":true}`, even for unknown tokens.
///
/// ArcGIS names the token to revoke `auth_token` (as the ArcGIS JS API and
/// `arcgis-auth-core` send it); `token` is accepted too.
pub(super) fn revoke(state: &mut State, params: &Params) -> ResponseTemplate {
    let Some(token) = params.get("auth_token").or_else(|| params.get("token")) else {
        return wire::json_ok(wire::oauth_error(
            400,
            "invalid_request",
            "token not specified",
        ));
    };
    if state.refresh.contains_key(token) {
        state.revoke_refresh(token);
    } else if let Some(record) = state.access.get_mut(token) {
        // App tokens and generateToken tokens cannot be revoked.
        if matches!(
            record.kind,
            TokenKind::UserAccess { .. } | TokenKind::Implicit
        ) {
            record.revoked = true;
        }
    }
    wire::json_ok(json!({"success": true}))
}

/// `info`: public, no token needed.
pub(super) fn info(state: &State, params: &Params) -> ResponseTemplate {
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    wire::json_ok(json!({
        "owningSystemUrl": state.settings.url_root,
        "authInfo": {
            "tokenServicesUrl": format!("{}/generateToken", state.settings.sharing_root),
            "isTokenBasedSecurity": true,
        },
    }))
}

/// Who a request is from, by the token it presents.
enum Caller {
    /// No token.
    Anonymous,
    /// A token valid on the portal.
    Valid(AccessRecord),
    /// An unknown, expired or revoked token: answer 498.
    Invalid,
}

/// The record of the valid portal token a request presents, or the answer
/// for one that presents none (499) or a bad one (498).
fn valid_caller(
    state: &State,
    params: &Params,
    request: &Request,
) -> Result<AccessRecord, Box<ResponseTemplate>> {
    match caller(state, params, request) {
        Caller::Valid(record) => Ok(record),
        Caller::Anonymous => Err(Box::new(wire::token_required())),
        Caller::Invalid => Err(Box::new(wire::invalid_token())),
    }
}

fn caller(state: &State, params: &Params, request: &Request) -> Caller {
    let Some(token) = wire::presented_token(request, params) else {
        return Caller::Anonymous;
    };
    match state.check_access(&token, Audience::Portal, wire::referer(request)) {
        Ok(record) => Caller::Valid(record.clone()),
        Err(Refusal::Unknown | Refusal::Dead) => Caller::Invalid,
    }
}

/// `host[:port][/web-adaptor]`: the URL root without its scheme, as ArcGIS reports it.
fn hostname(url_root: &str) -> &str {
    url_root
        .split_once("://")
        .map_or(url_root, |(_, rest)| rest)
}

fn user_json(username: &str) -> Value {
    json!({
        "username": username,
        "fullName": username,
        "email": format!("{username}@example.com"),
        "role": "org_user",
        "orgId": ORG_ID,
        "privileges": ["portal:user:createItem", "portal:user:viewOrgItems"],
    })
}

/// `portals/self`: anonymous callers get the public description; a valid
/// token adds `user` (user tokens) or `appInfo` (app tokens); an invalid one gets 498.
pub(super) fn portals_self(state: &State, params: &Params, request: &Request) -> ResponseTemplate {
    let caller = match caller(state, params, request) {
        Caller::Anonymous => None,
        Caller::Valid(record) => Some(record),
        Caller::Invalid => return wire::invalid_token(),
    };
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    let mut body = json!({
        "id": ORG_ID,
        "name": "ArcGIS Auth Testkit",
        "isPortal": false,
        "allSSL": state.settings.ssl,
        "portalHostname": hostname(&state.settings.url_root),
        "maxTokenExpirationMinutes": state.settings.org_cap.map_or(-1, i64::from),
    });
    if let (Some(record), Some(obj)) = (caller, body.as_object_mut()) {
        match (&record.username, &record.client_id) {
            (Some(u), _) => {
                obj.insert("user".into(), user_json(u));
            }
            (None, Some(app)) => {
                obj.insert("appInfo".into(), json!({"appId": app}));
            }
            (None, None) => {}
        }
    }
    wire::json_ok(body)
}

/// `portals/self/servers`: the servers federated with this portal (each
/// with its root as `url` and `adminUrl`), for a valid token; 499 without
/// one, 498 with a bad one.
pub(super) fn portal_servers(
    state: &State,
    params: &Params,
    request: &Request,
) -> ResponseTemplate {
    if let Err(answer) = valid_caller(state, params, request) {
        return *answer;
    }
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    let servers: Vec<_> = state
        .servers
        .iter()
        .filter(|s| s.federation == Federation::ThisPortal)
        .enumerate()
        .map(|(i, s)| {
            json!({
                "id": format!("TestkitServer{i:04}"),
                "name": s.name,
                "url": s.root,
                "adminUrl": s.root,
                "isHosted": i == 0,
                "serverType": "ArcGIS",
                "serverRole": if i == 0 { "HOSTING_SERVER" } else { "FEDERATED_SERVER" },
            })
        })
        .collect();
    wire::json_ok(json!({ "servers": servers }))
}

/// `community/self`: the signed-in user; 499 without a token, 498 with a bad
/// one, 403 for app tokens (they have no user).
pub(super) fn community_self(
    state: &State,
    params: &Params,
    request: &Request,
) -> ResponseTemplate {
    let record = match valid_caller(state, params, request) {
        Ok(record) => record,
        Err(answer) => return *answer,
    };
    let Some(username) = record.username else {
        return forbidden();
    };
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    wire::json_ok(user_json(&username))
}

fn forbidden() -> ResponseTemplate {
    wire::json_ok(wire::rest_error(
        403,
        "You do not have permissions to access this resource or perform this operation.",
        Some("GWM_0003"),
        &[],
    ))
}

/// `content/items/{id}`: a private item on the portal's own origin; any valid
/// portal token (user, app or API key) may read it, except an API key
/// scoped to other items (403).
pub(super) fn content_item(
    state: &State,
    params: &Params,
    request: &Request,
    id: &str,
) -> ResponseTemplate {
    let record = match valid_caller(state, params, request) {
        Ok(record) => record,
        Err(answer) => return *answer,
    };
    if record
        .items
        .as_ref()
        .is_some_and(|items| !items.iter().any(|i| i == id))
    {
        return forbidden();
    }
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    wire::json_ok(json!({
        "id": id,
        "owner": record.username.as_deref().unwrap_or("testkit_admin"),
        "title": "Testkit private item",
        "type": "Web Map",
        "access": "private",
        "accessedBy": record.username.or(record.client_id),
    }))
}

/// The hosted services (`{origin}/TestkitOrg0001/arcgis/rest/services/{path}`):
/// any valid portal token opens them (499 without one, 498 for a bad one);
/// the feature service is answered, any other path is an invalid URL.
pub(super) fn hosted_services(
    state: &State,
    params: &Params,
    request: &Request,
    path: &str,
) -> ResponseTemplate {
    if let Err(answer) = valid_caller(state, params, request) {
        return *answer;
    }
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    match feature_layer::resource(path) {
        Some(resource) => wire::json_ok(feature_layer::answer(resource, params)),
        None => wire::invalid_url(),
    }
}
