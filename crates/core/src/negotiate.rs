//! Kerberos at the web tier: `Authorization: Negotiate` tokens (SPNEGO) for
//! the service `HTTP@<host>`, from the user's credential cache.
//!
//! GSSAPI calls block (a service ticket may have to be fetched from the
//! KDC), so the async entry points run them on tokio's blocking pool.

use std::fmt;

use base64::Engine as _;
use http::HeaderValue;
use libgssapi::context::{ClientCtx, CtxFlags};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE, OidSet};

use crate::error::{Error, ErrorKind, Result};

/// The user's Kerberos identity, as the default credential cache holds it
/// (`KRB5CCNAME`, else the platform's default; filled by `kinit`), for
/// `Negotiate` (SPNEGO) at the web tier.
///
/// Only the principal name is kept here; the tickets stay in the cache,
/// and each request gets a fresh token for `HTTP@<host of its URL>`
/// (Kerberos acceptors refuse a token seen before). `Debug` shows the
/// principal only.
#[derive(Clone)]
pub struct KerberosCredential {
    principal: String,
}

impl KerberosCredential {
    /// Reads the default credential cache (on tokio's blocking pool): the
    /// principal whose tickets it holds.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WebTierCredentialRequired`] when the cache holds no
    /// usable ticket (empty, missing, expired): run `kinit`. Must be called
    /// inside a tokio runtime.
    pub async fn from_default_cache() -> Result<Self> {
        tokio::task::spawn_blocking(Self::from_default_cache_blocking)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Transport,
                    "reading the Kerberos credential cache was interrupted: try again",
                )
            })?
    }

    /// [`from_default_cache`](Self::from_default_cache) on the calling
    /// thread (which it blocks): for programs without a runtime.
    ///
    /// # Errors
    ///
    /// As [`from_default_cache`](Self::from_default_cache).
    pub fn from_default_cache_blocking() -> Result<Self> {
        let principal = default_principal().map_err(|e| {
            Error::new(
                ErrorKind::WebTierCredentialRequired,
                format!(
                    "no usable Kerberos ticket in the credential cache ({}): sign in to the \
                     realm with `kinit` first",
                    cache_name()
                ),
            )
            .with_source(e)
        })?;
        Ok(KerberosCredential { principal })
    }

    /// The principal the tickets belong to (`jdoe@EXAMPLE.COM`).
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// `Negotiate <base64 SPNEGO token>` for the service `HTTP@host`,
    /// made on tokio's blocking pool, marked sensitive.
    pub(crate) async fn header_for(&self, host: &str) -> Result<HeaderValue> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let service = host.clone();
        let token = tokio::task::spawn_blocking(move || initial_token(&service))
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Transport,
                    "making the Kerberos token was interrupted: try again",
                )
            })?
            .map_err(|e| {
                Error::new(
                    ErrorKind::WebTierCredentialRequired,
                    format!(
                        "no Kerberos ticket for the service HTTP/{host} could be had with the \
                         credential cache ({}): run `kinit` again, and check with the \
                         administrator that HTTP/{host} is a principal of the realm",
                        cache_name()
                    ),
                )
                .with_source(e)
            })?;
        let mut value = HeaderValue::from_str(&format!("Negotiate {token}")).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                "the Kerberos token cannot travel in a header",
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for KerberosCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KerberosCredential")
            .field("principal", &self.principal)
            .finish()
    }
}

/// Where the tickets are read from, for messages.
fn cache_name() -> String {
    std::env::var("KRB5CCNAME").unwrap_or_else(|_| "the default cache".to_owned())
}

/// The principal of the default initiator credential (Kerberos mechanism).
fn default_principal() -> std::result::Result<String, libgssapi::error::Error> {
    let mut mechs = OidSet::new();
    mechs.add(GSS_MECH_KRB5)?;
    let cred = Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs))?;
    // A cache whose tickets expired still names its principal: refuse it here.
    if cred.lifetime()?.is_zero() {
        return Err(libgssapi::error::Error {
            major: libgssapi::error::MajorFlags::GSS_S_CREDENTIALS_EXPIRED,
            minor: 0,
        });
    }
    let name = cred.name()?;
    let display = name.display_name()?;
    Ok(String::from_utf8_lossy(&display).into_owned())
}

/// The first (and, without mutual authentication, only) SPNEGO token for
/// `HTTP@host`, base64.
///
/// No mutual authentication is asked for: the server is authenticated by
/// TLS (or is on loopback), and a one-leg exchange fits HTTP, where each
/// request is answered on its own. A server's `WWW-Authenticate:
/// Negotiate <token>` on a successful answer is therefore not needed.
fn initial_token(host: &str) -> std::result::Result<String, libgssapi::error::Error> {
    let target = Name::new(
        format!("HTTP@{host}").as_bytes(),
        Some(GSS_NT_HOSTBASED_SERVICE),
    )?;
    let mut ctx = ClientCtx::new(None, target, CtxFlags::empty(), Some(GSS_MECH_SPNEGO));
    let token = ctx.step(None, None)?.ok_or(libgssapi::error::Error {
        major: libgssapi::error::MajorFlags::GSS_S_DEFECTIVE_TOKEN,
        minor: 0,
    })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(&*token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_principal_only() {
        let k = KerberosCredential {
            principal: "jdoe@EXAMPLE.COM".into(),
        };
        assert_eq!(
            format!("{k:?}"),
            r#"KerberosCredential { principal: "jdoe@EXAMPLE.COM" }"#
        );
        let w = crate::WebTierCredential::from(k);
        assert_eq!(w.method(), crate::SignInMethod::Kerberos);
        assert_eq!(w.identity(), "jdoe@EXAMPLE.COM");
    }
}
