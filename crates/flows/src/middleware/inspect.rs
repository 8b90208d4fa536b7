//! Finding a 498/499 in an answer without holding up the rest of it.
//!
//! ArcGIS reports a rejected token with HTTP 498/499, or (more often) with
//! HTTP 200 and `{"error":{"code":498,...}}` in a JSON body. Only answers
//! whose content type may carry JSON (`application/json`, `*+json`,
//! `text/plain` — ArcGIS's label for `f=json` answers — or none) are looked
//! into, and only their first [`PEEK_LIMIT`] bytes (none at all when their
//! `Content-Length` is larger): an error body is tiny, so a longer answer is
//! a real answer and streams on untouched. Every other answer (images,
//! tiles, protobuf, downloads) is handed back as it arrived. A small answer
//! read whole is handed back from memory, without HTTP trailers (ArcGIS
//! sends none). Only an answer whose bytes name a 498, a 499 or
//! `invalid_token` is parsed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use arcgis_auth_core::{Error, ErrorKind, classify_response};
use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http_body::{Body as HttpBody, Frame, SizeHint};
use memchr::memmem;
use reqwest::{Body, ResponseBuilderExt};

/// How much of a JSON answer is read before deciding it is not an error body.
pub(crate) const PEEK_LIMIT: usize = 64 * 1024;

/// An answer, and the token rejection it carries, if any.
pub(crate) struct Inspected {
    pub(crate) response: reqwest::Response,
    pub(crate) rejection: Option<Error>,
}

/// Whether an answer of this content type may be a JSON error body.
pub(crate) fn may_be_json(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let end = memchr::memchr(b';', ct).unwrap_or(ct.len());
    let mime = ct.get(..end).unwrap_or_default().trim_ascii();
    let suffix = mime.len().checked_sub(5).and_then(|at| mime.get(at..));
    mime.eq_ignore_ascii_case(b"application/json")
        || mime.eq_ignore_ascii_case(b"text/plain")
        || suffix.is_some_and(|s| s.eq_ignore_ascii_case(b"+json"))
}

fn status_rejection(status: http::StatusCode) -> Option<Error> {
    match status.as_u16() {
        498 => Some(Error::new(
            ErrorKind::InvalidToken,
            "HTTP 498: the token is invalid or expired",
        )),
        499 => Some(Error::new(
            ErrorKind::TokenRequired,
            "HTTP 499: the resource needs a token",
        )),
        _ => None,
    }
}

/// Looks for a token rejection in `response`.
pub(crate) async fn inspect(mut response: reqwest::Response) -> Result<Inspected, reqwest::Error> {
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes());
    // An answer announced as longer than any error body is a real one.
    let long = response
        .content_length()
        .is_some_and(|len| len > PEEK_LIMIT as u64);
    if long || !may_be_json(content_type) {
        return Ok(Inspected {
            response,
            rejection: status_rejection(status),
        });
    }
    let mut chunks = Chunks::default();
    let mut read = 0usize;
    while read <= PEEK_LIMIT {
        match response.chunk().await? {
            Some(chunk) => {
                read = read.saturating_add(chunk.len());
                chunks.push(chunk);
            }
            None => {
                // The whole answer, in one piece: a body that came in one
                // chunk (the usual case for a small answer) is not copied.
                let data = chunks.contiguous(read);
                let rejection = if status.is_success() && !may_name_a_rejection(&data) {
                    // Most answers: nothing in them could be a 498 or 499, so
                    // they are not parsed here (the caller parses them once).
                    None
                } else {
                    let content_type = response
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok());
                    match classify_response(status, content_type, &data) {
                        Err(e)
                            if matches!(
                                e.kind(),
                                ErrorKind::InvalidToken | ErrorKind::TokenRequired
                            ) =>
                        {
                            Some(e)
                        }
                        _ => status_rejection(status),
                    }
                };
                let head = Head {
                    status,
                    version: response.version(),
                    headers: std::mem::take(response.headers_mut()),
                    extensions: std::mem::take(response.extensions_mut()),
                    url: response.url().clone(),
                };
                return Ok(Inspected {
                    response: head.with_body(Body::from(data)),
                    rejection,
                });
            }
        }
    }
    // A long answer without a length: a real one. The chunks already read
    // go first, then the rest as it arrives.
    let url = response.url().clone();
    let (parts, rest) = http::Response::<Body>::from(response).into_parts();
    let head = Head {
        status,
        version: parts.version,
        headers: parts.headers,
        extensions: parts.extensions,
        url,
    };
    Ok(Inspected {
        response: head.with_body(Body::wrap(Prefixed {
            chunks: chunks.into_deque(),
            rest,
        })),
        rejection: status_rejection(status),
    })
}

/// Everything of an answer but its body, which was (partly) read.
struct Head {
    status: http::StatusCode,
    version: http::Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
    url: url::Url,
}

impl Head {
    /// The answer again, with `body`. reqwest keeps the URL in a private
    /// extension that only `http`'s response builder can set: it goes into
    /// the answer's own extension map (no second map), and the rest of the
    /// head is moved in after.
    fn with_body(mut self, body: Body) -> reqwest::Response {
        let mut builder = http::Response::builder();
        if let Some(extensions) = builder.extensions_mut() {
            std::mem::swap(extensions, &mut self.extensions);
        }
        let (mut parts, ()) = match builder.url(self.url).body(()) {
            Ok(tagged) => tagged.into_parts(),
            // Unreachable (setting an extension cannot fail); the URL becomes
            // reqwest's placeholder rather than losing the answer.
            Err(_) => http::Response::new(()).into_parts(),
        };
        parts.status = self.status;
        parts.version = self.version;
        parts.headers = self.headers;
        reqwest::Response::from(http::Response::from_parts(parts, body))
    }
}

