//! The lifetime table of ARCGIS-WIRE.md: defaults and maximums, in minutes.

/// A token lifetime rule: what `expiration` (minutes) may ask for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lifetime {
    pub(crate) default: i64,
    pub(crate) max: i64,
}

/// Access token from the code flow (and its refreshes): 30 minutes, cannot be raised.
pub(crate) const CODE_ACCESS: Lifetime = Lifetime {
    default: 30,
    max: 30,
};
/// Refresh token: 2 weeks by default, 90 days at most; `-1` asks for the maximum.
pub(crate) const REFRESH: Lifetime = Lifetime {
    default: 20_160,
    max: 129_600,
};
/// Implicit access token.
pub(crate) const IMPLICIT: Lifetime = Lifetime {
    default: 120,
    max: 20_160,
};
/// App token from `client_credentials`.
pub(crate) const APP: Lifetime = Lifetime {
    default: 120,
    max: 20_160,
};
/// `generateToken` user token.
pub(crate) const GENERATED: Lifetime = Lifetime {
    default: 60,
    max: 20_160,
};
/// Authorization codes (not in ArcGIS's docs; the fake's choice).
pub(crate) const CODE_MINUTES: i64 = 10;

impl Lifetime {
    /// The lifetime granted for a requested `expiration`, capped by the
    /// organisation's `maxTokenExpirationMinutes`. `Err` for a value that is
    /// not an integer.
    pub(crate) fn grant(self, requested: Option<&str>, org_cap: Option<u32>) -> Result<i64, ()> {
        let minutes = match requested.map(str::trim).filter(|s| !s.is_empty()) {
            None => self.default,
            Some(s) => match s.parse::<i64>() {
                Ok(-1) => self.max,
                Ok(m) if m > 0 => m.min(self.max),
                Ok(_) => self.default,
                Err(_) => return Err(()),
            },
        };
        Ok(match org_cap {
            Some(cap) => minutes.min(i64::from(cap)),
            None => minutes,
        })
    }

    /// This rule with a different default (e.g. a server's `shortLivedTokenValidity`).
    pub(crate) fn with_default(self, default: i64) -> Lifetime {
        Lifetime {
            default: default.min(self.max),
            max: self.max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(REFRESH.grant(None, None), Ok(20_160));
        assert_eq!(REFRESH.grant(Some("-1"), None), Ok(129_600));
        assert_eq!(REFRESH.grant(Some("999999"), None), Ok(129_600));
        assert_eq!(REFRESH.grant(Some("60"), None), Ok(60));
        assert_eq!(REFRESH.grant(Some("60"), Some(30)), Ok(30));
        assert_eq!(CODE_ACCESS.grant(Some("600"), None), Ok(30));
        assert_eq!(APP.grant(Some("abc"), None), Err(()));
        assert_eq!(APP.grant(Some("0"), None), Ok(120));
    }
}
