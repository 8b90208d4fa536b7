//! Reading the proxied target from `<proxy_path>?<URL>`: one decode, then refusal of every dangerous shape.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use url::Url;

/// Why a target was refused. Every variant answers 400 except [`NotAllowed`](TargetError::NotAllowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TargetError {
    /// Nothing after the `?`.
    Missing,
    /// Not an absolute `http://` or `https://` URL.
    Unparseable,
    /// CR, LF, NUL or another control character, raw or percent-encoded.
    ControlCharacter,
    /// A backslash, raw or percent-encoded.
    Backslash,
    /// A user name or password (`user@host`).
    Userinfo,
    /// A `#fragment`.
    Fragment,
    /// An encoded `/` inside a path segment, which servers disagree about.
    EncodedSlash,
}

impl TargetError {
    /// What the browser is told (never the target itself).
    pub(crate) fn message(self) -> &'static str {
        match self {
            TargetError::Missing => "no target URL: call <proxy>?<absolute URL>",
            TargetError::Unparseable => "the target is not an absolute http:// or https:// URL",
            TargetError::ControlCharacter => "the target contains a control character",
            TargetError::Backslash => "the target contains a backslash",
            TargetError::Userinfo => "the target contains a user name or password",
            TargetError::Fragment => "the target contains a fragment",
            TargetError::EncodedSlash => "the target's path contains an encoded slash or backslash",
        }
    }
}

/// A target that passed every check: an absolute URL, dot-segments removed,
/// as it will be requested upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) url: Url,
}

