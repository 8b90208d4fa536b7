//! The browser's session cookie: a random id, nothing else.
//!
//! The cookie carries no token and no user data: only a 256-bit random id
//! that names the server-side records in the session store. It is `HttpOnly`
//! (scripts cannot read it), `SameSite=Lax` (sent on the portal's redirect
//! back to `/callback`, a top-level GET, but not on cross-site POSTs, so
//! another site cannot sign the user out), `Secure` when the site is served
//! over HTTPS, and scoped to the whole site.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// The cookie's name.
pub const NAME: &str = "arcgis_example_session";

/// A session id: 32 random bytes from the operating system, as 64 hex digits.
pub fn new_session_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The session id the browser sent, if it sent a well-formed one.
///
/// Anything else (a missing cookie, a forged value of another shape) is
/// treated as no session, so only ids this server made reach the store.
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == NAME)
        .map(|(_, value)| value)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// The `Set-Cookie` value that gives the browser `id`.
pub fn set(id: &str, secure: bool) -> String {
    format!(
        "{NAME}={id}; Path=/; HttpOnly; SameSite=Lax{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that makes the browser forget the cookie.
pub fn clear(secure: bool) -> String {
    format!(
        "{NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_only_well_formed_ids() {
        let id = new_session_id().unwrap();
        let mut headers = HeaderMap::new();
        let cookie = format!("other=1; {NAME}={id}; x=y");
        headers.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert_eq!(session_id(&headers), Some(id));

        headers.insert(
            COOKIE,
            HeaderValue::from_static("arcgis_example_session=../../etc"),
        );
        assert_eq!(session_id(&headers), None);
        assert_eq!(session_id(&HeaderMap::new()), None);
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            set("ab", false),
            "arcgis_example_session=ab; Path=/; HttpOnly; SameSite=Lax"
        );
        assert!(set("ab", true).ends_with("; Secure"));
        assert!(clear(false).contains("Max-Age=0"));
    }
}
