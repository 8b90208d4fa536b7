//! Redis errors as [`StoreError`]s: unreachable or refused, TLS failures
//! with what to do about them, foreign data as corrupt.

use redis::RedisError;

use super::tls::{tls_error, tls_store_error};
use crate::error::StoreError;

/// Maps a Redis error. Server replies and conversion errors can quote data, so
/// only their category travels, never their text.
pub(super) fn redis_error(what: &str, e: RedisError) -> StoreError {
    if let Some(tls) = tls_error(&e) {
        // The message names the TLS failure; the Redis error around it would
        // only say it again.
        return tls_store_error(what, tls);
    }
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        return StoreError::unavailable(format!(
            "cannot {what}: Redis is unreachable ({}); retry later",
            e.category()
        ))
        .with_source(e);
    }
    let code = e.code().map(|c| format!(", {c}")).unwrap_or_default();
    StoreError::unavailable(format!(
        "cannot {what}: Redis refused ({}{code}); check the server and its permissions",
        e.category()
    ))
}

/// A key that holds something this crate did not write.
pub(super) fn corrupt(key: &str) -> StoreError {
    StoreError::corrupt(format!(
        "the Redis key of session `{key}` holds something that is not a session written by \
         arcgis-auth: it was left untouched; delete it or choose another prefix"
    ))
}
