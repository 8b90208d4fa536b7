//! `logout`: revoke where the portal allows, delete the session.

use arcgis_auth_flows::account::{Account, Revoked};
use arcgis_auth_flows::profile::RenewalSecrets;

use super::Context;
use crate::exit::CliError;
use crate::output::progress;

pub(super) async fn run(ctx: &Context) -> Result<(), CliError> {
    let profile = &ctx.profile;
    let Some((manager, _)) = ctx.open_once(|_| Ok(RenewalSecrets::new())).await? else {
        progress(format_args!(
            "Profile `{profile}` holds no session: nothing to sign out of."
        ));
        return Ok(());
    };
    let report = Account::new(manager, ctx.http.clone()).sign_out().await;
    let deleted = report.deleted.map_err(|e| {
        CliError::from(e).context(format_args!("profile `{profile}` could not be deleted"))
    })?;
    match report.revoked {
        Ok(revoked) => {
            let what = match revoked {
                Revoked::RefreshToken => "the refresh token was revoked",
                Revoked::AccessToken => "the access token was revoked",
                _ => "its token cannot be revoked and stays valid until it expires",
            };
            let deleted = if deleted { "deleted" } else { "already gone" };
            progress(format_args!(
                "Signed out of profile `{profile}`: {what}; the session is {deleted}."
            ));
            Ok(())
        }
        Err(err) => Err(CliError::from(err).context(format_args!(
            "profile `{profile}` was deleted, but revoking its token at the portal failed (it \
             stays valid until it expires)"
        ))),
    }
}
