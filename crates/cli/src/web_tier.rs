//! The web-tier credentials of `login pki`, `login basic` and `login
//! kerberos`: read from files, the environment, standard input or the
//! Kerberos credential cache, and read again to renew. The store keeps only
//! what identifies them (the files' paths, the user name, the principal).

use std::path::{Path, PathBuf};

use arcgis_auth_core::{
    BasicCredentials, ClientCertificate, HttpClient, SecretString, WebTierCredential,
};
use arcgis_auth_storage::{SessionRecord, WebTierCredentialId};

use crate::cli::CertificateArgs;
use crate::exit::CliError;
use crate::secrets::{self, PASSWORD_VAR};

/// The env var holding the PKCS#12 password of `login pki --pkcs12`.
pub(crate) const PKCS12_PASSWORD_VAR: &str = "ARCGIS_PKCS12_PASSWORD";

/// How a certificate's label names its files: `cert=PATH,key=PATH` or `pkcs12=PATH`.
const PEM_LABEL: &str = "cert=";
const KEY_LABEL: &str = ",key=";
const PKCS12_LABEL: &str = "pkcs12=";

/// The client certificate `login pki` was given.
pub(crate) fn certificate(args: &CertificateArgs) -> Result<ClientCertificate, CliError> {
    match (&args.cert, &args.key, &args.pkcs12) {
        (Some(cert), Some(key), None) => from_pem(&absolute(cert)?, &absolute(key)?),
        (None, None, Some(p12)) => {
            let password = if args.pkcs12_password_stdin {
                secrets::prompt_line("PKCS#12 password: ")?
            } else {
                pkcs12_password_from_env()?
            };
            from_pkcs12(&absolute(p12)?, &password)
        }
        _ => Err(CliError::usage(
            "give --cert and --key (PEM files), or --pkcs12 FILE",
        )),
    }
}

/// The client certificate a stored session names, read again to renew it
/// (a PKCS#12 password from `ARCGIS_PKCS12_PASSWORD`).
fn certificate_from_label(label: &str) -> Result<ClientCertificate, CliError> {
    if let Some(rest) = label.strip_prefix(PEM_LABEL)
        && let Some((cert, key)) = rest.rsplit_once(KEY_LABEL)
    {
        return from_pem(Path::new(cert), Path::new(key));
    }
    if let Some(p12) = label.strip_prefix(PKCS12_LABEL) {
        return from_pkcs12(Path::new(p12), &pkcs12_password_from_env()?);
    }
    Err(CliError::usage(format!(
        "the stored certificate `{label}` does not name its files: sign in again with \
         `login pki`"
    )))
}

fn pkcs12_password_from_env() -> Result<SecretString, CliError> {
    match std::env::var(PKCS12_PASSWORD_VAR) {
        Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
        _ => Err(CliError::usage(format!(
            "no PKCS#12 password: set {PKCS12_PASSWORD_VAR}, or pass it on standard input \
             with --pkcs12-password-stdin"
        ))),
    }
}

fn from_pem(cert: &Path, key: &Path) -> Result<ClientCertificate, CliError> {
    let cert_pem = read(cert, "--cert")?;
    let key_pem = SecretString::from(
        String::from_utf8(read(key, "--key")?)
            .map_err(|_| CliError::usage(format!("--key {}: not a PEM file", key.display())))?,
    );
    let label = format!("{PEM_LABEL}{}{KEY_LABEL}{}", cert.display(), key.display());
    ClientCertificate::from_pem(&cert_pem, &key_pem, label)
        .map_err(|e| CliError::from(e).context(format_args!("--cert {}", cert.display())))
}

fn from_pkcs12(path: &Path, password: &SecretString) -> Result<ClientCertificate, CliError> {
    let der = read(path, "--pkcs12")?;
    let label = format!("{PKCS12_LABEL}{}", path.display());
    ClientCertificate::from_pkcs12_der(&der, password, label)
        .map_err(|e| CliError::from(e).context(format_args!("--pkcs12 {}", path.display())))
}

fn read(path: &Path, option: &str) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::usage(format!("{option} {}: cannot be read ({e})", path.display())))
}

/// `path` made absolute, so a renewal from another directory finds it.
fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path).map_err(|e| CliError::usage(format!("{}: {e}", path.display())))
}

/// The Basic credentials of `login basic`.
pub(crate) fn basic(username: &str, password_stdin: bool) -> Result<BasicCredentials, CliError> {
    let password = secrets::password(username, password_stdin)?;
    Ok(BasicCredentials::new(username, password)?)
}

/// `base` presenting `credential` to the portal of `record`'s origin.
pub(crate) fn client(
    base: &HttpClient,
    credential: impl Into<WebTierCredential>,
    portal: &arcgis_auth_core::Portal,
) -> Result<HttpClient, CliError> {
    Ok(base
        .clone()
        .with_web_tier(credential, portal.origin().clone())?)
}

/// The client that renews a web-tier session, when its credential is at
/// hand: the certificate's files read again, or the Basic password from
/// `ARCGIS_PASSWORD` (`Ok(None)` when it is not set: the session then needs
/// a new sign-in once its token expires).
pub(crate) fn client_for(
    base: &HttpClient,
    record: &SessionRecord,
) -> Result<Option<HttpClient>, CliError> {
    match &record.web_tier {
        Some(WebTierCredentialId::ClientCertificate { label }) => {
            let cert = certificate_from_label(label)?;
            client(base, cert, &record.portal).map(Some)
        }
        Some(WebTierCredentialId::Basic { username }) => match std::env::var(PASSWORD_VAR) {
            Ok(password) if !password.is_empty() => {
                let credentials = BasicCredentials::new(username.as_str(), password.into())?;
                client(base, credentials, &record.portal).map(Some)
            }
            _ => Ok(None),
        },
        #[cfg(feature = "kerberos")]
        Some(WebTierCredentialId::Kerberos { principal }) => {
            // Reads the local cache only (no KDC), so it may run here.
            let credential = arcgis_auth_core::KerberosCredential::from_default_cache_blocking()?;
            if credential.principal() != principal {
                return Err(CliError::usage(format!(
                    "the Kerberos credential cache holds tickets for {}, but the profile was \
                     signed in as {principal}: run `kinit {principal}`, or sign in again with \
                     `login kerberos`",
                    credential.principal()
                )));
            }
            client(base, credential, &record.portal).map(Some)
        }
        _ => Ok(None),
    }
}
