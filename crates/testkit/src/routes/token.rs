//! `oauth2/token`: the four grants, verified for real.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use wiremock::ResponseTemplate;

use crate::calls::Grant;
use crate::config::App;
use crate::lifetimes::{APP, CODE_ACCESS};
use crate::state::{PkceMethod, State, minutes_to_duration};
use crate::tokens::TokenKind;
use crate::wire::{self, Params};

type Answer = Result<Value, Value>;

/// `POST oauth2/token`.
pub(super) fn token(state: &mut State, params: &Params) -> ResponseTemplate {
    let answer = match Grant::from_wire(params.get("grant_type")) {
        Grant::AuthorizationCode => authorization_code(state, params),
        Grant::ClientCredentials => client_credentials(state, params),
        Grant::RefreshToken => refresh_token(state, params),
        Grant::ExchangeRefreshToken => exchange_refresh_token(state, params),
        Grant::Other => match params.get("grant_type") {
            None => Err(bad_request("grant_type not specified")),
            Some(_) => Err(wire::oauth_error(
                400,
                "unsupported_grant_type",
                "Invalid grant_type",
            )),
        },
    };
    wire::json_ok(answer.unwrap_or_else(|e| e))
}

fn bad_request(description: &str) -> Value {
    wire::oauth_error(400, "invalid_request", description)
}

/// A dead refresh token: 498, so clients know to sign in again.
fn dead_refresh(description: &str) -> Value {
    wire::oauth_error(498, "invalid_request", description)
}

fn app(state: &State, params: &Params) -> Result<App, Value> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| bad_request("client_id not specified"))?;
    state
        .app(client_id)
        .cloned()
        .ok_or_else(|| wire::oauth_error(400, "invalid_client_id", "Invalid client_id"))
}

/// A `client_secret`, when given, must be right (also for apps that do not need one).
fn check_optional_secret(app: &App, params: &Params) -> Result<(), Value> {
    match params.get("client_secret") {
        Some(s) if !app.secret_matches(s) => Err(invalid_secret()),
        _ => Ok(()),
    }
}

fn invalid_secret() -> Value {
    wire::oauth_error(400, "invalid_client", "Invalid client_secret")
}

fn authorization_code(state: &mut State, params: &Params) -> Answer {
    let app = app(state, params)?;
    let code = params
        .get("code")
        .ok_or_else(|| bad_request("code not specified"))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| bad_request("redirect_uri not specified"))?;
    check_optional_secret(&app, params)?;
    let now = state.now();
    let record = state
        .codes
        .get(code)
        .filter(|c| c.client_id == app.client_id && now < c.expires_at)
        .cloned()
        .ok_or_else(|| bad_request("Invalid authorization code"))?;
    if record.redirect_uri != redirect_uri {
        return Err(bad_request("Invalid redirect_uri"));
    }
    if let Some((method, challenge)) = &record.challenge {
        let verifier = params
            .get("code_verifier")
            .ok_or_else(|| bad_request("code_verifier not specified"))?;
        if !pkce_verifies(*method, challenge, verifier) {
            return Err(bad_request("Invalid code_verifier"));
        }
    }
    // Single use: gone once exchanged.
    state.codes.remove(code);
    Ok(sign_in_answer(
        state,
        &app.client_id,
        &record.username,
        &record.redirect_uri,
        record.refresh_minutes,
        Grant::AuthorizationCode,
    ))
}

/// Issues a refresh token and an access token made with it, and answers both
/// (`authorization_code` and `exchange_refresh_token`).
fn sign_in_answer(
    state: &mut State,
    client_id: &str,
    username: &str,
    redirect_uri: &str,
    refresh_minutes: i64,
    grant: Grant,
) -> Value {
    let (refresh, refresh_record) = state.issue_refresh(
        client_id.to_owned(),
        username.to_owned(),
        redirect_uri.to_owned(),
        refresh_minutes,
    );
    let (access, _) = state.issue_access(
        TokenKind::UserAccess { grant },
        Some(username.to_owned()),
        Some(client_id.to_owned()),
        minutes_to_duration(CODE_ACCESS.default),
        Some(refresh.clone()),
        None,
    );
    user_answer(
        state,
        &access,
        username,
        Some((&refresh, refresh_record.expires_at)),
    )
}

/// Whether `verifier` matches the challenge: exact for `plain`, and
/// base64url-nopad(sha256(verifier)) for `S256`. The verifier must be 43–128
/// characters of `A-Z a-z 0-9 - . _ ~` (RFC 7636).
fn pkce_verifies(method: PkceMethod, challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let expected = match method {
        PkceMethod::Plain => verifier.to_owned(),
        PkceMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
    };
    arcgis_auth_core::__private::constant_time_eq(expected.as_bytes(), challenge.as_bytes())
}

