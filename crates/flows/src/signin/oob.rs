//! Reading an out-of-band sign-in code pasted by the user.

use arcgis_auth_core::{SecretString, code_from_approval_page};

use super::callback::printable;
use crate::error::{FlowError, FlowErrorKind, Result};

/// The longest code accepted (ArcGIS codes are a few dozen characters).
const MAX_CODE_LEN: usize = 2048;

/// The code from what a user pasted after an out-of-band sign-in: the code
/// itself, `code=<CODE>`, the page title `SUCCESS code=<CODE>`, or the whole
/// approval page. Surrounding white space is ignored.
///
/// Errors: [`FlowErrorKind::InvalidInput`] when nothing that looks like a code
/// is found (empty, white space inside, more than 2048 characters, a title
/// that is not a `SUCCESS`); for a pasted page, those of
/// [`code_from_approval_page`] (as [`FlowErrorKind::SignInRequired`]).
pub fn code_from_pasted(input: &str) -> Result<SecretString> {
    let input = input.trim();
    if input.contains('<') {
        return Ok(code_from_approval_page(input)?);
    }
    if let Some(rest) = input.strip_prefix("SUCCESS") {
        return match rest.trim_start().strip_prefix("code=") {
            Some(code) => check_code(code.trim()),
            None => Err(FlowError::new(
                FlowErrorKind::InvalidInput,
                format!(
                    "`{}` shows no code: paste the text after `SUCCESS code=` on the approval page",
                    printable(input, 100)
                ),
            )),
        };
    }
    check_code(input.strip_prefix("code=").unwrap_or(input))
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

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::{ErrorKind, ExposeSecret};

    #[test]
    fn pasted_codes_titles_and_pages() {
        for input in [
            "abc-123",
            "  abc-123\n",
            "code=abc-123",
            "SUCCESS code=abc-123",
            "SUCCESS  code=abc-123 ",
            "<html><head><title>SUCCESS code=abc-123</title></head></html>",
        ] {
            assert_eq!(
                code_from_pasted(input).unwrap().expose_secret(),
                "abc-123",
                "{input:?}"
            );
        }
    }

    #[test]
    fn failures_and_garbage_are_typed_errors() {
        for bad in [
            "",
            "   ",
            "code with spaces",
            "code=",
            "SUCCESS nothing",
            "SUCCESS code=",
            "a\u{e9}b",
        ] {
            let err = code_from_pasted(bad).unwrap_err();
            assert_eq!(err.kind(), FlowErrorKind::InvalidInput, "{bad:?}");
        }
        assert!(code_from_pasted(&"a".repeat(MAX_CODE_LEN + 1)).is_err());
        // A page without a code: the sign-in was declined or not finished.
        let err = code_from_pasted("<title>Sign In</title>").unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
        assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
    }
}
