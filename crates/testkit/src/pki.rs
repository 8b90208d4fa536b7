//! A test certificate authority made at test time: the CA a PKI web tier
//! trusts, its server certificates, and client certificates for users.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};

use crate::error::{Error, ErrorKind};

/// A certificate authority made with `rcgen` when the test runs (nothing is
/// read from disk). Give it to [`WebTier::client_certificate`](crate::WebTier::client_certificate);
/// trust [`ca_pem`](Self::ca_pem) in the client under test, and sign users
/// in with the certificates [`client_certificate`](Self::client_certificate) issues.
///
/// Cheap to clone (clones are the same CA).
#[derive(Clone)]
pub struct TestCa {
    inner: Arc<CaInner>,
}

struct CaInner {
    name: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// Who each issued client certificate (DER) names as its subject's common name.
    subjects: Mutex<HashMap<Vec<u8>, String>>,
}

/// A certificate and its private key, PEM-encoded, as a user would hold
/// them (`cert.pem`, `key.pem`). `Debug` leaves the key out.
#[derive(Clone)]
pub struct TestCertificate {
    /// The certificate, one PEM `CERTIFICATE` block.
    pub cert_pem: String,
    /// Its private key, one PEM `PRIVATE KEY` (PKCS#8) block.
    pub key_pem: String,
}

impl fmt::Debug for TestCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[REDACTED]")
            .finish()
    }
}

fn rcgen_error(e: rcgen::Error) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("could not make a test certificate: {e}"),
    )
}

impl TestCa {
    /// A new CA whose certificate names `name` (e.g. `"Test Enterprise CA"`).
    pub fn new(name: &str) -> Result<TestCa, Error> {
        let mut params = CertificateParams::new(Vec::new()).map_err(rcgen_error)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(rcgen_error)?;
        Ok(TestCa {
            inner: Arc::new(CaInner {
                name: name.to_owned(),
                issuer,
                subjects: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The CA certificate, PEM: what a client trusts for the portal's TLS
    /// certificate (`HttpClient::with_root_certificates`).
    pub fn ca_pem(&self) -> String {
        self.inner.issuer.pem()
    }

    /// A client certificate for `user` (its subject's common name), valid
    /// from 1975 to 4096.
    pub fn client_certificate(&self, user: &str) -> Result<TestCertificate, Error> {
        self.issue_client(user, None)
    }

    /// A client certificate for `user` that expired in 2000.
    pub fn expired_client_certificate(&self, user: &str) -> Result<TestCertificate, Error> {
        self.issue_client(user, Some((1999, 2000)))
    }

    fn issue_client(
        &self,
        user: &str,
        years: Option<(i32, i32)>,
    ) -> Result<TestCertificate, Error> {
        let mut params = CertificateParams::new(Vec::new()).map_err(rcgen_error)?;
        params.distinguished_name.push(DnType::CommonName, user);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some((from, to)) = years {
            params.not_before = date_time_ymd(from, 1, 1);
            params.not_after = date_time_ymd(to, 1, 1);
        }
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = params
            .signed_by(&key, &self.inner.issuer)
            .map_err(rcgen_error)?;
        if let Ok(mut subjects) = self.inner.subjects.lock() {
            subjects.insert(cert.der().to_vec(), user.to_owned());
        }
        Ok(TestCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub(crate) fn server_certificate(&self) -> Result<TestCertificate, Error> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(rcgen_error)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let cert = params
            .signed_by(&key, &self.inner.issuer)
            .map_err(rcgen_error)?;
        Ok(TestCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The subject's common name of a client certificate this CA issued
    /// (the handshake has verified it by then).
    pub(crate) fn subject_of(&self, der: &[u8]) -> Option<String> {
        self.inner.subjects.lock().ok()?.get(der).cloned()
    }

    /// The CA certificate, DER.
    pub(crate) fn ca_der(&self) -> Vec<u8> {
        self.inner.issuer.der().to_vec()
    }
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}