fn client_credentials(state: &mut State, params: &Params) -> Answer {
    let app = app(state, params)?;
    let secret = params
        .get("client_secret")
        .ok_or_else(|| bad_request("client_secret not specified"))?;
    if !app.secret_matches(secret) {
        return Err(invalid_secret());
    }
    let minutes = APP
        .grant(params.get("expiration"), state.settings.org_cap)
        .map_err(|()| bad_request("Invalid expiration"))?;
    let (access, _) = state.issue_access(
        TokenKind::App,
        None,
        Some(app.client_id),
        minutes_to_duration(minutes),
        None,
        None,
    );
    Ok(json!({"access_token": access, "expires_in": minutes * 60}))
}

/// The refresh token named in the request, if it is alive and belongs to `app`.
fn live_refresh(state: &State, app: &App, params: &Params) -> Result<String, Value> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| bad_request("refresh_token not specified"))?;
    let record = state
        .refresh
        .get(token)
        .filter(|r| r.client_id == app.client_id && !r.revoked)
        .ok_or_else(|| dead_refresh("Invalid refresh_token"))?;
    if state.now() >= record.expires_at {
        return Err(dead_refresh("refresh_token expired"));
    }
    Ok(token.to_owned())
}

fn refresh_token(state: &mut State, params: &Params) -> Answer {
    let app = app(state, params)?;
    check_optional_secret(&app, params)?;
    let refresh = live_refresh(state, &app, params)?;
    let username = state
        .refresh
        .get(&refresh)
        .map(|r| r.username.clone())
        .unwrap_or_default();
    let (access, _) = state.issue_access(
        TokenKind::UserAccess {
            grant: Grant::RefreshToken,
        },
        Some(username.clone()),
        Some(app.client_id),
        minutes_to_duration(CODE_ACCESS.default),
        Some(refresh),
        None,
    );
    Ok(user_answer(state, &access, &username, None))
}

fn exchange_refresh_token(state: &mut State, params: &Params) -> Answer {
    let app = app(state, params)?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| bad_request("redirect_uri not specified"))?;
    check_optional_secret(&app, params)?;
    let old = live_refresh(state, &app, params)?;
    let Some(old_record) = state.refresh.get(&old).cloned() else {
        return Err(dead_refresh("Invalid refresh_token"));
    };
    // ArcGIS asks for "the redirect URI of the authorization step"; any URI
    // registered for the app is accepted (a loopback listener's port changes
    // between runs), anything else is refused.
    if !app.allows_redirect_uri(redirect_uri) {
        return Err(bad_request("Invalid redirect_uri"));
    }
    // Rotation: the old refresh token stops working; access tokens already made stay valid.
    if let Some(r) = state.refresh.get_mut(&old) {
        r.revoked = true;
    }
    Ok(sign_in_answer(
        state,
        &app.client_id,
        &old_record.username,
        &old_record.redirect_uri,
        old_record.lifetime_minutes,
        Grant::ExchangeRefreshToken,
    ))
}

/// `{"access_token","expires_in","username","ssl"[,"refresh_token","refresh_token_expires_in"]}`.
fn user_answer(
    state: &State,
    access: &str,
    username: &str,
    refresh: Option<(&str, arcgis_auth_core::Timestamp)>,
) -> Value {
    let mut body = Map::new();
    body.insert("access_token".into(), Value::from(access));
    body.insert("expires_in".into(), Value::from(CODE_ACCESS.default * 60));
    body.insert("username".into(), Value::from(username));
    body.insert("ssl".into(), Value::from(state.settings.ssl));
    if let Some((token, expires_at)) = refresh {
        body.insert("refresh_token".into(), Value::from(token));
        if state.settings.send_refresh_expires_in {
            let secs = expires_at.saturating_duration_since(state.now()).as_secs();
            body.insert("refresh_token_expires_in".into(), Value::from(secs));
        }
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_verifies(PkceMethod::S256, challenge, verifier));
        assert!(!pkce_verifies(PkceMethod::Plain, challenge, verifier));
        assert!(pkce_verifies(PkceMethod::Plain, verifier, verifier));
        assert!(!pkce_verifies(PkceMethod::S256, challenge, "short"));
        let bad_chars = format!("{verifier}!");
        assert!(!pkce_verifies(PkceMethod::Plain, &bad_chars, &bad_chars));
    }
}
