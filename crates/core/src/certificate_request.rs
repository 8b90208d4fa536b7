//! Whether a TLS server asks for a client certificate, told by the
//! handshake itself rather than by how the connection ended.
//!
//! Under TLS 1.3 the client's side of the handshake is over before the
//! server has seen the client's (empty) certificate, so a server that
//! demands one sends its `certificate_required` alert while the client is
//! already sending its request. Which of the two the client notices first
//! is a race: the alert, or a connection closed under a request that was
//! not yet sent (hyper's "connection was not ready"), with the alert lost.
//! The server's `CertificateRequest` message, on the other hand, is part of
//! the handshake, before either. So when a request sent without a
//! certificate fails after its handshake, [`asks_for_client_certificate`]
//! sends an anonymous `GET` to the same URL (its query left off) on a
//! connection whose rustls client notes that message.
//!
//! Only the rustls features have this: with `native-tls` alone the first
//! error stands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::sign::CertifiedKey;
use url::Url;

/// The longest the second look may take.
const LOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// A client-certificate "resolver" that holds no certificate and notes
/// whether the server asked for one.
#[derive(Debug, Default)]
struct NotesRequest(AtomicBool);

impl ResolvesClientCert for NotesRequest {
    fn resolve(
        &self,
        _issuers: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.store(true, Ordering::SeqCst);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// The crypto provider reqwest would use: the process's default, else (with
/// the `rustls` feature) aws-lc-rs, as reqwest ships.
fn provider() -> Option<Arc<CryptoProvider>> {
    if let Some(p) = CryptoProvider::get_default() {
        return Some(p.clone());
    }
    #[cfg(feature = "rustls")]
    {
        Some(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
    }
    #[cfg(not(feature = "rustls"))]
    {
        None
    }
}

/// Whether the server at `url` (an `https://` URL) asks for a client
/// certificate in its handshake **and** then refuses a request without
/// one. `roots_pem` are the extra trusted roots (the platform's stay
/// trusted, as in [`HttpClient::new`](crate::HttpClient::new)).
///
/// `false` whenever it cannot tell: no crypto provider, a TLS setup that
/// cannot be built, a server that did not ask, or one that asked but
/// answered the request anyway (a certificate it merely accepts).
pub(crate) async fn asks_for_client_certificate(url: &Url, roots_pem: &[u8]) -> bool {
    let Some(provider) = provider() else {
        return false;
    };
    let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(roots_pem)
        .filter_map(std::result::Result::ok)
        .collect();
    let verifier = if roots.is_empty() {
        rustls_platform_verifier::Verifier::new(provider.clone())
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
    };
    let Ok(verifier) = verifier else {
        return false;
    };
    let Ok(builder) =
        rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()
    else {
        return false;
    };
    let notes = Arc::new(NotesRequest::default());
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(notes.clone());
    config.alpn_protocols = vec![
        #[cfg(feature = "http2")]
        b"h2".to_vec(),
        b"http/1.1".to_vec(),
    ];
    let Ok(client) = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(LOOK_TIMEOUT)
        .timeout(LOOK_TIMEOUT)
        .build()
    else {
        return false;
    };
    let mut bare = url.clone();
    bare.set_query(None);
    bare.set_fragment(None);
    let answered = client.get(bare).send().await.is_ok();
    notes.0.load(Ordering::SeqCst) && !answered
}
