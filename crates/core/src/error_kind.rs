//! What kind of failure an error is: [`ErrorKind`], the value to match on,
//! with its stable names.

use std::fmt;

/// What kind of failure an [`Error`](crate::Error) is. Match on this, not on messages.
///
/// Serialises as its [`as_str`](ErrorKind::as_str) name (`"invalid_token"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// A URL that is not what it claims to be (not a portal, not a server, unparseable).
    InvalidUrl,
    /// A credential would have travelled over plain `http://` to a host that is not loopback.
    InsecureTransport,
    /// ArcGIS code 498 on a service or portal call: the access token is invalid or expired.
    /// Refreshing the token and retrying once is the cure.
    InvalidToken,
    /// ArcGIS code 499: the resource needs a token and none was sent.
    TokenRequired,
    /// ArcGIS code 403 (or `GWM_0003` with 403): signed in, but not allowed. Refreshing will not help.
    Forbidden,
    /// The client id or client secret was rejected (`invalid_client_id`, `invalid_client`).
    InvalidClient,
    /// The grant was rejected: bad code, bad verifier, bad username or password, revoked refresh token.
    InvalidGrant,
    /// The request was malformed in ArcGIS's eyes (`invalid_request`, e.g. a redirect URI mismatch).
    InvalidRequest,
    /// The token endpoint answered 498: the refresh token is expired or revoked. Sign in again;
    /// refreshing again would loop.
    RefreshTokenExpired,
    /// The user declined the sign-in (`error=access_denied`).
    AccessDenied,
    /// A sign-in redirect does not carry the state the sign-in sent (missing,
    /// repeated, or another): it is forged or belongs to another sign-in.
    /// Nothing was sent; start the sign-in again.
    StateMismatch,
    /// ArcGIS asked us to slow down (HTTP 429 or an equivalent body).
    RateLimited,
    /// The portal or server failed (5xx, a gateway error, or an HTML maintenance or proxy
    /// page where JSON belongs). Transient: retry with backoff.
    Server,
    /// Any other error ArcGIS reported in a well-formed error body.
    #[serde(rename = "arcgis")]
    ArcGis,
    /// The request never got an answer: connection refused or reset, DNS, TLS, timeout.
    Transport,
    /// An answer arrived but could not be understood: empty, truncated, wrong types,
    /// absurd numbers, or a redirect (e.g. to a login page) instead of an answer.
    UnparseableResponse,
    /// A value given by the caller is out of range or malformed (an expiration above the
    /// maximum, a PKCE verifier of the wrong length, a missing client secret). Nothing was sent.
    InvalidInput,
    /// The web server in front of the portal (the Web Adaptor) demands its
    /// own credential before ArcGIS sees the request: a TLS client
    /// certificate, HTTP Basic or Kerberos. The message names the one to
    /// use; [`PortalSecurity`](crate::PortalSecurity) tells them apart.
    WebTierCredentialRequired,
    /// The web server in front of the portal refused the web-tier
    /// credential sent (a certificate from another CA or expired, a wrong
    /// Basic password). Not retried: a directory locks accounts after a
    /// few wrong passwords.
    WebTierCredentialRejected,
}

impl ErrorKind {
    /// Every kind, in declaration order (for exhaustive tests, metrics labels
    /// and documentation tables).
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::InvalidUrl,
        ErrorKind::InsecureTransport,
        ErrorKind::InvalidToken,
        ErrorKind::TokenRequired,
        ErrorKind::Forbidden,
        ErrorKind::InvalidClient,
        ErrorKind::InvalidGrant,
        ErrorKind::InvalidRequest,
        ErrorKind::RefreshTokenExpired,
        ErrorKind::AccessDenied,
        ErrorKind::StateMismatch,
        ErrorKind::RateLimited,
        ErrorKind::Server,
        ErrorKind::ArcGis,
        ErrorKind::Transport,
        ErrorKind::UnparseableResponse,
        ErrorKind::InvalidInput,
        ErrorKind::WebTierCredentialRequired,
        ErrorKind::WebTierCredentialRejected,
    ];

    /// Whether retrying the same request later may succeed (network trouble, 5xx, rate limits).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Transport | ErrorKind::Server | ErrorKind::RateLimited
        )
    }

    /// A stable `snake_case` name for logs and metrics (`"refresh_token_expired"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidUrl => "invalid_url",
            ErrorKind::InsecureTransport => "insecure_transport",
            ErrorKind::InvalidToken => "invalid_token",
            ErrorKind::TokenRequired => "token_required",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::InvalidClient => "invalid_client",
            ErrorKind::InvalidGrant => "invalid_grant",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::RefreshTokenExpired => "refresh_token_expired",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::StateMismatch => "state_mismatch",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Server => "server",
            ErrorKind::ArcGis => "arcgis",
            ErrorKind::Transport => "transport",
            ErrorKind::UnparseableResponse => "unparseable_response",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::WebTierCredentialRequired => "web_tier_credential_required",
            ErrorKind::WebTierCredentialRejected => "web_tier_credential_rejected",
        }
    }

    /// Whether the only cure is for the user to sign in again.
    pub fn needs_sign_in(self) -> bool {
        matches!(
            self,
            ErrorKind::RefreshTokenExpired
                | ErrorKind::AccessDenied
                | ErrorKind::StateMismatch
                | ErrorKind::WebTierCredentialRequired
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_once() {
        // A kind missing from ALL fails to compile here (the match is exhaustive)...
        let index = |kind: ErrorKind| match kind {
            ErrorKind::InvalidUrl => 0,
            ErrorKind::InsecureTransport => 1,
            ErrorKind::InvalidToken => 2,
            ErrorKind::TokenRequired => 3,
            ErrorKind::Forbidden => 4,
            ErrorKind::InvalidClient => 5,
            ErrorKind::InvalidGrant => 6,
            ErrorKind::InvalidRequest => 7,
            ErrorKind::RefreshTokenExpired => 8,
            ErrorKind::AccessDenied => 9,
            ErrorKind::StateMismatch => 10,
            ErrorKind::RateLimited => 11,
            ErrorKind::Server => 12,
            ErrorKind::ArcGis => 13,
            ErrorKind::Transport => 14,
            ErrorKind::UnparseableResponse => 15,
            ErrorKind::InvalidInput => 16,
            ErrorKind::WebTierCredentialRequired => 17,
            ErrorKind::WebTierCredentialRejected => 18,
        };
        // ...and here every position is taken exactly once.
        let positions: Vec<usize> = ErrorKind::ALL.iter().map(|&k| index(k)).collect();
        assert_eq!(positions, (0..=18).collect::<Vec<_>>());
    }

    #[test]
    fn kind_names_match_serde() {
        use ErrorKind::*;
        for &kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert!(RefreshTokenExpired.needs_sign_in());
        assert!(!InvalidToken.needs_sign_in());
        assert!(RateLimited.is_transient() && Server.is_transient() && Transport.is_transient());
        assert!(!Forbidden.is_transient());
    }
}
