//! Finding ArcGIS's "invalid token" (498) and "token required" (499) in an answer, status or body.

use std::io::Read;

use memchr::memmem;

/// An answer's `Content-Encoding` that the gateway can read to look for a 498.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Not encoded.
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// `deflate` (zlib, as HTTP means it).
    Deflate,
}

impl Encoding {
    /// The encoding a `Content-Encoding` value names, when it is one the gateway reads.
    pub(crate) fn of(header: Option<&str>) -> Option<Encoding> {
        match header.map(str::trim) {
            None => Some(Encoding::Identity),
            Some(v) if v.eq_ignore_ascii_case("identity") => Some(Encoding::Identity),
            Some(v) if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") => {
                Some(Encoding::Gzip)
            }
            Some(v) if v.eq_ignore_ascii_case("deflate") => Some(Encoding::Deflate),
            Some(_) => None,
        }
    }
}

/// Whether `body`, encoded as `encoding`, is an ArcGIS 498/499 answer. At most
/// `limit` bytes are decoded (a bomb stops there); a body that does not decode
/// is not a 498 (it passes on as it came).
pub(crate) fn encoded_says_invalid_token(encoding: Encoding, body: &[u8], limit: usize) -> bool {
    let mut decoded = Vec::new();
    let read = match encoding {
        Encoding::Identity => return body_says_invalid_token(body),
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(body)
            .take(limit as u64)
            .read_to_end(&mut decoded),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(body)
            .take(limit as u64)
            .read_to_end(&mut decoded),
    };
    read.is_ok() && body_says_invalid_token(&decoded)
}

/// Whether `body` is an ArcGIS error whose code is 498 or 499: `{"error":{"code":498,…}}`,
/// with any spacing, also wrapped in a JSONP callback (`cb({...})`).
fn body_says_invalid_token(body: &[u8]) -> bool {
    let finder = memmem::Finder::new(b"\"code\"");
    if memmem::find(body, b"\"error\"").is_none() {
        return false;
    }
    for at in finder.find_iter(body) {
        let rest = &body[at + 6..];
        let rest = skip_space(rest);
        let Some(rest) = rest.strip_prefix(b":") else {
            continue;
        };
        let rest = skip_space(rest);
        let rest = rest.strip_prefix(b"\"").unwrap_or(rest);
        if (rest.starts_with(b"498") || rest.starts_with(b"499"))
            && !rest.get(3).is_some_and(u8::is_ascii_digit)
        {
            return true;
        }
    }
    false
}

fn skip_space(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::body_says_invalid_token as says;

    #[test]
    fn every_shape_of_498_and_499() {
        assert!(says(
            br#"{"error":{"code":498,"message":"Invalid token.","details":[]}}"#
        ));
        assert!(says(
            br#"{"error" : { "code" :  499 , "message":"Token Required"}}"#
        ));
        assert!(says(b"{\"error\":{\n  \"code\":\n 498}}"));
        assert!(says(
            br#"dojo_cb_1({"error":{"code":498,"message":"Invalid token."}});"#
        ));
        assert!(says(br#"{"error":{"code":"498"}}"#));
    }

    #[test]
    fn compressed_answers_are_read_within_the_limit() {
        use super::{Encoding, encoded_says_invalid_token as encoded};
        use std::io::Write;

        let body = br#"{"error":{"code":498,"message":"Invalid token."}}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).unwrap();
        let gz = gz.finish().unwrap();
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(body).unwrap();
        let zl = zl.finish().unwrap();
        assert!(encoded(Encoding::Gzip, &gz, 1024));
        assert!(encoded(Encoding::Deflate, &zl, 1024));
        assert!(encoded(Encoding::Identity, body, 1024));
        // Not what it claims to be, cut short, or longer than the limit: not a 498.
        assert!(!encoded(Encoding::Gzip, body, 1024));
        assert!(!encoded(Encoding::Gzip, &gz[..gz.len() / 2], 1024));
        assert!(!encoded(Encoding::Gzip, &gz, 10));
        assert_eq!(Encoding::of(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::of(Some("br")), None);
        assert_eq!(Encoding::of(None), Some(Encoding::Identity));
    }

    #[test]
    fn other_answers_are_not_498() {
        assert!(!says(br#"{"error":{"code":400,"message":"Invalid URL"}}"#));
        assert!(!says(br#"{"features":[{"attributes":{"code":498}}]}"#));
        assert!(!says(br#"{"error":{"code":4981}}"#));
        assert!(!says(b""));
    }
}
