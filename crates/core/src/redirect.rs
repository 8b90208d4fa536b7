//! Reading what the portal sends back to a redirect URI: the query of an
//! authorization-code redirect, or the fragment of an implicit-grant one.
//!
//! One set of rules for every caller ([`Authorization`](crate::Authorization)
//! here, the sign-in flows above): the redirect must carry exactly one
//! `state`, compared in constant time, before an `error=` in it is believed
//! (a forged denial is still forged); a denial without any state is
//! believed, since the portal may leave it out; error text loses its
//! control characters and is cut short (anyone can craft a redirect, and its
//! text ends up in logs).

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::arcgis_error::ArcGisError;
use crate::error::{Error, ErrorKind, Result};
use crate::time::Timestamp;
use crate::token::{MAX_LIFETIME_SECS, Token, constant_time_eq};

/// Which part of a redirect carries the sign-in's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedirectPart {
    /// The query (`?code=...&state=...`): the authorization code flow.
    Query,
    /// The fragment (`#access_token=...&state=...`): the implicit grant.
    Fragment,
}

/// The parameters of a sign-in redirect, read by one set of rules.
///
/// Read with [`parse`](Self::parse) (a full redirect URL, a request target
/// such as `/callback?code=...`, or the bare query or fragment), check with
/// [`check_state`](Self::check_state), then take the [`code`](Self::code) or
/// the [`implicit_token`](Self::implicit_token). Parameters other than the
/// sign-in's (the app's own, in a redirect URI with a query) are ignored.
///
/// `Debug` never shows the code, the token or the state.
///
/// ```
/// use arcgis_auth_core::{ErrorKind, ExposeSecret, RedirectParams, RedirectPart};
///
/// let back = RedirectParams::parse("https://app.example.com/cb?code=c0de&state=s1", RedirectPart::Query);
/// back.check_state("s1").unwrap();
/// assert_eq!(back.code().unwrap().expose_secret(), "c0de");
///
/// // Someone else's state: refused, even to report an error.
/// let forged = RedirectParams::parse("?error=access_denied&state=other", RedirectPart::Query);
/// assert_eq!(forged.check_state("s1").unwrap_err().kind(), ErrorKind::StateMismatch);
/// // A denial without any state is believed.
/// let denied = RedirectParams::parse("?error=access_denied", RedirectPart::Query);
/// assert_eq!(denied.check_state("s1").unwrap_err().kind(), ErrorKind::AccessDenied);
/// ```
#[derive(Default)]
pub struct RedirectParams {
    code: Option<SecretString>,
    access_token: Option<SecretString>,
    expires_in: Option<String>,
    username: Option<String>,
    ssl: Option<String>,
    states: Vec<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl RedirectParams {
    /// Reads the parameters from `part` of `callback`: a full redirect URL or
    /// request target (the part after `?` or `#`), or the bare query or
    /// fragment itself (with or without its leading `?` or `#`). Surrounding
    /// white space is ignored.
    pub fn parse(callback: &str, part: RedirectPart) -> Self {
        let input = callback.trim();
        let encoded = match part {
            RedirectPart::Query => {
                let before_fragment = input.split_once('#').map_or(input, |(before, _)| before);
                before_fragment
                    .split_once('?')
                    .map_or(before_fragment, |(_, query)| query)
            }
            RedirectPart::Fragment => match input.split_once('#') {
                Some((_, fragment)) => fragment,
                None => input.strip_prefix('?').unwrap_or(input),
            },
        };
        RedirectParams::from_encoded(encoded)
    }

    /// Reads `name=value` pairs (`application/x-www-form-urlencoded`), e.g.
    /// [`Url::query`](url::Url::query) or [`Url::fragment`](url::Url::fragment).
    pub fn from_encoded(encoded: &str) -> Self {
        let mut p = RedirectParams::default();
        for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
            let slot = match k.as_ref() {
                "code" => {
                    p.code.get_or_insert_with(|| v.into_owned().into());
                    continue;
                }
                "access_token" => {
                    p.access_token.get_or_insert_with(|| v.into_owned().into());
                    continue;
                }
                "state" => {
                    p.states.push(v.into_owned());
                    continue;
                }
                "expires_in" => &mut p.expires_in,
                "username" => &mut p.username,
                "ssl" => &mut p.ssl,
                "error" => &mut p.error,
                "error_description" => &mut p.error_description,
                _ => continue,
            };
            slot.get_or_insert_with(|| v.into_owned());
        }
        p
    }

