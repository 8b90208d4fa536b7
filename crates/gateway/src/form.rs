//! The browser's `application/x-www-form-urlencoded` bodies with their
//! `token` fields removed, whole or as they stream: only the field name being
//! read is held, never the body.

use bytes::{Bytes, BytesMut};

/// The longest field name read; a longer one is refused (no form the Maps SDK
/// or ArcGIS sends has one, and an unbounded name could hide `token`).
pub(crate) const MAX_NAME: usize = 8 * 1024;

/// A field name over [`MAX_NAME`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NameTooLong;

impl std::fmt::Display for NameTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a form field name is longer than {MAX_NAME} bytes")
    }
}

impl std::error::Error for NameTooLong {}

/// Where in a field the filter is.
#[derive(Debug)]
enum State {
    /// Reading a name (held until `=` or `&` says what it is).
    Name(BytesMut),
    /// In a kept field's value: passed on as it comes.
    KeptValue,
    /// In a `token` field's value: dropped.
    DroppedValue,
}

/// Removes every field named `token` (any case, percent-encoded or with
/// `+`/spaces around it) from a form body fed to it in chunks of any size;
/// the other fields stay byte for byte as written, joined by single `&`s
/// (empty fields go, as [`strip_token_params`](crate::proxy::strip_token_params)
/// does for queries).
#[derive(Debug)]
pub(crate) struct TokenFieldFilter {
    state: State,
    /// Whether a kept field has been written (so the next one needs an `&`).
    wrote_field: bool,
}

impl Default for TokenFieldFilter {
    fn default() -> Self {
        TokenFieldFilter {
            state: State::Name(BytesMut::new()),
            wrote_field: false,
        }
    }
}

impl TokenFieldFilter {
    /// The filtered bytes of `chunk` (what can be decided so far).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<Bytes, NameTooLong> {
        let mut out = BytesMut::with_capacity(chunk.len());
        let mut rest = chunk;
        while !rest.is_empty() {
            match &mut self.state {
                State::Name(name) => {
                    let end = rest.iter().position(|&b| b == b'=' || b == b'&');
                    let (part, tail) = rest.split_at(end.unwrap_or(rest.len()));
                    if name.len() + part.len() > MAX_NAME {
                        return Err(NameTooLong);
                    }
                    name.extend_from_slice(part);
                    rest = tail;
                    match rest.first() {
                        None => {}
                        Some(b'=') => {
                            rest = &rest[1..];
                            let name = std::mem::take(name);
                            if is_token(&name) {
                                self.state = State::DroppedValue;
                            } else {
                                self.open_field(&mut out);
                                out.extend_from_slice(&name);
                                out.extend_from_slice(b"=");
                                self.state = State::KeptValue;
                            }
                        }
                        Some(_) => {
                            // `&` ends a field with no `=`: kept unless empty or `token`.
                            rest = &rest[1..];
                            let name = std::mem::take(name);
                            if !name.is_empty() && !is_token(&name) {
                                self.open_field(&mut out);
                                out.extend_from_slice(&name);
                            }
                        }
                    }
                }
                State::KeptValue | State::DroppedValue => {
                    let end = rest.iter().position(|&b| b == b'&');
                    let (part, tail) = rest.split_at(end.unwrap_or(rest.len()));
                    if matches!(self.state, State::KeptValue) {
                        out.extend_from_slice(part);
                    }
                    rest = tail;
                    if !rest.is_empty() {
                        rest = &rest[1..];
                        self.state = State::Name(BytesMut::new());
                    }
                }
            }
        }
        Ok(out.freeze())
    }

    /// What is left at the end of the body: a last field with no `=`.
    pub(crate) fn finish(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        if let State::Name(name) = &mut self.state {
            let name = std::mem::take(name);
            if !name.is_empty() && !is_token(&name) {
                self.open_field(&mut out);
                out.extend_from_slice(&name);
            }
        }
        self.state = State::Name(BytesMut::new());
        out.freeze()
    }

    /// Writes the `&` before a kept field that is not the first.
    fn open_field(&mut self, out: &mut BytesMut) {
        if self.wrote_field {
            out.extend_from_slice(b"&");
        }
        self.wrote_field = true;
    }

    /// The whole of `body`, filtered.
    pub(crate) fn filter_all(body: &[u8]) -> Result<Bytes, NameTooLong> {
        let mut filter = TokenFieldFilter::default();
        let mut out = BytesMut::from(&filter.feed(body)?[..]);
        out.extend_from_slice(&filter.finish());
        Ok(out.freeze())
    }
}

