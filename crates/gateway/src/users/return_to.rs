//! `return_to`: where a sign-in sends the browser back, a path on this site only.

/// The longest `return_to` accepted.
const MAX_LEN: usize = 2048;

/// How many rounds of percent-decoding are looked through.
const DECODE_ROUNDS: usize = 4;

/// `raw` (the query parameter, already decoded once) when it is a path of
/// this site: it starts with one `/`, and neither it nor any percent-decoding
/// of it starts with `//` or `/\`, holds a backslash, a control character or
/// a space, or is not printable ASCII. No `return_to` means `/`.
pub(crate) fn check(raw: Option<&str>) -> Option<String> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Some("/".to_owned());
    };
    if raw.len() > MAX_LEN || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut text = raw.to_owned();
    for _ in 0..=DECODE_ROUNDS {
        if !safe_path(&text) {
            return None;
        }
        let decoded = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == text {
            return Some(raw.to_owned());
        }
        text = decoded;
    }
    // Still changing after that many rounds: not a path anyone means.
    None
}

/// One round's rule: a single leading `/`, no backslash, nothing a browser
/// would drop or read as a scheme or authority.
fn safe_path(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && !text.contains('\\')
        && !text.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn same_site_paths_pass_as_written() {
        assert_eq!(check(None).as_deref(), Some("/"));
        assert_eq!(check(Some("")).as_deref(), Some("/"));
        for ok in [
            "/",
            "/map",
            "/a/b?c=d&e=%2Fx",
            "/app#layer=1",
            "/redirect?to=https://x.example",
        ] {
            assert_eq!(check(Some(ok)).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn open_redirects_are_refused_in_every_form() {
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "evil.example",
            "/%2Fevil.example",
            "/%2fevil.example",
            "/%5Cevil.example",
            "%2F%2Fevil.example",
            "/%252Fevil.example",
            "/%25252F%25252Fevil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/ /evil.example",
            "/caf\u{e9}",
        ] {
            assert_eq!(check(Some(bad)), None, "{bad}");
        }
        assert_eq!(check(Some(&format!("/{}", "a".repeat(3000)))), None);
    }
}