    /// Checks the state, then for an `error`.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::StateMismatch`]: the redirect carries no `state`, more
    ///   than one, or another than `expected` (constant-time): it is forged
    ///   or belongs to another sign-in. Also when it reports an error, unless
    ///   it carries no state at all.
    /// - [`ErrorKind::AccessDenied`] for `error=access_denied` (the user
    ///   declined); the matching kind for other `error` values
    ///   ([`ErrorKind::InvalidRequest`] for `invalid_request`, ...).
    pub fn check_state(&self, expected: &str) -> Result<()> {
        let state_ok = match self.states.as_slice() {
            [returned] => constant_time_eq(returned.as_bytes(), expected.as_bytes()),
            _ => false,
        };
        if !state_ok && (self.error.is_none() || !self.states.is_empty()) {
            return Err(Error::new(
                ErrorKind::StateMismatch,
                "the sign-in redirect does not carry the state this sign-in sent: it is forged \
                 or belongs to another sign-in; start the sign-in again",
            ));
        }
        match &self.error {
            Some(error) => Err(redirect_error(error, self.error_description.as_deref())),
            None => Ok(()),
        }
    }

    /// The authorization code (check the state first).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`] when there is no code, or an empty one.
    pub fn code(&self) -> Result<SecretString> {
        self.code
            .as_ref()
            .filter(|c| !c.expose_secret().is_empty())
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    "the sign-in redirect carries no code: pass the whole redirect URL (or its \
                     query), or start the sign-in again",
                )
            })
    }

    /// The implicit-grant token (check the state first), expiring
    /// `expires_in` seconds after `now` (when the redirect arrived), with its
    /// `username` and `ssl`. Implicit tokens have no refresh token.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::UnparseableResponse`] for a missing or empty
    /// `access_token`, an `expires_in` that is missing or not a whole number
    /// of seconds from 1 to [`MAX_LIFETIME_SECS`], or an `ssl` that is
    /// neither `true` nor `false`.
    pub fn implicit_token(&self, now: Timestamp) -> Result<Token> {
        let broken = |what: &str| {
            Error::new(
                ErrorKind::UnparseableResponse,
                format!(
                    "the implicit sign-in redirect {what}: pass the full redirect URL or its \
                     fragment, or start the sign-in again"
                ),
            )
        };
        let access = self
            .access_token
            .as_ref()
            .filter(|t| !t.expose_secret().is_empty())
            .cloned()
            .ok_or_else(|| broken("carries no access_token"))?;
        let expires_in = self
            .expires_in
            .as_deref()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|s| (1..=MAX_LIFETIME_SECS).contains(s))
            .ok_or_else(|| broken("has no valid expires_in (seconds)"))?;
        let ssl = match self.ssl.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(broken("has an ssl that is neither true nor false")),
        };
        Ok(Token::new(access, now + Duration::from_secs(expires_in))
            .with_ssl(ssl)
            .with_username(self.username.clone().filter(|u| !u.is_empty())))
    }
}

impl fmt::Debug for RedirectParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| present.then_some("[REDACTED]");
        f.debug_struct("RedirectParams")
            .field("code", &redacted(self.code.is_some()))
            .field("access_token", &redacted(self.access_token.is_some()))
            .field("expires_in", &self.expires_in)
            .field("username", &self.username)
            .field("ssl", &self.ssl)
            .field("states", &self.states.len())
            .field("error", &self.error.as_deref().map(|e| printable(e, 64)))
            .finish_non_exhaustive()
    }
}

