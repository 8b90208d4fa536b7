//! `token [--json]`.

use arcgis_auth_core::ExposeSecret;
use serde_json::json;

use super::Context;
use crate::cli::SecretArgs;
use crate::exit::CliError;
use crate::output::{result_json, result_line};

pub(super) async fn run(ctx: &Context, as_json: bool, secret: &SecretArgs) -> Result<(), CliError> {
    let (manager, record) = ctx.manager(secret).await?;
    let token = manager
        .token()
        .await
        .map_err(|e| ctx.token_error(e, &record, secret))?;
    if as_json {
        // The portal as stored after a renewal (it cannot change, but the
        // record read before may be older than the token).
        let portal = manager.session().await.map_or(record.portal, |r| r.portal);
        result_json(&json!({
            "token": token.secret().expose_secret(),
            "expires_at": token.expires_at().to_rfc3339(),
            "username": token.username(),
            "ssl": token.ssl(),
            "portal": portal.to_string(),
        }))
    } else {
        result_line(token.secret().expose_secret())
    }
}
