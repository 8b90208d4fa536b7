//! The end of an out-of-band sign-in: the redirect URI that asks the portal
//! to show the code instead of redirecting, and the reader of the approval
//! page that shows it.

use secrecy::SecretString;

use crate::error::{Error, ErrorKind, Result};

/// The out-of-band redirect URI: the portal shows the code on its
/// `oauth2/approval` page instead of redirecting. It must be registered for
/// the app.
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";

/// The code shown by the out-of-band approval page (`oauth2/approval`, used
/// with `redirect_uri=urn:ietf:wg:oauth:2.0:oob`), whose `<title>` reads
/// `SUCCESS code=<CODE>`.
///
/// ```
/// use arcgis_auth_core::{code_from_approval_page, ExposeSecret, ErrorKind};
///
/// let page = "<html><head><title>SUCCESS code=abc123</title></head></html>";
/// assert_eq!(code_from_approval_page(page).unwrap().expose_secret(), "abc123");
/// let denied = "<html><head><title>Sign In</title></head></html>";
/// assert_eq!(code_from_approval_page(denied).unwrap_err().kind(), ErrorKind::AccessDenied);
/// ```
pub fn code_from_approval_page(html: &str) -> Result<SecretString> {
    let lower = html.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .map(|i| i + "<title>".len())
        .and_then(|start| {
            lower[start..]
                .find("</title>")
                .and_then(|len| html.get(start..start + len))
        })
        .map(str::trim);
    let code = title
        .and_then(|t| t.strip_prefix("SUCCESS code="))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.contains(char::is_whitespace));
    code.map(|c| SecretString::from(c.to_owned()))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::AccessDenied,
                "the approval page shows no code (the sign-in was declined or not finished): \
             sign in again",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn approval_page_variants() {
        for (page, ok) in [
            ("<TITLE> SUCCESS code=x-y_z </TITLE>", Some("x-y_z")),
            ("<title>SUCCESS code=</title>", None),
            ("<title>SUCCESS code=a b</title>", None),
            ("<title>ERROR error=access_denied</title>", None),
            ("<title>unterminated", None),
            ("", None),
            ("<title>SUCCESS code=é</title>", Some("é")),
        ] {
            let got = code_from_approval_page(page).ok();
            assert_eq!(got.as_ref().map(|c| c.expose_secret()), ok, "{page}");
        }
    }
}
