//! Reading what the portal sends back to a redirect URI (query or fragment),
//! by core's rules ([`RedirectParams`]), with the errors in flows' kinds.

use arcgis_auth_core::{
    Error as CoreError, ErrorKind, RedirectParams, RedirectPart, SecretString, Timestamp, Token,
};

use crate::error::{FlowError, FlowErrorKind, Result};

/// The code of an authorization-code callback (a URL, request target or
/// query string) carrying `expected_state`.
///
/// Errors: [`FlowErrorKind::StateMismatch`]; a declined sign-in as
/// [`FlowErrorKind::SignInRequired`] (core kind `AccessDenied`), other
/// `error=` values as their core kind; no code as
/// [`FlowErrorKind::InvalidInput`].
pub(crate) fn code(callback: &str, expected_state: &str) -> Result<SecretString> {
    let params = checked(callback, RedirectPart::Query, expected_state)?;
    params.code().map_err(invalid_input)
}

/// The token of an implicit-grant callback (a URL or its fragment) carrying
/// `expected_state`, expiring `expires_in` after `now`. Errors as for
/// [`code`], with a missing or malformed token as
/// [`FlowErrorKind::InvalidInput`].
pub(crate) fn implicit_token(
    callback: &str,
    expected_state: &str,
    now: Timestamp,
) -> Result<Token> {
    let params = checked(callback, RedirectPart::Fragment, expected_state)?;
    params.implicit_token(now).map_err(invalid_input)
}

fn checked(callback: &str, part: RedirectPart, expected_state: &str) -> Result<RedirectParams> {
    let params = RedirectParams::parse(callback, part);
    params.check_state(expected_state)?;
    Ok(params)
}

/// A callback that lacks what the flow needs is the caller's input, not an
/// answer from ArcGIS.
fn invalid_input(err: CoreError) -> FlowError {
    debug_assert!(matches!(
        err.kind(),
        ErrorKind::InvalidRequest | ErrorKind::UnparseableResponse
    ));
    FlowError::new(FlowErrorKind::InvalidInput, err.message())
}

/// `s` without control characters, cut at `max` characters (it came from a URL
/// anyone can craft, and ends up in logs).
pub(crate) fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_flows_kinds() {
        let err = code("code=c&state=s&state=s", "s").unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::StateMismatch);
        let err = code("error=access_denied&state=other", "s").unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::StateMismatch);
        let err = code("error=access_denied&state=s", "s").unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::SignInRequired);
        assert_eq!(err.arcgis_kind(), Some(ErrorKind::AccessDenied));
        let err = code(
            "error=invalid_request&error_description=bad%0Aredirect",
            "s",
        )
        .unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidRequest));
        assert!(err.message().contains("badredirect"));
        let err = code("/cb?state=s", "s").unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
        let err = implicit_token("#state=s", "s", Timestamp::UNIX_EPOCH).unwrap_err();
        assert_eq!(err.kind(), FlowErrorKind::InvalidInput);
    }
}
