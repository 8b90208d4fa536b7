//! PKCS#12 files opened in Rust, as PEM for rustls (the `pkcs12` feature).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use super::pkcs12_unreadable;
use crate::error::{Error, ErrorKind, Result};

/// The certificate chain (leaf first) and the private key of `der`, as PEM.
///
/// The password opens the MAC first, so a wrong one is told apart from a
/// damaged file only as far as PKCS#12 allows: both are "cannot be read".
pub(super) fn to_pem(der: &[u8], password: &SecretString) -> Result<(String, SecretString)> {
    let store = p12_keystore::KeyStore::from_pkcs12(der, password.expose_secret())
        .map_err(|_| pkcs12_unreadable())?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "the PKCS#12 file holds no private key with its certificate: export the \
             certificate together with its key",
        )
    })?;
    if chain.chain().is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the PKCS#12 file holds a private key but not its certificate: export the \
             certificate together with its key",
        ));
    }
    let mut certs = String::new();
    for cert in chain.chain() {
        push_pem(&mut certs, "CERTIFICATE", cert.as_der());
    }
    let mut key = String::new();
    push_pem(&mut key, "PRIVATE KEY", chain.key());
    Ok((certs, SecretString::from(key)))
}

/// One PEM block of `der` under `label`, 64 characters a line.
fn push_pem(out: &mut String, label: &str, der: &[u8]) {
    // The key's text is wiped when dropped, as the key itself.
    let text = Zeroizing::new(STANDARD.encode(der));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    // Base64 is ASCII, so every 64-byte chunk is valid UTF-8.
    for line in text.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_64_characters_and_read_back() {
        let der: Vec<u8> = (0..=255u8).collect();
        let mut pem = String::new();
        push_pem(&mut pem, "CERTIFICATE", &der);
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(body.iter().all(|l| l.len() <= 64));
        assert_eq!(STANDARD.decode(body.concat()).unwrap(), der);
    }

    #[test]
    fn bytes_that_are_not_pkcs12_are_invalid_input_and_never_panic() {
        let password = SecretString::from("pw-6631");
        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"not a pkcs12 file".to_vec(),
            vec![0x30],
            vec![0x30, 0x82, 0xff, 0xff],
            vec![0x30, 0x03, 0x02, 0x01, 0x03],
        ];
        inputs.extend((0..64u8).map(|n| vec![0x30, n, 0x02, 0x01, 0x03, 0x30, n]));
        for input in inputs {
            let err = to_pem(&input, &password).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(!err.to_string().contains("pw-6631"));
        }
    }
}
