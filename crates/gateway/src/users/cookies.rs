//! The gateway's cookies: reading them from requests, writing `Set-Cookie`, and keeping them from upstreams.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, header};

use super::ids::RandomId;

/// The id the cookie `name` carries, if the request has one of the right shape.
pub(crate) fn read(headers: &HeaderMap, name: &str) -> Option<RandomId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .and_then(|(_, value)| RandomId::parse(value.trim().trim_matches('"')))
}

/// `Set-Cookie` for `name=id`: host-only, Secure, HttpOnly, SameSite=Lax,
/// Path=/, for `max_age`.
pub(crate) fn set(name: &str, id: &RandomId, max_age: Duration) -> HeaderValue {
    let text = format!(
        "{name}={}; Path=/; Max-Age={}; Secure; HttpOnly; SameSite=Lax",
        id.expose(),
        max_age.as_secs()
    );
    let mut value = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""));
    value.set_sensitive(true);
    value
}

/// `Set-Cookie` that removes the cookie `name`.
pub(crate) fn clear(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// Removes the cookies named `names` from every `Cookie` header of
/// `headers` (a header left empty goes), keeping the others as written.
pub(crate) fn strip(headers: &mut HeaderMap, names: &[&str]) {
    if !headers.contains_key(header::COOKIE) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| {
            let Ok(text) = v.to_str() else {
                return Some(v.clone());
            };
            let rest: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|pair| {
                    let name = pair.split('=').next().unwrap_or("").trim();
                    !pair.is_empty() && !names.contains(&name)
                })
                .collect();
            (!rest.is_empty())
                .then(|| HeaderValue::from_str(&rest.join("; ")).ok())
                .flatten()
        })
        .collect();
    headers.remove(header::COOKIE);
    for value in kept {
        headers.append(header::COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    fn with_cookies(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn reads_the_named_cookie_only() {
        let h = with_cookies(&["a=1; __Host-arcgis=".to_owned().as_str(), "x=2"]);
        assert!(read(&h, "__Host-arcgis").is_none());
        let h = with_cookies(&[&format!("a=1; __Host-arcgis={ID}; b=2")]);
        assert_eq!(read(&h, "__Host-arcgis").expect("id").expose(), ID);
        assert!(read(&h, "__Host-other").is_none());
        let h = with_cookies(&[&format!("x__Host-arcgis={ID}")]);
        assert!(read(&h, "__Host-arcgis").is_none());
    }

    #[test]
    fn set_cookie_has_exactly_the_promised_attributes() {
        let id = RandomId::parse(ID).expect("id");
        let v = set("__Host-arcgis", &id, Duration::from_secs(3600));
        assert_eq!(
            v.to_str().expect("ascii"),
            format!("__Host-arcgis={ID}; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax")
        );
        assert!(v.is_sensitive());
        assert_eq!(
            clear("__Host-arcgis").to_str().expect("ascii"),
            "__Host-arcgis=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn strip_keeps_other_cookies_as_written() {
        let mut h = with_cookies(&[
            &format!("a=1; __Host-arcgis={ID}; b=2"),
            "__Host-arcgis-pending=x",
        ]);
        strip(&mut h, &["__Host-arcgis", "__Host-arcgis-pending"]);
        let all: Vec<_> = h.get_all(header::COOKIE).iter().collect();
        assert_eq!(all, vec![HeaderValue::from_static("a=1; b=2")]);
    }
}
