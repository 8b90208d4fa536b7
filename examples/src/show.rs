//! Describing tokens for people, without showing any part of them.
//!
//! Not even a prefix: a few characters of a token narrow a brute-force search
//! and end up in screenshots and bug reports. What is shown is what a reader
//! needs: how long the secret is, whose it is, and when it stops working.

use std::time::Duration;

use arcgis_auth_core::{ExposeSecret, SecretString, Timestamp, Token};
use arcgis_auth_flows::AccessToken;

/// "a 128-character token for jdoe, valid for 30 min (until 2026-11-21T07:05:00.000Z)".
pub fn token(token: &Token, now: Timestamp) -> String {
    describe(
        token.access_token(),
        token.username(),
        token.expires_at(),
        now,
    )
}

/// As [`token`], for what a [`TokenManager`](arcgis_auth_flows::TokenManager) hands out.
pub fn access(access: &AccessToken, now: Timestamp) -> String {
    describe(access.secret(), access.username(), access.expires_at(), now)
}

fn describe(
    secret: &SecretString,
    user: Option<&str>,
    expires: Timestamp,
    now: Timestamp,
) -> String {
    let len = secret.expose_secret().chars().count();
    let whose = user.map(|u| format!(" for {u}")).unwrap_or_default();
    let left = if expires > now {
        format!(
            "valid for {}",
            duration(expires.saturating_duration_since(now))
        )
    } else {
        "expired".to_owned()
    };
    format!("a {len}-character token{whose}, {left} (until {expires})")
}

/// A duration in the largest whole unit that reads well: "45 s", "30 min", "2 h", "14 days".
pub fn duration(d: Duration) -> String {
    // To the nearest second: a token that lives 2 hours, looked at a few
    // milliseconds after it arrived, still reads "2 h".
    let secs = u64::try_from((d.as_millis() + 500) / 1000).unwrap_or(u64::MAX);
    match secs {
        0..120 => format!("{secs} s"),
        120..7_200 => format!("{} min", secs / 60),
        7_200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_token() {
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let t = Token::new("abcdefghijklmnop".into(), now + Duration::from_secs(1800))
            .with_username(Some("jdoe".into()));
        let text = token(&t, now);
        assert_eq!(
            text,
            "a 16-character token for jdoe, valid for 30 min (until 2023-11-14T22:43:20.000Z)"
        );
        for window in "abcdefghijklmnop".as_bytes().windows(3) {
            assert!(!text.contains(std::str::from_utf8(window).unwrap()));
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_secs(59)), "59 s");
        assert_eq!(duration(Duration::from_secs(1800)), "30 min");
        assert_eq!(duration(Duration::from_secs(7200)), "2 h");
        assert_eq!(duration(Duration::from_millis(7_199_995)), "2 h");
        assert_eq!(duration(Duration::from_secs(14 * 86_400)), "14 days");
    }
}
