//! Requested token lifetimes, in minutes, as ArcGIS counts them.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// Which token a requested [`Expiration`] is for; each has its own default
/// and maximum (ArcGIS's lifetime table; organisations may cap them lower).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenLifetime {
    /// An access token from the authorization-code flow: 30 minutes, cannot be raised.
    CodeFlowAccessToken,
    /// A refresh token (set by `expiration` on `oauth2/authorize`): 2 weeks by
    /// default, at most 90 days; [`Expiration::MAXIMUM`] (`-1`) asks for the maximum.
    RefreshToken,
    /// An access token from the deprecated implicit flow: 2 hours by default, at most 2 weeks.
    ImplicitAccessToken,
    /// An app token from `client_credentials`: 2 hours by default, at most 2 weeks.
    AppToken,
    /// A `generateToken` token: 60 minutes by default (some servers use their
    /// `shortLivedTokenValidity`); the maximum is set by the server or organisation.
    GenerateToken,
}

impl TokenLifetime {
    /// The lifetime ArcGIS gives when no `expiration` is sent, in minutes.
    pub const fn default_minutes(self) -> u32 {
        match self {
            TokenLifetime::CodeFlowAccessToken => 30,
            TokenLifetime::RefreshToken => 20_160,
            TokenLifetime::ImplicitAccessToken | TokenLifetime::AppToken => 120,
            TokenLifetime::GenerateToken => 60,
        }
    }

    /// The largest lifetime ArcGIS grants, in minutes; `None` when the server decides.
    pub const fn max_minutes(self) -> Option<u32> {
        match self {
            TokenLifetime::CodeFlowAccessToken => Some(30),
            TokenLifetime::RefreshToken => Some(129_600),
            TokenLifetime::ImplicitAccessToken | TokenLifetime::AppToken => Some(20_160),
            TokenLifetime::GenerateToken => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TokenLifetime::CodeFlowAccessToken => "code-flow access tokens",
            TokenLifetime::RefreshToken => "refresh tokens",
            TokenLifetime::ImplicitAccessToken => "implicit-flow access tokens",
            TokenLifetime::AppToken => "app tokens",
            TokenLifetime::GenerateToken => "generateToken tokens",
        }
    }
}

/// A requested token lifetime: the `expiration` parameter, in minutes, or
/// [`Expiration::MAXIMUM`] (`-1`, refresh tokens only).
///
/// The portal has the last word (organisations cap lifetimes): trust the
/// expiry in the response, not the request.
///
/// ```
/// use arcgis_auth_core::{Expiration, ErrorKind, TokenLifetime};
///
/// let week = Expiration::minutes(7 * 24 * 60);
/// assert_eq!(week.to_param(), "10080");
/// assert!(week.check_for(TokenLifetime::AppToken).is_ok());
///
/// assert_eq!(Expiration::MAXIMUM.to_param(), "-1");
/// assert!(Expiration::MAXIMUM.check_for(TokenLifetime::RefreshToken).is_ok());
/// let err = Expiration::MAXIMUM.check_for(TokenLifetime::AppToken).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
///
/// assert_eq!(Expiration::default_for(TokenLifetime::RefreshToken), Expiration::minutes(20_160));
/// assert_eq!(
///     Expiration::minutes(200_000).clamp_for(TokenLifetime::RefreshToken),
///     Expiration::minutes(129_600),
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Expiration(Inner);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Inner {
    Minutes(u32),
    Maximum,
}

impl Expiration {
    /// `-1`: the longest lifetime the portal allows (refresh tokens only).
    pub const MAXIMUM: Expiration = Expiration(Inner::Maximum);

    /// A lifetime of `minutes` minutes (checked against a grant by [`Expiration::check_for`]).
    pub const fn minutes(minutes: u32) -> Self {
        Expiration(Inner::Minutes(minutes))
    }

    /// A lifetime of `d`, rounded up to whole minutes (saturating).
    pub fn from_duration(d: Duration) -> Self {
        let mins = d.as_nanos().div_ceil(60_000_000_000);
        Expiration::minutes(u32::try_from(mins).unwrap_or(u32::MAX))
    }

    /// ArcGIS's default for `lifetime`.
    pub const fn default_for(lifetime: TokenLifetime) -> Self {
        Expiration::minutes(lifetime.default_minutes())
    }

    /// ArcGIS's maximum for `lifetime`, when it has a fixed one.
    pub const fn max_for(lifetime: TokenLifetime) -> Option<Self> {
        match lifetime.max_minutes() {
            Some(m) => Some(Expiration::minutes(m)),
            None => None,
        }
    }

    /// The number of minutes, or `None` for [`Expiration::MAXIMUM`].
    pub const fn as_minutes(self) -> Option<u32> {
        match self.0 {
            Inner::Minutes(m) => Some(m),
            Inner::Maximum => None,
        }
    }

    /// Whether this is [`Expiration::MAXIMUM`].
    pub const fn is_maximum(self) -> bool {
        matches!(self.0, Inner::Maximum)
    }

    /// The lifetime this asks for when used for `lifetime` (`MAXIMUM` resolved;
    /// `None` when the server decides).
    pub fn duration_for(self, lifetime: TokenLifetime) -> Option<Duration> {
        let minutes = match self.0 {
            Inner::Minutes(m) => m,
            Inner::Maximum => lifetime.max_minutes()?,
        };
        Some(Duration::from_secs(u64::from(minutes) * 60))
    }

