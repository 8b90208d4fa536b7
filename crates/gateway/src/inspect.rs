//! Finding ArcGIS's "invalid token" (498) and "token required" (499) in an answer, status or body.

use memchr::memmem;

/// Whether `body` is an ArcGIS error whose code is 498 or 499: `{"error":{"code":498,…}}`,
/// with any spacing, also wrapped in a JSONP callback (`cb({...})`).
pub(crate) fn body_says_invalid_token(body: &[u8]) -> bool {
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
    fn other_answers_are_not_498() {
        assert!(!says(br#"{"error":{"code":400,"message":"Invalid URL"}}"#));
        assert!(!says(br#"{"features":[{"attributes":{"code":498}}]}"#));
        assert!(!says(br#"{"error":{"code":4981}}"#));
        assert!(!says(b""));
    }
}