/// Whether a successful answer's body may carry a token rejection, as far as
/// [`classify_response`] is concerned: an ArcGIS error with code 498 or 499
/// or an `invalid_token` error names one of them in plain bytes. A quick
/// scan; `false` means the body is not parsed at all.
fn may_name_a_rejection(body: &[u8]) -> bool {
    static INVALID_TOKEN: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"invalid_token"));
    let code = memchr::memchr_iter(b'4', body)
        .any(|at| body.get(at + 1) == Some(&b'9') && matches!(body.get(at + 2), Some(b'8' | b'9')));
    code || INVALID_TOKEN.find(body).is_some()
}

/// The chunks read so far: the usual single chunk without a heap allocation.
#[derive(Default)]
enum Chunks {
    #[default]
    None,
    One(Bytes),
    Many(VecDeque<Bytes>),
}

impl Chunks {
    fn push(&mut self, chunk: Bytes) {
        *self = match std::mem::take(self) {
            Chunks::None => Chunks::One(chunk),
            Chunks::One(first) => Chunks::Many(VecDeque::from([first, chunk])),
            Chunks::Many(mut all) => {
                all.push_back(chunk);
                Chunks::Many(all)
            }
        };
    }

    fn into_deque(self) -> VecDeque<Bytes> {
        match self {
            Chunks::None => VecDeque::new(),
            Chunks::One(only) => VecDeque::from([only]),
            Chunks::Many(all) => all,
        }
    }

    /// All of it (`len` bytes) as one buffer, copied only when it came in
    /// more than one chunk.
    fn contiguous(&self, len: usize) -> Bytes {
        match self {
            Chunks::None => Bytes::new(),
            Chunks::One(only) => only.clone(),
            Chunks::Many(all) => {
                let mut joined = BytesMut::with_capacity(len);
                for chunk in all {
                    joined.extend_from_slice(chunk);
                }
                joined.freeze()
            }
        }
    }
}

/// The chunks already read, then the rest of the body as it arrives.
struct Prefixed {
    chunks: VecDeque<Bytes>,
    rest: Body,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, reqwest::Error>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self.chunks.iter().map(|c| c.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(buffered));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(buffered));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_content_types() {
        assert!(may_be_json(Some(b"application/json; charset=utf-8")));
        assert!(may_be_json(Some(b"Application/JSON")));
        assert!(may_be_json(Some(b" text/plain;charset=utf-8")));
        assert!(may_be_json(Some(b"application/geo+json")));
        assert!(may_be_json(Some(b"application/GEO+JSON ; q=1")));
        assert!(may_be_json(None));
        assert!(!may_be_json(Some(b"image/png")));
        assert!(!may_be_json(Some(b"json")));
        assert!(!may_be_json(Some(b"")));
        assert!(!may_be_json(Some(b"application/x-protobuf")));
        assert!(!may_be_json(Some(b"text/html")));
        assert!(!may_be_json(Some(b"application/octet-stream")));
    }

    #[test]
    fn scan_for_a_rejection() {
        assert!(may_name_a_rejection(
            br#"{"error":{"code":498,"message":"Invalid token."}}"#
        ));
        assert!(may_name_a_rejection(
            br#"{"error":{"code":499,"message":"Token Required"}}"#
        ));
        assert!(may_name_a_rejection(br#"{"error":"invalid_token"}"#));
        assert!(!may_name_a_rejection(br#"{"id":"abc123","title":"Roads"}"#));
        assert!(!may_name_a_rejection(
            br#"{"error":{"code":400,"message":"49"}}"#
        ));
        assert!(!may_name_a_rejection(b"49"));
        assert!(!may_name_a_rejection(b""));
    }

    fn ok_rejection(body: &[u8]) -> bool {
        matches!(
            classify_response(http::StatusCode::OK, Some("application/json"), body),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidToken | ErrorKind::TokenRequired)
        )
    }

    proptest::proptest! {
        /// The scan never skips a body that the full classification calls a
        /// token rejection (it may let through bodies that are not).
        #[test]
        fn scan_never_misses_a_rejection(
            code in proptest::prop_oneof![
                proptest::strategy::Just(498i64),
                proptest::strategy::Just(499i64),
                -1000i64..100_000
            ],
            error in proptest::prop_oneof![
                proptest::strategy::Just("invalid_token".to_owned()),
                proptest::strategy::Just("invalid_request".to_owned()),
                "[a-z_]{0,16}"
            ],
            message in "[ -~]{0,24}",
            nested in proptest::bool::ANY,
            quoted_code in proptest::bool::ANY,
        ) {
            let code = if quoted_code { format!("\"{code}\"") } else { code.to_string() };
            let inner = format!(r#"{{"code":{code},"error":"{error}","message":{message:?}}}"#);
            let body = if nested { format!(r#"{{"error":{inner}}}"#) } else { inner };
            if ok_rejection(body.as_bytes()) {
                proptest::prop_assert!(may_name_a_rejection(body.as_bytes()), "{}", body);
            }
        }

        #[test]
        fn scan_never_misses_a_rejection_in_any_bytes(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            if ok_rejection(&body) {
                proptest::prop_assert!(may_name_a_rejection(&body));
            }
        }
    }
}