impl Target {
    /// The decoded path segments, for matching against routes (borrowed from
    /// the URL unless a segment has a percent-escape).
    pub(crate) fn segments(&self) -> Vec<Cow<'_, str>> {
        self.url
            .path_segments()
            .map(|segments| {
                segments
                    .filter(|s| !s.is_empty())
                    .map(|s| percent_decode_str(s).decode_utf8_lossy())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The path segments of `url`, each percent-decoded once; empty segments
/// (a trailing `/`) are dropped.
pub(crate) fn path_segments(url: &Url) -> Vec<String> {
    url.path_segments()
        .map(|segments| {
            segments
                .filter(|s| !s.is_empty())
                .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `raw` is the percent-encoded form (`https%3A%2F%2F…`, any case).
fn is_encoded_form(raw: &str) -> bool {
    let starts = |prefix: &str| {
        raw.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    starts("http%3a") || starts("https%3a") || starts("%2f%2f")
}

/// Whether `text` holds one of the percent-escapes `codes` (each `%` and two
/// lower-case hex digits), in any case.
fn has_encoded(text: &str, codes: &[&str]) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr_iter(b'%', bytes).any(|at| {
        bytes.get(at..at + 3).is_some_and(|escape| {
            codes
                .iter()
                .any(|c| escape.eq_ignore_ascii_case(c.as_bytes()))
        })
    })
}

/// Parses the raw query of a proxy request (everything after the first `?`).
pub(crate) fn parse(raw: &str) -> Result<Target, TargetError> {
    if raw.is_empty() {
        return Err(TargetError::Missing);
    }
    let text = if is_encoded_form(raw) {
        percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| TargetError::Unparseable)?
    } else {
        Cow::Borrowed(raw)
    };
    check_text(&text)?;
    let (scheme, rest) = text.split_once("://").ok_or(TargetError::Unparseable)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(TargetError::Unparseable);
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') || has_encoded(authority, &["%40"]) {
        return Err(TargetError::Userinfo);
    }
    if authority.is_empty() || authority.contains('%') {
        return Err(TargetError::Unparseable);
    }
    let path_end = rest[authority_end..]
        .find('?')
        .map_or(rest.len(), |i| authority_end + i);
    if has_encoded(&rest[authority_end..path_end], &["%2f", "%5c"]) {
        return Err(TargetError::EncodedSlash);
    }
    let url = Url::parse(&text).map_err(|_| TargetError::Unparseable)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Userinfo);
    }
    if url.fragment().is_some() {
        return Err(TargetError::Fragment);
    }
    if url.host_str().is_none() {
        return Err(TargetError::Unparseable);
    }
    Ok(Target { url })
}

fn check_text(text: &str) -> Result<(), TargetError> {
    if text.chars().any(|c| c.is_control()) {
        return Err(TargetError::ControlCharacter);
    }
    if has_encoded(text, &["%0d", "%0a", "%00", "%09", "%7f"]) {
        return Err(TargetError::ControlCharacter);
    }
    if text.contains('\\') || text.contains('\u{ff3c}') {
        return Err(TargetError::Backslash);
    }
    if text.contains('#') {
        return Err(TargetError::Fragment);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        parse(raw)
            .unwrap_or_else(|e| panic!("{raw}: {e:?}"))
            .url
            .to_string()
    }

    #[test]
    fn raw_and_encoded_forms_read_the_same() {
        let a = ok("https://h.example/arcgis/rest/services/A/MapServer?f=json&where=1%3D1");
        let b = ok(
            "https%3A%2F%2Fh.example%2Farcgis%2Frest%2Fservices%2FA%2FMapServer%3Ff%3Djson%26where%3D1%253D1",
        );
        assert_eq!(a, b);
        assert_eq!(
            a,
            "https://h.example/arcgis/rest/services/A/MapServer?f=json&where=1%3D1"
        );
    }

    #[test]
    fn the_encoded_form_is_told_in_any_case() {
        assert_eq!(ok("HTTPS%3A%2F%2Fh.example%2Fa"), "https://h.example/a");
        assert_eq!(ok("Http%3a%2f%2fh.example%2fa"), "http://h.example/a");
        // A lone `%` or one cut short is not an escape the checks look for.
        assert_eq!(ok("https://h.example/a?x=%"), "https://h.example/a?x=%");
        assert_eq!(ok("https://h.example/a?x=%2"), "https://h.example/a?x=%2");
    }

    #[test]
    fn decoded_only_once() {
        // Double-encoded: after one decode it is still not a URL.
        assert_eq!(
            parse("https%253A%252F%252Fh.example%252F"),
            Err(TargetError::Unparseable)
        );
    }

    #[test]
    fn dot_segments_are_removed() {
        assert_eq!(ok("https://h.example/a/b/../../c"), "https://h.example/c");
        assert_eq!(ok("https://h.example/a/%2e%2e/c"), "https://h.example/c");
        assert_eq!(ok("https://H.Example:443/a/./b"), "https://h.example/a/b");
    }

    #[test]
    fn dangerous_shapes_are_refused() {
        use TargetError::*;
        let cases = [
            ("", Missing),
            ("ping2", Unparseable),
            ("//h.example/a", Unparseable),
            ("ftp://h.example/a", Unparseable),
            ("https://allowed.example@evil.example/a", Userinfo),
            ("https://@evil.example/a", Userinfo),
            ("https://a:b@evil.example/a", Userinfo),
            ("https%3A%2F%2Fallowed.example%40evil.example%2Fa", Userinfo),
            ("https://allowed.example%40evil.example/a", Userinfo),
            ("https://h.example/a%0d%0aX-Injected:%201", ControlCharacter),
            ("https://h.example/a?x=%0A", ControlCharacter),
            (
                "https%3A%2F%2Fh.example%2Fa%0D%0AHost%3A%20evil",
                ControlCharacter,
            ),
            ("https://h.example/a\r\nHost: evil", ControlCharacter),
            ("https://h.example\\@evil.example/a", Backslash),
            ("https://evil.example\\.h.example/a", Backslash),
            ("https://h.example/a#frag", Fragment),
            ("https://h.example/a%2f..%2f..%2fadmin", EncodedSlash),
            ("https://h.example/a%5c..%5cadmin", EncodedSlash),
            // Any case, and an escape right after a lone `%`.
            ("https://h.example/a%2F..%2Fadmin", EncodedSlash),
            ("https://h.example/a%5C..", EncodedSlash),
            ("https://h.example/a?x=%%0A", ControlCharacter),
            ("https://h.example/a?x=%7F", ControlCharacter),
            ("https://allowed.example%40evil.example/a", Userinfo),
            ("HTTPS%3A%2F%2Fh.example%2Fa%0a", ControlCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(raw), Err(want), "{raw:?}");
        }
    }
}