/// The typed error for `error=...` in a redirect.
fn redirect_error(error: &str, description: Option<&str>) -> Error {
    let error = printable(error, 64);
    let description = description.map(|d| printable(d, 200));
    let detail = match description.as_deref() {
        Some(d) if !d.is_empty() => format!("{error}: {d}"),
        _ => error.clone(),
    };
    let mut body = serde_json::Map::new();
    body.insert("error".into(), error.clone().into());
    if let Some(d) = description {
        body.insert("error_description".into(), d.into());
    }
    let arcgis = ArcGisError::from_value(&serde_json::Value::Object(body)).unwrap_or_default();
    if error == "access_denied" {
        return Error::new(
            ErrorKind::AccessDenied,
            format!(
                "the sign-in was declined ({detail}): sign in again and approve the app to continue"
            ),
        )
        .with_arcgis(arcgis);
    }
    let kind = arcgis.kind();
    Error::new(
        kind,
        format!(
            "the portal refused the sign-in ({detail}): check the app's client id and redirect \
             URI, then sign in again"
        ),
    )
    .with_arcgis(arcgis)
}

/// `s` without control characters, cut at `max` characters.
fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(callback: &str, part: RedirectPart) -> std::result::Result<(), ErrorKind> {
        RedirectParams::parse(callback, part)
            .check_state("s")
            .map_err(|e| e.kind())
    }

    #[test]
    fn urls_targets_and_bare_parts_are_read() {
        for q in [
            "https://a.example/cb?x=1&code=c&state=s#frag",
            "/callback?code=c&state=s",
            "?code=c&state=s",
            " code=c&state=s \n",
        ] {
            let p = RedirectParams::parse(q, RedirectPart::Query);
            assert!(p.check_state("s").is_ok(), "{q}");
            assert_eq!(p.code().unwrap().expose_secret(), "c", "{q}");
        }
        for f in [
            "https://a.example/cb?app=1#access_token=t&expires_in=60&state=s",
            "#access_token=t&expires_in=60&state=s",
            "access_token=t&expires_in=60&state=s",
        ] {
            let p = RedirectParams::parse(f, RedirectPart::Fragment);
            assert!(p.check_state("s").is_ok(), "{f}");
            let token = p.implicit_token(Timestamp::UNIX_EPOCH).unwrap();
            assert_eq!(token.access_token().expose_secret(), "t", "{f}");
        }
    }

    #[test]
    fn exactly_one_matching_state() {
        let q = RedirectPart::Query;
        assert_eq!(kind("code=c&state=s", q), Ok(()));
        assert_eq!(kind("code=c", q), Err(ErrorKind::StateMismatch));
        assert_eq!(
            kind("code=c&state=s&state=s", q),
            Err(ErrorKind::StateMismatch)
        );
        assert_eq!(
            kind("code=c&state=s&state=x", q),
            Err(ErrorKind::StateMismatch)
        );
        assert_eq!(kind("code=c&state=S", q), Err(ErrorKind::StateMismatch));
        // A forged denial is still forged; a denial without state is believed.
        assert_eq!(
            kind("error=access_denied&state=other", q),
            Err(ErrorKind::StateMismatch)
        );
        assert_eq!(kind("error=access_denied", q), Err(ErrorKind::AccessDenied));
        assert_eq!(
            kind("error=invalid_request&state=s", q),
            Err(ErrorKind::InvalidRequest)
        );
    }

    #[test]
    fn error_text_is_printable_and_short() {
        let long = "x".repeat(1000);
        let e = RedirectParams::parse(
            &format!("error=invalid_request&error_description=bad%0A%1Bredirect{long}&state=s"),
            RedirectPart::Query,
        )
        .check_state("s")
        .unwrap_err();
        assert!(e.message().contains("badredirect"), "{e}");
        assert!(!e.message().chars().any(char::is_control), "{e}");
        assert!(e.message().len() < 400, "{e}");
    }

    #[test]
    fn implicit_ssl_is_true_or_false() {
        let token = |ssl: &str| {
            RedirectParams::from_encoded(&format!("access_token=t&expires_in=60{ssl}"))
                .implicit_token(Timestamp::UNIX_EPOCH)
                .map(|t| t.ssl())
                .map_err(|e| e.kind())
        };
        assert_eq!(token(""), Ok(false));
        assert_eq!(token("&ssl=false"), Ok(false));
        assert_eq!(token("&ssl=true"), Ok(true));
        assert_eq!(token("&ssl=yes"), Err(ErrorKind::UnparseableResponse));
    }

    #[test]
    fn debug_hides_the_code_token_and_state() {
        let p = RedirectParams::from_encoded("code=c0de&access_token=t0ken&state=st4te");
        let shown = format!("{p:?}");
        for secret in ["c0de", "t0ken", "st4te"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
