//! `oauth2/authorize` and `oauth2/approval`.

use wiremock::ResponseTemplate;

use crate::config::OOB_REDIRECT_URI;
use crate::lifetimes::{self, REFRESH};
use crate::state::{CodeRecord, PkceMethod, State, minutes_to_duration, random_token};
use crate::tokens::TokenKind;
use crate::wire::{self, Params};

/// `GET oauth2/authorize`.
///
/// Client id and redirect URI are checked first, and their errors are shown
/// by the portal (never sent to an unverified redirect URI). Everything after
/// that is answered by redirecting to the redirect URI.
pub(super) fn authorize(state: &mut State, params: &Params) -> ResponseTemplate {
    authorize_as(state, params, None)
}

/// `POST oauth2/signin`: the sign-in page's form. Right credentials authorize
/// as that user (without signing them in for later requests: there are no
/// sessions); wrong ones show the form again.
pub(super) fn sign_in(state: &mut State, params: &Params) -> ResponseTemplate {
    let user = match (params.get("username"), params.get("password")) {
        (Some(name), Some(password)) => state
            .user(name)
            .filter(|u| u.password_matches(password))
            .map(|u| u.username.clone()),
        _ => None,
    };
    match user {
        Some(name) => authorize_as(state, params, Some(name)),
        None => sign_in_page(state, params, Some("Invalid username or password.")),
    }
}

/// Authorizes for `user`, or for the signed-in user when `None`.
fn authorize_as(state: &mut State, params: &Params, user: Option<String>) -> ResponseTemplate {
    let json = params.wants_json();
    let Some(app) = params.get("client_id").and_then(|c| state.app(c)).cloned() else {
        return portal_error(json, "invalid_client_id", "Invalid client_id");
    };
    let Some(redirect_uri) = params
        .get("redirect_uri")
        .filter(|r| app.allows_redirect_uri(r))
    else {
        return portal_error(json, "invalid_request", "Invalid redirect_uri");
    };
    let oob = redirect_uri == OOB_REDIRECT_URI;
    let back = Back {
        redirect_uri,
        oob,
        sharing_root: state.settings.sharing_root.clone(),
        state: params.get("state"),
    };

    let implicit = match params.get("response_type") {
        Some("code") => false,
        Some("token") if !oob => true,
        Some("token") => {
            return back.error(
                "invalid_request",
                "The out-of-band redirect_uri only works with response_type=code",
            );
        }
        _ => return back.error("unsupported_response_type", "Invalid response_type"),
    };
    let pkce = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) => None,
        (None, Some(_)) => {
            return back.error(
                "invalid_request",
                "code_challenge_method without code_challenge",
            );
        }
        (Some(c), None | Some("plain")) => Some((PkceMethod::Plain, c.to_owned())),
        (Some(c), Some("S256")) => Some((PkceMethod::S256, c.to_owned())),
        (Some(_), Some(_)) => {
            return back.error("invalid_request", "Invalid code_challenge_method");
        }
    };
    let rule = if implicit {
        lifetimes::IMPLICIT
    } else {
        REFRESH
    };
    let Ok(minutes) = rule.grant(params.get("expiration"), state.settings.org_cap) else {
        return back.error("invalid_request", "Invalid expiration");
    };

    if state.deny_next > 0 {
        state.deny_next -= 1;
        return back.error("access_denied", "The user denied your request.");
    }
    let Some(username) = user.or_else(|| state.signed_in.clone()) else {
        return sign_in_page(state, params, None);
    };

    if implicit {
        let (token, _) = state.issue_access(
            TokenKind::Implicit,
            Some(username.clone()),
            Some(app.client_id.clone()),
            minutes_to_duration(minutes),
            None,
            None,
        );
        let mut fragment = url::form_urlencoded::Serializer::new(String::new());
        fragment
            .append_pair("access_token", &token)
            .append_pair("expires_in", &(minutes * 60).to_string())
            .append_pair("username", &username)
            .append_pair("ssl", if state.settings.ssl { "true" } else { "false" });
        if let Some(s) = back.state {
            fragment.append_pair("state", s);
        }
        let mut location = redirect_uri
            .split('#')
            .next()
            .unwrap_or_default()
            .to_owned();
        location.push('#');
        location.push_str(&fragment.finish());
        return wire::redirect(&location);
    }

    let code = random_token(16);
    let record = CodeRecord {
        client_id: app.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        challenge: pkce,
        username,
        refresh_minutes: minutes,
        expires_at: state.now() + minutes_to_duration(lifetimes::CODE_MINUTES),
    };
    state.codes.insert(code.clone(), record);
    back.send(&[("code", &code)])
}

