//! `generateToken`: the portal's (user and `serverUrl` forms) and a standalone server's.

use arcgis_auth_core::ServerRoot;
use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

use crate::config::Federation;
use crate::lifetimes::GENERATED;
use crate::state::{Audience, State, minutes_to_duration};
use crate::tokens::TokenKind;
use crate::wire::{self, Params};

/// ArcGIS's generateToken failure shape.
fn unable(detail: &str) -> Value {
    wire::rest_error(400, "Unable to generate token.", None, &[detail])
}

/// Who is asking, proven by a password or by a portal token.
struct Caller {
    username: Option<String>,
    client_id: Option<String>,
    /// The portal token's expiry, when the caller proved itself with one.
    token_expires_at: Option<arcgis_auth_core::Timestamp>,
}

/// The `client`/`referer` binding asked for: `Ok(Some(referer))` for `client=referer`.
fn binding(params: &Params) -> Result<Option<String>, Value> {
    let client = params
        .get("client")
        .unwrap_or(if params.get("referer").is_some() {
            "referer"
        } else {
            "requestip"
        });
    match client {
        "referer" => params
            .get("referer")
            .map(|r| Some(r.to_owned()))
            .ok_or_else(|| unable("'referer' must be specified.")),
        // IP bindings are accepted but not enforced: every caller is on loopback.
        "ip" | "requestip" => Ok(None),
        _ => Err(unable("Invalid client type.")),
    }
}

fn password_caller(state: &State, params: &Params) -> Result<Caller, Value> {
    let username = params
        .get("username")
        .ok_or_else(|| unable("'username' must be specified."))?;
    let password = params
        .get("password")
        .ok_or_else(|| unable("'password' must be specified."))?;
    match state.user(username) {
        Some(u) if u.password_matches(password) => Ok(Caller {
            username: Some(u.username.clone()),
            client_id: None,
            token_expires_at: None,
        }),
        _ => Err(unable("Invalid username or password.")),
    }
}

/// `request=getToken` without a password: the user the web tier signed in,
/// or a refusal when no web tier vouches for anyone.
fn web_tier_caller(web_user: Option<&str>) -> Result<Caller, Value> {
    match web_user {
        Some(user) => Ok(Caller {
            username: Some(user.to_owned()),
            client_id: None,
            token_expires_at: None,
        }),
        None => Err(unable(
            "'username' and 'password' must be specified: no web-tier user is signed in.",
        )),
    }
}

fn respond(
    state: &State,
    token: &str,
    expires_at: arcgis_auth_core::Timestamp,
) -> ResponseTemplate {
    wire::json_ok(json!({
        "token": token,
        "expires": expires_at.as_unix_millis(),
        "ssl": state.settings.ssl,
    }))
}

/// `POST {sharing root}/generateToken`.
pub(super) fn portal_generate(
    state: &mut State,
    params: &Params,
    request: &Request,
    web_user: Option<&str>,
) -> ResponseTemplate {
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    match portal_generate_inner(state, params, request, web_user) {
        Ok(r) => r,
        Err(body) => wire::json_ok(body),
    }
}

fn portal_generate_inner(
    state: &mut State,
    params: &Params,
    request: &Request,
    web_user: Option<&str>,
) -> Result<ResponseTemplate, Value> {
    let referer = binding(params)?;
    let get_token = params.get("request") == Some("getToken")
        && params.get("username").is_none()
        && params.get("password").is_none();
    let caller = match wire::presented_token(request, params) {
        None if get_token => web_tier_caller(web_user)?,
        Some(token) => {
            let record = state
                .check_access(
                    &token,
                    Audience::Portal,
                    // generateToken reads the `referer` parameter as the request's referer.
                    wire::referer(request).or_else(|| params.get("referer")),
                )
                .map_err(|_| wire::rest_error(498, "Invalid token.", None, &[]))?;
            Caller {
                username: record.username.clone(),
                client_id: record.client_id.clone(),
                token_expires_at: Some(record.expires_at),
            }
        }
        None => password_caller(state, params)?,
    };
    let now = state.now();
    let Some(server_url) = params.get("serverUrl") else {
        if caller.token_expires_at.is_some() {
            return Err(unable("'serverUrl' must be specified with 'token'."));
        }
        let minutes = GENERATED
            .grant(params.get("expiration"), state.settings.org_cap)
            .map_err(|()| unable("Invalid expiration."))?;
        let (token, record) = state.issue_access(
            TokenKind::Generated,
            caller.username,
            None,
            minutes_to_duration(minutes),
            None,
            referer,
        );
        return Ok(respond(state, &token, record.expires_at));
    };

    let root = ServerRoot::parse(server_url).map_err(|_| unable("Invalid serverUrl."))?;
    let server = state
        .servers
        .iter()
        .find(|s| s.server_root == root)
        .filter(|s| s.federation == Federation::ThisPortal)
        .cloned()
        .ok_or_else(|| unable("The serverUrl is not a server federated with this portal."))?;
    let minutes = GENERATED
        .with_default(i64::from(server.short_lived_minutes))
        .grant(params.get("expiration"), state.settings.org_cap)
        .map_err(|()| unable("Invalid expiration."))?;
    let mut lifetime = minutes_to_duration(minutes);
    if let Some(limit) = caller.token_expires_at {
        // A server token never outlives the portal token it was made from.
        lifetime = lifetime.min(limit.saturating_duration_since(now));
    }
    let (token, record) = state.issue_access(
        TokenKind::Server {
            server: server.name.clone(),
        },
        caller.username,
        caller.client_id,
        lifetime,
        None,
        referer,
    );
    Ok(respond(state, &token, record.expires_at))
}

/// `POST {server root}/tokens/generateToken` of a standalone server.
pub(super) fn server_generate(
    state: &mut State,
    server: Option<&str>,
    params: &Params,
    admin: bool,
) -> ResponseTemplate {
    let Some(server) = server
        .and_then(|name| state.server_index(name))
        .and_then(|i| state.servers.get(i))
        .filter(|s| s.federation == Federation::Standalone)
        .cloned()
    else {
        // Federated servers hand token requests to their portal.
        return wire::invalid_url();
    };
    if !params.wants_json() {
        return wire::html_without_f_json();
    }
    let issued = binding(params).and_then(|referer| {
        let caller = password_caller(state, params)?;
        let minutes = GENERATED
            .with_default(i64::from(server.short_lived_minutes))
            .grant(params.get("expiration"), state.settings.org_cap)
            .map_err(|()| unable("Invalid expiration."))?;
        let server = server.name.clone();
        Ok(state.issue_access(
            if admin {
                TokenKind::ServerAdmin { server }
            } else {
                TokenKind::Server { server }
            },
            caller.username,
            None,
            minutes_to_duration(minutes),
            None,
            referer,
        ))
    });
    match issued {
        Ok((token, record)) => respond(state, &token, record.expires_at),
        Err(body) => wire::json_ok(body),
    }
}
