//! Clients for Redis URLs, over TLS for `rediss://`: the root certificates to
//! trust (the system's, plus a private CA's PEM bundle), rustls's crypto
//! provider, and what a TLS failure tells the user.

use redis::{Client, ConnectionAddr, RedisError, TlsCertificates};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::{StoreError, StoreErrorKind, StoreResult};

/// How to fix a malformed URL (the parse error itself can quote the URL, and
/// so its password).
const URL_HELP: &str = "the Redis URL is not valid: use redis://[user:password@]host[:port][/db], \
                        or rediss://... for TLS";

/// A client for `url`, over TLS for `rediss://`, trusting the CA
/// certificates of the PEM bundle `root_certificates` on top of the
/// system's roots when given.
pub(super) fn open_client(url: &str, root_certificates: Option<&[u8]>) -> StoreResult<Client> {
    let invalid = |message: &str| StoreError::new(StoreErrorKind::InvalidInput, message);
    let client = Client::open(url).map_err(|_| invalid(URL_HELP))?;
    let tls = match client.get_connection_info().addr() {
        ConnectionAddr::TcpTls { insecure, .. } => {
            if *insecure {
                return Err(invalid(
                    "the Redis URL ends in #insecure, which would skip checking the server's \
                     certificate: remove it, and if the server's certificate comes from your own \
                     CA, trust that CA with RedisStoreBuilder::root_certificates",
                ));
            }
            true
        }
        _ => false,
    };
    match (tls, root_certificates) {
        (false, None) => Ok(client),
        (false, Some(_)) => Err(invalid(
            "root certificates were given for a plain redis:// URL: use rediss:// to connect \
             over TLS",
        )),
        (true, root_certificates) => {
            use_aws_lc_rs_unless_chosen();
            let Some(pem) = root_certificates else {
                return Ok(client);
            };
            let bundle = bundle_certificates(pem)?;
            let trusted = to_pem(system_roots().iter().chain(&bundle));
            Client::build_with_tls(
                url,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(trusted),
                },
            )
            .map_err(|_| {
                invalid(
                    "the PEM bundle of root certificates for Redis is not usable: give a PEM \
                     bundle of CA certificates",
                )
            })
        }
    }
}

/// The certificates of the PEM bundle `pem`, each checked to be usable as a
/// trust anchor. A bundle with none is an error: it would add nothing, and
/// the server would be refused with a less clear message.
///
/// The messages never quote the bundle: a file given by mistake (a private
/// key) must not end up in a log.
fn bundle_certificates(pem: &[u8]) -> StoreResult<Vec<CertificateDer<'static>>> {
    let invalid = |message: &str| StoreError::new(StoreErrorKind::InvalidInput, message);
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|_| {
            invalid(
                "the PEM bundle of root certificates for Redis is not valid PEM (a \
                 -----BEGIN ...----- block has no matching -----END line, or its base64 does not \
                 decode): give a PEM bundle of CA certificates",
            )
        })?;
        if RootCertStore::empty().add(cert.clone()).is_err() {
            return Err(invalid(
                "a certificate in the PEM bundle of root certificates for Redis cannot be used \
                 as a trust anchor (it does not parse as X.509): give a PEM bundle of CA \
                 certificates",
            ));
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(invalid(
            "the PEM bundle of root certificates for Redis holds no certificate: give PEM text \
             with at least one -----BEGIN CERTIFICATE----- block",
        ));
    }
    Ok(certs)
}

/// The system's root certificates, as the `redis` crate reads them when
/// given no roots (`rustls-native-certs`), keeping only those a trust store
/// accepts. A root that cannot be read is logged and left out, so that a
/// host with a broken or missing system store can still reach a server of
/// the private CA.
fn system_roots() -> Vec<CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(
            %error,
            "a system root certificate could not be read; it is not trusted for Redis"
        );
    }
    found
        .certs
        .into_iter()
        .filter(|cert| RootCertStore::empty().add(cert.clone()).is_ok())
        .collect()
}

/// `certs` as one PEM bundle, the form the `redis` crate takes roots in.
fn to_pem<'a>(certs: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> Vec<u8> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    let mut pem = String::new();
    for cert in certs {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let body = STANDARD.encode(cert.as_ref());
        for line in body.as_bytes().chunks(64) {
            // Base64 is ASCII, so every chunk is text.
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
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
             your own, trust that CA's PEM bundle with RedisStoreBuilder::root_certificates; check \
             that the URL names the host the certificate is for"
        )),
        _ => StoreError::unavailable(format!(
            "cannot {what}: the TLS handshake with Redis failed ({tls}): check that the port \
             speaks TLS (rediss:// needs a TLS port; use redis:// for a plain one)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_written_back_as_pem_reads_as_the_same_certificates() {
        // 0, 1, 47 and 48 bytes: base64 lines of one, none and a full 64 chars.
        let ders: Vec<CertificateDer<'static>> = [0usize, 1, 47, 48, 200]
            .iter()
            .map(|&n| CertificateDer::from((0..n).map(|i| i as u8).collect::<Vec<u8>>()))
            .collect();
        let pem = to_pem(&ders);
        let read: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(read, ders);
        let text = String::from_utf8(pem).expect("PEM is text");
        assert!(text.lines().all(|line| line.len() <= 64), "{text}");
    }

    #[test]
    fn junk_is_not_a_bundle() {
        for junk in [&b""[..], b"hello", b"-----BEGIN CERTIFICATE-----\n%%%\n"] {
            let err = bundle_certificates(junk).unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::InvalidInput, "{err}");
        }
    }
}