/// Where the answer of an authorization goes: the app's redirect URI, or the
/// approval page for out-of-band sign-in.
struct Back<'a> {
    redirect_uri: &'a str,
    oob: bool,
    sharing_root: String,
    state: Option<&'a str>,
}

impl Back<'_> {
    fn error(&self, error: &str, description: &str) -> ResponseTemplate {
        self.send(&[("error", error), ("error_description", description)])
    }

    fn send(&self, pairs: &[(&str, &str)]) -> ResponseTemplate {
        let target = if self.oob {
            format!("{}/oauth2/approval", self.sharing_root)
        } else {
            self.redirect_uri.to_owned()
        };
        let Ok(mut url) = url::Url::parse(&target) else {
            // Registered but not a URL (e.g. a bare word): nothing to redirect to.
            return portal_error(false, "invalid_request", "Invalid redirect_uri");
        };
        url.set_fragment(None);
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, v);
            }
            if let Some(s) = self.state.filter(|_| !self.oob) {
                query.append_pair("state", s);
            }
        }
        wire::redirect(url.as_str())
    }
}

/// An error the portal shows itself: JSON with HTTP 200 when asked with
/// `f=json`, otherwise an HTML error page (HTTP 400).
fn portal_error(json: bool, error: &str, description: &str) -> ResponseTemplate {
    if json {
        wire::json_ok(wire::oauth_error(400, error, description))
    } else {
        wire::html(400, "Error", description)
    }
}

/// The authorize parameters the sign-in form carries over.
const CARRIED: &[&str] = &[
    "client_id",
    "response_type",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "expiration",
    "locale",
    "style",
];

/// The sign-in page shown when nobody is signed in: a real form that posts
/// `username` and `password` (and the authorize parameters) to `oauth2/signin`.
fn sign_in_page(state: &State, params: &Params, error: Option<&str>) -> ResponseTemplate {
    let hidden: String = CARRIED
        .iter()
        .filter_map(|name| params.get(name).map(|v| (name, v)))
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">\n",
                wire::escape_html(value)
            )
        })
        .collect();
    let error = error
        .map(|e| {
            format!(
                "<p id=\"error\" role=\"alert\">{}</p>\n",
                wire::escape_html(e)
            )
        })
        .unwrap_or_default();
    let page = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"UTF-8\">\n<title>Sign In</title>\n</head>\n<body>\n\
         <h1>Sign in to ArcGIS Auth Testkit</h1>\n{error}\
         <form id=\"signin\" method=\"post\" action=\"{action}\">\n{hidden}\
         <label>Username <input id=\"user_username\" name=\"username\" autocomplete=\"username\"></label>\n\
         <label>Password <input id=\"user_password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\n\
         <button id=\"signIn\" type=\"submit\">Sign In</button>\n</form>\n</body>\n</html>\n",
        action = wire::escape_html(&format!("{}/oauth2/signin", state.settings.sharing_root)),
    );
    ResponseTemplate::new(200).set_body_raw(page.into_bytes(), "text/html; charset=utf-8")
}

/// `GET oauth2/approval?code=...`: the out-of-band code page.
pub(super) fn approval(state: &mut State, params: &Params) -> ResponseTemplate {
    let now = state.now();
    if let Some(code) = params.get("code") {
        let live = state.codes.get(code).is_some_and(|c| now < c.expires_at);
        if live {
            return wire::html(
                200,
                &format!("SUCCESS code={code}"),
                "Copy this code and paste it into the application.",
            );
        }
        return wire::html(
            200,
            "ERROR",
            "This authorization code is invalid or expired.",
        );
    }
    if let Some(error) = params.get("error") {
        let description = params.get("error_description").unwrap_or_default();
        return wire::html(200, &format!("ERROR error={error}"), description);
    }
    wire::html(200, "ERROR", "No authorization code.")
}
