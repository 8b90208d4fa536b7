//! Out-of-band sign-in: for apps that cannot receive a redirect at all.
//!
//! Begin the sign-in with [`OOB_REDIRECT_URI`]
//! ([`UserSignIn::begin_oob`](super::UserSignIn::begin_oob)); after the user
//! approves, the portal shows its `oauth2/approval` page, whose HTML `<title>`
//! reads `SUCCESS code=<CODE>`. The user pastes the code back into the app
//! (or an embedded browser reads the page title), and
//! [`UserSignIn::complete_oob`](super::UserSignIn::complete_oob) finishes. The
//! redirect URI `urn:ietf:wg:oauth:2.0:oob` must be registered for the app.
//!
//! The [user sign-in guide](super::pkce) shows the whole flow.
//!
//! ```
//! use arcgis_auth_core::ExposeSecret;
//! use arcgis_auth_flows::signin::{code_from_approval_page, code_from_pasted};
//!
//! let page = "<html><head><title>SUCCESS code=KIV31WkDhY6XIWXmWAc6U</title></head></html>";
//! assert_eq!(code_from_approval_page(page)?.expose_secret(), "KIV31WkDhY6XIWXmWAc6U");
//! assert_eq!(code_from_pasted("  KIV31WkDhY6XIWXmWAc6U\n")?.expose_secret(), "KIV31WkDhY6XIWXmWAc6U");
//! assert_eq!(code_from_pasted("SUCCESS code=KIV31WkDhY6XIWXmWAc6U")?.expose_secret(), "KIV31WkDhY6XIWXmWAc6U");
//! # Ok::<(), arcgis_auth_flows::FlowError>(())
//! ```

use arcgis_auth_core::SecretString;

use super::callback::printable;
use crate::error::{FlowError, FlowErrorKind, Result};

/// The out-of-band redirect URI: the portal shows the code instead of redirecting.
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";

/// The longest code accepted (ArcGIS codes are a few dozen characters).
const MAX_CODE_LEN: usize = 2048;

/// The code from the HTML of the portal's approval page, read from its
/// `<title>SUCCESS code=...</title>`.
///
/// Errors: [`FlowErrorKind::InvalidInput`] when the page has no title, or its
/// title is not a `SUCCESS` (the sign-in failed or was declined: the title is
/// quoted in the message), or the code is malformed.
pub fn code_from_approval_page(html: &str) -> Result<SecretString> {
    let title = title_of(html).ok_or_else(|| {
        FlowError::new(
            FlowErrorKind::InvalidInput,
            "the approval page has no <title>: is this the portal's oauth2/approval page?",
        )
    })?;
    code_from_title(title.trim())
}

/// The code from what a user pasted after an out-of-band sign-in: the code
/// itself, `code=<CODE>`, the page title `SUCCESS code=<CODE>`, or the whole
/// approval page. Surrounding white space is ignored.
///
/// Errors: [`FlowErrorKind::InvalidInput`] when nothing that looks like a code
/// is found (empty, white space inside, markup, more than 2048 characters).
pub fn code_from_pasted(input: &str) -> Result<SecretString> {
    let input = input.trim();
    if input.contains('<') {
        return code_from_approval_page(input);
    }
    if input.starts_with("SUCCESS") {
        return code_from_title(input);
    }
    check_code(input.strip_prefix("code=").unwrap_or(input))
}

fn code_from_title(title: &str) -> Result<SecretString> {
    match title
        .strip_prefix("SUCCESS")
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix("code="))
    {
        Some(code) => check_code(code.trim()),
        None => Err(FlowError::new(
            FlowErrorKind::InvalidInput,
            format!(
                "the approval page does not show a code (its title is `{}`): the sign-in did \
                 not succeed; start it again",
                printable(title, 100)
            ),
        )),
    }
}

fn check_code(code: &str) -> Result<SecretString> {
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\'' | b'&'));
    if ok {
        Ok(SecretString::from(code.to_owned()))
    } else {
        Err(FlowError::new(
            FlowErrorKind::InvalidInput,
            "that is not a sign-in code: paste the code shown on the approval page (the text \
             after `SUCCESS code=`)",
        ))
    }
}

/// The text inside the first `<title ...>...</title>` (tag names in any case).
fn title_of(html: &str) -> Option<&str> {
    let lower = html.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let content_start = open + lower.get(open..)?.find('>')? + 1;
    let len = lower.get(content_start..)?.find("</title")?;
    html.get(content_start..content_start + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::ExposeSecret;

    #[test]
    fn titles_in_any_case_and_with_attributes() {
        let page = "<HTML><Head><TITLE lang=\"en\">\n SUCCESS code=abc-123 \n</TITLE></Head>";
        assert_eq!(
            code_from_approval_page(page).unwrap().expose_secret(),
            "abc-123"
        );
    }

    #[test]
    fn failures_and_garbage_are_typed_errors() {
        for bad in [
            "",
            "   ",
            "<html></html>",
            "<title>ERROR error=access_denied</title>",
            "<title>SUCCESS code=</title>",
            "<title>unterminated",
            "code with spaces",
            "SUCCESS nothing",
            "<titl\u{e9}>",
        ] {
            let err = code_from_pasted(bad).unwrap_err();
            assert_eq!(err.kind(), FlowErrorKind::InvalidInput, "{bad:?}");
        }
        let err = code_from_pasted("<title>ERROR error=access_denied</title>").unwrap_err();
        assert!(err.message().contains("ERROR error=access_denied"));
        assert!(code_from_pasted(&"a".repeat(MAX_CODE_LEN + 1)).is_err());
    }

    #[test]
    fn multibyte_text_before_the_title_does_not_panic() {
        let page = "é\u{130}<title>SUCCESS code=xyz</title>";
        // `to_ascii_lowercase` keeps byte offsets, so slicing stays on boundaries.
        assert_eq!(
            code_from_approval_page(page).unwrap().expose_secret(),
            "xyz"
        );
    }
}
