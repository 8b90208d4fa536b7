//! `profiles`.

use super::Context;
use crate::exit::CliError;
use crate::output::result_line;

pub(super) async fn run(ctx: &Context) -> Result<(), CliError> {
    for name in ctx.profiles.names().await? {
        result_line(name)?;
    }
    Ok(())
}
