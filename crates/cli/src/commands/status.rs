//! `status [--json]`: what the profile holds, never a token.

use arcgis_auth_core::Timestamp;
use arcgis_auth_storage::{SessionKind, SessionRecord};
use serde_json::json;

use super::Context;
use crate::exit::CliError;
use crate::output::{result, result_json};

pub(super) async fn run(ctx: &Context, as_json: bool) -> Result<(), CliError> {
    let record = ctx.session().await?;
    let now = Timestamp::now();
    if as_json {
        result_json(&status_json(&ctx.profile, &record, now))
    } else {
        result(status_text(&ctx.profile, &record, now).as_bytes())
    }
}

/// The name `status` shows for a kind of session.
pub(crate) fn kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::User => "user",
        SessionKind::App => "app",
        SessionKind::GenerateToken => "generate_token",
        SessionKind::ApiKey => "api_key",
        SessionKind::WebTier => "web_tier",
        _ => "other",
    }
}

fn rfc3339(t: Option<Timestamp>) -> Option<String> {
    t.map(Timestamp::to_rfc3339)
}

fn status_json(profile: &str, r: &SessionRecord, now: Timestamp) -> serde_json::Value {
    json!({
        "profile": profile,
        "portal": r.portal.to_string(),
        "kind": kind_name(r.kind),
        "username": r.username,
        "client_id": r.client_id,
        "expires_at": rfc3339(r.expires_at),
        "expired": r.expires_at.is_none_or(|t| t <= now),
        "refresh_expires_at": rfc3339(r.refresh_token_expires_at),
    })
}

fn status_text(profile: &str, r: &SessionRecord, now: Timestamp) -> String {
    let unknown = || "-".to_owned();
    let access = match r.expires_at {
        Some(t) if t == Timestamp::MAX => "never expires".to_owned(),
        Some(t) if t <= now => format!("expired at {}", t.to_rfc3339()),
        Some(t) => format!("valid until {}", t.to_rfc3339()),
        None => "none".to_owned(),
    };
    let refresh = match (&r.refresh_token, r.refresh_token_expires_at) {
        (None, _) => "none".to_owned(),
        (Some(_), Some(t)) if t <= now => format!("expired at {}", t.to_rfc3339()),
        (Some(_), Some(t)) => format!("valid until {}", t.to_rfc3339()),
        (Some(_), None) => "present (the portal did not say until when)".to_owned(),
    };
    let rows = [
        ("profile", profile.to_owned()),
        ("portal", r.portal.to_string()),
        ("kind", kind_name(r.kind).to_owned()),
        ("username", r.username.clone().unwrap_or_else(unknown)),
        ("client id", r.client_id.clone().unwrap_or_else(unknown)),
        ("access token", access),
        ("refresh token", refresh),
    ];
    rows.iter()
        .map(|(k, v)| format!("{:<14} {v}\n", format!("{k}:")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::{Portal, RefreshToken, Token};

    #[test]
    fn status_never_shows_a_token() {
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let mut r = SessionRecord::new(Portal::arcgis_online(), SessionKind::User);
        r.client_id = Some("app".into());
        r.set_token(
            &Token::new(
                "access-s3cr3t".into(),
                Timestamp::from_unix_millis(1_700_000_060_000),
            )
            .with_username(Some("jdoe".into()))
            .with_refresh_token(Some(RefreshToken::new(
                "refresh-s3cr3t".into(),
                now,
                Some(Timestamp::from_unix_millis(1_700_100_000_000)),
            ))),
        );
        let text = status_text("default", &r, now);
        let json = status_json("default", &r, now).to_string();
        for shown in [&text, &json] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        assert!(
            text.contains("valid until 2023-11-14T22:14:20.000Z"),
            "{text}"
        );
        assert!(text.contains("jdoe"), "{text}");
        let v = status_json("default", &r, now);
        assert_eq!(v["kind"], "user");
        assert_eq!(v["expired"], false);
        assert_eq!(v["refresh_expires_at"], "2023-11-16T02:00:00.000Z");
        let later = Timestamp::from_unix_millis(1_700_000_060_000);
        assert!(status_text("default", &r, later).contains("expired at"));
        assert_eq!(status_json("default", &r, later)["expired"], true);
    }
}