/// Whether a raw field name means `token`: `+` as space, percent-decoded,
/// trimmed, any case.
fn is_token(raw: &[u8]) -> bool {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8_lossy(&decoded)
        .trim()
        .eq_ignore_ascii_case("token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::strip_token_params;

    fn chunked(body: &[u8], size: usize) -> Vec<u8> {
        let mut filter = TokenFieldFilter::default();
        let mut out = Vec::new();
        for chunk in body.chunks(size.max(1)) {
            out.extend_from_slice(&filter.feed(chunk).expect("short names"));
        }
        out.extend_from_slice(&filter.finish());
        out
    }

    #[test]
    fn token_fields_go_in_every_spelling_and_the_rest_stays_as_written() {
        for (body, want) in [
            ("a=1&token=x&b=2", "a=1&b=2"),
            ("token=x", ""),
            ("TOKEN=x&where=1%3D1&f=json", "where=1%3D1&f=json"),
            ("%74oken=x&a=1", "a=1"),
            ("+token+=x&a=1", "a=1"),
            ("a=1&&b=2&", "a=1&b=2"),
            ("token&a", "a"),
            ("a=x%26token%3Dy&tokens=1", "a=x%26token%3Dy&tokens=1"),
            ("a=token=1&token==2", "a=token=1"),
            ("", ""),
            ("&&&", ""),
            ("a", "a"),
        ] {
            for size in [1, 2, 3, 7, 1000] {
                assert_eq!(
                    String::from_utf8(chunked(body.as_bytes(), size)).expect("ascii"),
                    want,
                    "{body} in chunks of {size}"
                );
            }
            assert_eq!(strip_token_params(body), want, "queries agree: {body}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_unchanged() {
        let body = b"name=caf\xe9&token=x&z=\xff\xfe";
        assert_eq!(chunked(body, 2), b"name=caf\xe9&z=\xff\xfe");
    }

    #[test]
    fn an_endless_name_is_refused_whatever_the_chunks() {
        let mut filter = TokenFieldFilter::default();
        let chunk = vec![b'+'; 1024];
        let mut result = Ok(Bytes::new());
        for _ in 0..=MAX_NAME / 1024 {
            result = filter.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(NameTooLong));
        // A long value is fine: only names are held.
        let long_value = format!("a={}&token=x", "v".repeat(3 * MAX_NAME));
        let out = TokenFieldFilter::filter_all(long_value.as_bytes()).expect("short names");
        assert_eq!(out.len(), 2 + 3 * MAX_NAME);
    }
}

#[cfg(test)]
mod properties {
    use super::TokenFieldFilter;
    use crate::proxy::strip_token_params;
    use proptest::prelude::*;

    proptest! {
        /// Any chunking gives what filtering the whole body gives, which is
        /// what the query filter gives for the same text.
        #[test]
        fn chunking_never_changes_the_result(
            fields in proptest::collection::vec("(token|TOKEN|%74oken|\\+token|a|b%3D|)(=[a-z&%0-9]{0,6})?", 0..8),
            cut in 1usize..9,
        ) {
            let body = fields.join("&");
            let whole = TokenFieldFilter::filter_all(body.as_bytes()).expect("short names");
            let mut filter = TokenFieldFilter::default();
            let mut pieces = Vec::new();
            for chunk in body.as_bytes().chunks(cut) {
                pieces.extend_from_slice(&filter.feed(chunk).expect("short names"));
            }
            pieces.extend_from_slice(&filter.finish());
            prop_assert_eq!(&whole[..], &pieces[..]);
            prop_assert_eq!(String::from_utf8_lossy(&whole), strip_token_params(&body));
        }
    }
}