    /// The value of the `expiration` form or query parameter.
    pub fn to_param(self) -> String {
        match self.0 {
            Inner::Minutes(m) => m.to_string(),
            Inner::Maximum => "-1".to_owned(),
        }
    }

    /// This expiration if ArcGIS accepts it for `lifetime`; otherwise an
    /// [`ErrorKind::InvalidInput`] error saying the allowed range. Zero minutes
    /// is never valid; `MAXIMUM` only for refresh tokens.
    pub fn check_for(self, lifetime: TokenLifetime) -> Result<Self> {
        match self.0 {
            Inner::Maximum if lifetime == TokenLifetime::RefreshToken => Ok(self),
            Inner::Maximum => Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "expiration -1 (the maximum) is only accepted for refresh tokens, not for {}: \
                     give a number of minutes",
                    lifetime.name()
                ),
            )),
            Inner::Minutes(0) => Err(Error::new(
                ErrorKind::InvalidInput,
                "an expiration of 0 minutes is not valid: give at least 1 minute",
            )),
            Inner::Minutes(m) => match lifetime.max_minutes() {
                Some(max) if m > max => Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "an expiration of {m} minutes exceeds the maximum of {max} minutes for {}",
                        lifetime.name()
                    ),
                )),
                _ => Ok(self),
            },
        }
    }

    /// This expiration brought into ArcGIS's range for `lifetime`: 0 becomes 1
    /// minute, too long becomes the maximum, `MAXIMUM` becomes the maximum in
    /// minutes for grants other than refresh tokens (or the default when the
    /// server decides).
    pub fn clamp_for(self, lifetime: TokenLifetime) -> Self {
        match self.0 {
            Inner::Maximum if lifetime == TokenLifetime::RefreshToken => self,
            Inner::Maximum => {
                Expiration::minutes(lifetime.max_minutes().unwrap_or(lifetime.default_minutes()))
            }
            Inner::Minutes(m) => {
                let m = m.max(1);
                Expiration::minutes(lifetime.max_minutes().map_or(m, |max| m.min(max)))
            }
        }
    }
}

impl fmt::Debug for Expiration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Inner::Minutes(m) => write!(f, "Expiration({m} min)"),
            Inner::Maximum => f.write_str("Expiration(MAXIMUM)"),
        }
    }
}

impl fmt::Display for Expiration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Inner::Minutes(m) => write!(f, "{m} minutes"),
            Inner::Maximum => f.write_str("the maximum lifetime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use TokenLifetime::*;
        let rows = [
            (CodeFlowAccessToken, 30, Some(30)),
            (RefreshToken, 20_160, Some(129_600)),
            (ImplicitAccessToken, 120, Some(20_160)),
            (AppToken, 120, Some(20_160)),
            (GenerateToken, 60, None),
        ];
        for (l, default, max) in rows {
            assert_eq!(l.default_minutes(), default, "{l:?}");
            assert_eq!(l.max_minutes(), max, "{l:?}");
            assert!(Expiration::default_for(l).check_for(l).is_ok());
        }
    }

    #[test]
    fn checks() {
        use TokenLifetime::*;
        assert!(
            Expiration::minutes(31)
                .check_for(CodeFlowAccessToken)
                .is_err()
        );
        assert!(Expiration::minutes(129_600).check_for(RefreshToken).is_ok());
        assert!(
            Expiration::minutes(129_601)
                .check_for(RefreshToken)
                .is_err()
        );
        assert!(Expiration::minutes(20_161).check_for(AppToken).is_err());
        assert!(Expiration::minutes(0).check_for(GenerateToken).is_err());
        assert!(
            Expiration::minutes(1_000_000)
                .check_for(GenerateToken)
                .is_ok()
        );
        assert!(Expiration::MAXIMUM.check_for(GenerateToken).is_err());
        let e = Expiration::minutes(20_161).check_for(AppToken).unwrap_err();
        assert!(e.to_string().contains("20160"), "{e}");
    }

    #[test]
    fn clamps_and_durations() {
        use TokenLifetime::*;
        assert_eq!(
            Expiration::minutes(0).clamp_for(AppToken),
            Expiration::minutes(1)
        );
        assert_eq!(
            Expiration::MAXIMUM.clamp_for(AppToken),
            Expiration::minutes(20_160)
        );
        assert_eq!(
            Expiration::MAXIMUM.clamp_for(GenerateToken),
            Expiration::minutes(60)
        );
        assert_eq!(
            Expiration::MAXIMUM.clamp_for(RefreshToken),
            Expiration::MAXIMUM
        );
        assert_eq!(
            Expiration::MAXIMUM.duration_for(RefreshToken),
            Some(Duration::from_secs(129_600 * 60))
        );
        assert_eq!(Expiration::MAXIMUM.duration_for(GenerateToken), None);
        assert_eq!(
            Expiration::from_duration(Duration::from_secs(61)),
            Expiration::minutes(2)
        );
        assert_eq!(
            Expiration::from_duration(Duration::from_secs(60)),
            Expiration::minutes(1)
        );
        assert_eq!(
            Expiration::from_duration(Duration::MAX).as_minutes(),
            Some(u32::MAX)
        );
    }
}
