//! Random ids (sessions, pending sign-ins): 128 bits from the OS, kept secret, stored by digest.

use std::fmt;

use arcgis_auth_core::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// How many random bytes an id has (128 bits).
const BYTES: usize = 16;

/// A random id a cookie carries: 32 lowercase hex digits. Only its SHA-256
/// digest is written to the store, so a copy of the store holds no cookie.
/// `Debug` never shows it.
pub(crate) struct RandomId(SecretString);

impl RandomId {
    /// A fresh id from the operating system's random source; `None` when it fails.
    pub(crate) fn new() -> Option<RandomId> {
        let mut bytes = [0u8; BYTES];
        getrandom::fill(&mut bytes).ok()?;
        Some(RandomId(SecretString::from(hex(&bytes))))
    }

    /// An id as a cookie sent it, when it has the shape of one.
    pub(crate) fn parse(text: &str) -> Option<RandomId> {
        let ok = text.len() == BYTES * 2
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| RandomId(SecretString::from(text.to_owned())))
    }

    /// The id itself, for the cookie.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The SHA-256 of the id, in hex: what the store's key holds.
    pub(crate) fn digest(&self) -> String {
        hex(&Sha256::digest(self.0.expose_secret().as_bytes()))
    }
}

impl fmt::Debug for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RandomId([REDACTED])")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_128_bit_hex_and_parse_back() {
        let a = RandomId::new().expect("random");
        let b = RandomId::new().expect("random");
        assert_eq!(a.expose().len(), 32);
        assert_ne!(a.expose(), b.expose());
        let back = RandomId::parse(a.expose()).expect("parses");
        assert_eq!(back.digest(), a.digest());
        assert_ne!(a.digest(), a.expose());
        assert_eq!(a.digest().len(), 64);
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn anything_else_is_no_id() {
        for bad in [
            "",
            "abc",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcdef0",
            "../../../../etc/passwd/0123456789",
        ] {
            assert!(RandomId::parse(bad).is_none(), "{bad}");
        }
    }
}
