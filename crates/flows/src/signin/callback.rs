//! Reading what the portal sends back to a redirect URI (query or fragment).

use arcgis_auth_core::{
    ArcGisError, Error as CoreError, ErrorKind, SecretString, constant_time_eq,
};

use crate::error::{FlowError, FlowErrorKind};

/// The parameters of a sign-in callback that the flows read.
#[derive(Default)]
pub(crate) struct CallbackParams {
    pub(crate) code: Option<SecretString>,
    pub(crate) access_token: Option<SecretString>,
    pub(crate) expires_in: Option<String>,
    pub(crate) username: Option<String>,
    pub(crate) ssl: Option<String>,
    states: Vec<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackParams {
    /// Reads `name=value` pairs (`application/x-www-form-urlencoded`); other
    /// parameters (the app's own, in a redirect URI with a query) are ignored.
    pub(crate) fn parse(pairs: &str) -> Self {
        let mut p = CallbackParams::default();
        for (k, v) in url::form_urlencoded::parse(pairs.as_bytes()) {
            match k.as_ref() {
                "code" => p.code = Some(SecretString::from(v.into_owned())),
                "access_token" => p.access_token = Some(SecretString::from(v.into_owned())),
                "expires_in" => p.expires_in = Some(v.into_owned()),
                "username" => p.username = Some(v.into_owned()),
                "ssl" => p.ssl = Some(v.into_owned()),
                "state" => p.states.push(v.into_owned()),
                "error" => p.error = Some(v.into_owned()),
                "error_description" => p.error_description = Some(v.into_owned()),
                _ => {}
            }
        }
        p
    }

    /// Whether the callback carries a `state` at all.
    pub(crate) fn has_state(&self) -> bool {
        !self.states.is_empty()
    }

    /// Whether the callback carries exactly one `state` and it is `expected`
    /// (constant-time).
    pub(crate) fn state_is(&self, expected: &str) -> bool {
        match self.states.as_slice() {
            [returned] => constant_time_eq(returned.as_bytes(), expected.as_bytes()),
            _ => false,
        }
    }

    /// Checks the state (when `expected` is given), then the `error` parameter.
    ///
    /// A callback with a wrong state is refused even when it reports an error
    /// (a forged denial is still forged); a denial without any state is
    /// believed, since the portal may leave it out.
    pub(crate) fn check(&self, expected_state: Option<&str>) -> Result<(), FlowError> {
        if let Some(expected) = expected_state {
            let state_ok = self.state_is(expected);
            if !state_ok && (self.error.is_none() || self.has_state()) {
                return Err(state_mismatch());
            }
        }
        match &self.error {
            Some(error) => Err(callback_error(error, self.error_description.as_deref())),
            None => Ok(()),
        }
    }
}

/// The part of a callback that holds its parameters: the query of a URL or
/// request target, or the input itself when it is already a query string.
pub(crate) fn query_of(input: &str) -> &str {
    let input = input.trim();
    let without_fragment = input.split_once('#').map_or(input, |(before, _)| before);
    match without_fragment.split_once('?') {
        Some((_, query)) => query,
        None => without_fragment,
    }
}

/// The fragment of a callback URL, or the input itself when it has no `#`.
pub(crate) fn fragment_of(input: &str) -> &str {
    let input = input.trim();
    match input.split_once('#') {
        Some((_, fragment)) => fragment,
        None => input.strip_prefix('?').unwrap_or(input),
    }
}

pub(crate) fn state_mismatch() -> FlowError {
    FlowError::new(
        FlowErrorKind::StateMismatch,
        "the sign-in callback does not carry the state this sign-in sent: it is forged or \
         belongs to another sign-in; start the sign-in again",
    )
}

/// The typed error for `error=...` in a callback.
pub(crate) fn callback_error(error: &str, description: Option<&str>) -> FlowError {
    let error = printable(error, 64);
    let detail = match description.map(|d| printable(d, 200)) {
        Some(d) if !d.is_empty() => format!("{error}: {d}"),
        _ => error.clone(),
    };
    if error == "access_denied" {
        return FlowError::from(CoreError::new(
            ErrorKind::AccessDenied,
            format!(
                "the sign-in was declined ({detail}): sign in again and approve the app to continue"
            ),
        ));
    }
    let body = serde_json::json!({ "error": error, "error_description": description });
    let kind = ArcGisError::from_value(&body).map_or(ErrorKind::ArcGis, |e| e.kind());
    FlowError::from(CoreError::new(
        kind,
        format!(
            "the portal refused the sign-in ({detail}): check the app's client id and redirect \
             URI, then sign in again"
        ),
    ))
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
    fn query_of_accepts_urls_targets_and_queries() {
        assert_eq!(
            query_of("https://a.example/cb?x=1&code=c#frag"),
            "x=1&code=c"
        );
        assert_eq!(query_of("/callback?code=c&state=s"), "code=c&state=s");
        assert_eq!(query_of("?code=c"), "code=c");
        assert_eq!(query_of(" code=c&state=s \n"), "code=c&state=s");
    }

    #[test]
    fn fragment_of_accepts_urls_and_fragments() {
        assert_eq!(
            fragment_of("https://a.example/cb#access_token=t"),
            "access_token=t"
        );
        assert_eq!(fragment_of("#access_token=t"), "access_token=t");
        assert_eq!(fragment_of("access_token=t"), "access_token=t");
    }

    #[test]
    fn duplicate_states_never_match() {
        let p = CallbackParams::parse("code=c&state=s&state=s");
        assert!(!p.state_is("s"));
        assert_eq!(
            p.check(Some("s")).unwrap_err().kind(),
            FlowErrorKind::StateMismatch
        );
    }

    #[test]
    fn errors_are_typed() {
        let e = CallbackParams::parse("error=access_denied&state=s")
            .check(Some("s"))
            .unwrap_err();
        assert_eq!(e.kind(), FlowErrorKind::SignInRequired);
        assert_eq!(e.arcgis_kind(), Some(ErrorKind::AccessDenied));
        let e = CallbackParams::parse("error=invalid_request&error_description=bad%0Aredirect")
            .check(Some("s"))
            .unwrap_err();
        assert_eq!(e.kind(), FlowErrorKind::ArcGis(ErrorKind::InvalidRequest));
        assert!(e.message().contains("badredirect"));
        // A denial with someone else's state is a forgery, not a denial.
        let e = CallbackParams::parse("error=access_denied&state=other")
            .check(Some("s"))
            .unwrap_err();
        assert_eq!(e.kind(), FlowErrorKind::StateMismatch);
    }
}
