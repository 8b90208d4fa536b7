//! Finding a 498/499 in an answer without holding up the rest of it.
//!
//! ArcGIS reports a rejected token with HTTP 498/499, or (more often) with
//! HTTP 200 and `{"error":{"code":498,...}}` in a JSON body. Only answers
//! whose content type may carry JSON (`application/json`, `*+json`,
//! `text/plain` — ArcGIS's label for `f=json` answers — or none) are looked
//! into, and only their first [`PEEK_LIMIT`] bytes: an error body is tiny, so
//! a longer answer is a real answer and streams on untouched. Every other
//! answer (images, tiles, protobuf, downloads) is handed back as it arrived.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use arcgis_auth_core::{Error, ErrorKind, classify_response};
use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use reqwest::{Body, ResponseBuilderExt};

/// How much of a JSON answer is read before deciding it is not an error body.
pub(crate) const PEEK_LIMIT: usize = 64 * 1024;

/// An answer, and the token rejection it carries, if any.
pub(crate) struct Inspected {
    pub(crate) response: reqwest::Response,
    pub(crate) rejection: Option<Error>,
}

/// Whether an answer of this content type may be a JSON error body.
pub(crate) fn may_be_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || mime.eq_ignore_ascii_case("text/plain")
        || mime.to_ascii_lowercase().ends_with("+json")
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
pub(crate) async fn inspect(response: reqwest::Response) -> Result<Inspected, reqwest::Error> {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !may_be_json(content_type) {
        return Ok(Inspected {
            response,
            rejection: status_rejection(status),
        });
    }
    let url = response.url().clone();
    let (mut parts, mut body) = http::Response::<Body>::from(response).into_parts();
    let mut frames = VecDeque::new();
    let mut read = 0usize;
    let mut complete = false;
    let mut trailers = false;
    while read <= PEEK_LIMIT {
        match body.frame().await {
            None => {
                complete = true;
                break;
            }
            Some(frame) => {
                let frame = frame?;
                match frame.data_ref() {
                    Some(d) => read = read.saturating_add(d.len()),
                    None => trailers = true,
                }
                frames.push_back(frame);
            }
        }
    }
    let (rejection, body) = if complete {
        // The whole answer, in one piece: a body that came in one frame (the
        // usual case for a small answer) is used as it is, not copied.
        let data = contiguous(&frames, read);
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let rejection = match classify_response(status, content_type, &data) {
            Err(e) if matches!(e.kind(), ErrorKind::InvalidToken | ErrorKind::TokenRequired) => {
                Some(e)
            }
            _ => status_rejection(status),
        };
        let body = if trailers {
            Body::wrap(Prefixed { frames, rest: None })
        } else {
            Body::from(data)
        };
        (rejection, body)
    } else {
        let body = Body::wrap(Prefixed {
            frames,
            rest: Some(body),
        });
        (status_rejection(status), body)
    };
    // Keep the response's URL (reqwest keeps it in an extension).
    if let Ok(tagged) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(tagged.into_parts().0.extensions);
    }
    Ok(Inspected {
        response: reqwest::Response::from(http::Response::from_parts(parts, body)),
        rejection,
    })
}

/// The data of `frames` (`len` bytes in all) as one buffer, copied only when
/// it came in more than one frame.
fn contiguous(frames: &VecDeque<Frame<Bytes>>, len: usize) -> Bytes {
    let mut data = frames.iter().filter_map(Frame::data_ref);
    match (data.next(), data.next()) {
        (None, _) => Bytes::new(),
        (Some(only), None) => only.clone(),
        (Some(first), Some(second)) => {
            let mut joined = BytesMut::with_capacity(len);
            joined.extend_from_slice(first);
            joined.extend_from_slice(second);
            for d in data {
                joined.extend_from_slice(d);
            }
            joined.freeze()
        }
    }
}

/// The frames already read, then the rest of the body as it arrives.
struct Prefixed {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<Body>,
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, reqwest::Error>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .frames
            .iter()
            .filter_map(Frame::data_ref)
            .map(|d| d.len() as u64)
            .sum();
        let rest = self
            .rest
            .as_ref()
            .map(HttpBody::size_hint)
            .unwrap_or_else(|| SizeHint::with_exact(0));
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
        assert!(may_be_json(Some("application/json; charset=utf-8")));
        assert!(may_be_json(Some("text/plain;charset=utf-8")));
        assert!(may_be_json(Some("application/geo+json")));
        assert!(may_be_json(None));
        assert!(!may_be_json(Some("image/png")));
        assert!(!may_be_json(Some("application/x-protobuf")));
        assert!(!may_be_json(Some("text/html")));
        assert!(!may_be_json(Some("application/octet-stream")));
    }
}
