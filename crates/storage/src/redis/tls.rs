//! Clients for Redis URLs, over TLS for `rediss://`: the CA certificates to
//! trust, rustls's crypto provider, and what a TLS failure tells the user.

use redis::{Client, ConnectionAddr, RedisError, TlsCertificates};

use crate::error::{StoreError, StoreErrorKind, StoreResult};

/// How to fix a malformed URL (the parse error itself can quote the URL, and
/// so its password).
const URL_HELP: &str = "the Redis URL is not valid: use redis://[user:password@]host[:port][/db], \
                        or rediss://... for TLS";

/// A client for `url`, over TLS for `rediss://`, trusting `ca_certificate`
/// (PEM) instead of the system's roots when given.
pub(super) fn open_client(url: &str, ca_certificate: Option<Vec<u8>>) -> StoreResult<Client> {
    let invalid = |message: &str| StoreError::new(StoreErrorKind::InvalidInput, message);
    let client = Client::open(url).map_err(|_| invalid(URL_HELP))?;
    let tls = match client.get_connection_info().addr() {
        ConnectionAddr::TcpTls { insecure, .. } => {
            if *insecure {
                return Err(invalid(
                    "the Redis URL ends in #insecure, which would skip checking the server's \
                     certificate: remove it, and if the server's certificate comes from your own \
                     CA, trust that CA with RedisStoreBuilder::ca_certificate_pem",
                ));
            }
            true
        }
        _ => false,
    };
    match (tls, ca_certificate) {
        (false, None) => Ok(client),
        (false, Some(_)) => Err(invalid(
            "a CA certificate was given for a plain redis:// URL: use rediss:// to connect over TLS",
        )),
        (true, ca_certificate) => {
            use_aws_lc_rs_unless_chosen();
            let Some(pem) = ca_certificate else {
                return Ok(client);
            };
            check_ca_pem(&pem)?;
            Client::build_with_tls(
                url,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                },
            )
            .map_err(|_| {
                invalid("the CA certificate for Redis is not usable: give a PEM CA certificate")
            })
        }
    }
}

/// Checks that `pem` holds at least one certificate and that each parses
/// (an empty trust store would refuse every server, with a less clear error).
fn check_ca_pem(pem: &[u8]) -> StoreResult<()> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidInput,
                format!("the CA certificate for Redis is not valid PEM ({e}): give a PEM file"),
            )
        })?;
        roots.add(cert).map_err(|e| {
            StoreError::new(
                StoreErrorKind::InvalidInput,
                format!("the CA certificate for Redis cannot be used as a trust anchor ({e})"),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(StoreError::new(
            StoreErrorKind::InvalidInput,
            "the CA certificate for Redis holds no certificate: give the PEM text, with its \
             -----BEGIN CERTIFICATE----- line",
        ));
    }
    Ok(())
}

/// The `redis` crate builds its TLS settings on rustls's process-wide
/// crypto provider. rustls picks one by itself when exactly one is compiled
/// in (aws-lc-rs, as reqwest uses), and panics when the build has both and
/// the program chose none: so choose aws-lc-rs then, as reqwest does.
fn use_aws_lc_rs_unless_chosen() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: its choice stands.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The rustls error inside `e`, if a TLS handshake or record failed.
pub(super) fn tls_error(e: &RedisError) -> Option<&rustls::Error> {
    use std::error::Error;
    use std::sync::Arc;

    let mut next: Option<&(dyn Error + 'static)> = Some(e);
    while let Some(mut err) = next {
        // `RedisError::source()` is the `Arc` it keeps the error in.
        if let Some(inner) = err.downcast_ref::<Arc<dyn Error + Send + Sync>>() {
            err = &**inner;
        }
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // tokio-rustls wraps rustls errors in an `io::Error`, whose
        // `source()` skips the wrapped error itself.
        if let Some(tls) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

/// Maps a TLS failure to what to do about it.
pub(super) fn tls_store_error(what: &str, tls: &rustls::Error) -> StoreError {
    match tls {
        rustls::Error::InvalidCertificate(_) => StoreError::unavailable(format!(
            "cannot {what}: the Redis server's TLS certificate was refused ({tls}): if its CA is \
             your own, trust it with RedisStoreBuilder::ca_certificate_pem (or add it to the \
             system's roots); check that the URL names the host the certificate is for"
        )),
        _ => StoreError::unavailable(format!(
            "cannot {what}: the TLS handshake with Redis failed ({tls}): check that the port \
             speaks TLS (rediss:// needs a TLS port; use redis:// for a plain one)"
        )),
    }
}
