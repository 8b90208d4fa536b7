//! Exact origins: scheme, host and port, compared as values, never as text.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::error::{Error, ErrorKind, Result};

/// The origin of a URL: scheme, host and port, with the port made explicit.
///
/// Two origins are equal only when all three are equal. This is the only way
/// this workspace decides whether a URL may receive a token: never by
/// substring, prefix or regular expression on the URL's text.
///
/// ```
/// use arcgis_auth_core::Origin;
///
/// let portal = Origin::parse("https://www.arcgis.com/sharing/rest").unwrap();
/// assert_eq!(portal, Origin::parse("https://WWW.ArcGIS.com:443/other").unwrap());
/// assert_ne!(portal, Origin::parse("https://www.arcgis.com.evil.example/").unwrap());
/// assert_ne!(portal, Origin::parse("https://www.arcgis.com@evil.example/").unwrap());
/// assert_ne!(portal, Origin::parse("http://www.arcgis.com/").unwrap());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `"http"` or `"https"`, the only schemes an origin can have.
    scheme: &'static str,
    host: Host<String>,
    port: u16,
}

impl Origin {
    /// The origin of `url`. Fails for URLs without a host (e.g. `mailto:`) or
    /// for schemes other than `http` and `https`.
    pub fn of(url: &Url) -> Result<Self> {
        let scheme = match url.scheme() {
            "https" => "https",
            "http" => "http",
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("`{other}:` URLs cannot be ArcGIS origins: use an https:// URL"),
                ));
            }
        };
        let host = url
            .host()
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidUrl,
                    "the URL has no host: give a full URL such as https://gis.example.com/portal",
                )
            })?
            .to_owned();
        let port = url.port_or_known_default().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidUrl,
                "the URL has no port: give an http:// or https:// URL",
            )
        })?;
        Ok(Origin { scheme, host, port })
    }

    /// Parses `input` as a URL and returns its origin.
    pub fn parse(input: &str) -> Result<Self> {
        let url = Url::parse(input)
            .map_err(|e| Error::new(ErrorKind::InvalidUrl, "not a valid URL").with_source(e))?;
        Origin::of(&url)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// The host, lower-cased (IDNA-normalised for domains).
    pub fn host(&self) -> &Host<String> {
        &self.host
    }

    /// The port, explicit even when it is the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.scheme == "https"
    }

    /// Whether the host is a loopback address (`127.0.0.0/8`, `::1`) or `localhost`.
    pub fn is_loopback(&self) -> bool {
        host_is_loopback(&self.host)
    }

    /// Whether this is an `https` origin on a subdomain of `arcgis.com`: ArcGIS
    /// Online and its hosted services (`services.arcgis.com`, `tiles.arcgis.com`,
    /// `<org>.maps.arcgis.com`, ...). Decided on the parsed host's labels.
    pub fn is_arcgis_online(&self) -> bool {
        self.is_https() && host_has_suffix(&self.host, "arcgis.com")
    }
}

/// Whether `host` is the domain `suffix` or a subdomain of it, label-wise.
pub(crate) fn host_has_suffix(host: &Host<String>, suffix: &str) -> bool {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            d.eq_ignore_ascii_case(suffix)
                || (d.len() > suffix.len()
                    && d.as_bytes()[d.len() - suffix.len() - 1] == b'.'
                    && d[d.len() - suffix.len()..].eq_ignore_ascii_case(suffix))
        }
        _ => false,
    }
}

pub(crate) fn host_is_loopback(host: &Host<String>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Whether `url` may carry a credential: `https`, or any scheme to a loopback host.
pub fn is_secure_or_loopback(url: &Url) -> bool {
    url.scheme() == "https"
        || url
            .host()
            .map(|h| host_is_loopback(&h.to_owned()))
            .unwrap_or(false)
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ipv6(ip) => write!(f, "{}://[{ip}]:{}", self.scheme, self.port),
            h => write!(f, "{}://{h}:{}", self.scheme, self.port),
        }
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_label_wise() {
        let o = |s: &str| Origin::parse(s).unwrap();
        assert!(o("https://services3.arcgis.com/x").is_arcgis_online());
        assert!(o("https://arcgis.com/").is_arcgis_online());
        assert!(!o("https://evilarcgis.com/").is_arcgis_online());
        assert!(!o("https://arcgis.com.evil.example/").is_arcgis_online());
        assert!(!o("https://evil.example/x.arcgis.com/").is_arcgis_online());
        assert!(!o("http://services.arcgis.com/").is_arcgis_online());
    }

    #[test]
    fn loopback() {
        assert!(
            Origin::parse("http://127.0.0.1:8080")
                .unwrap()
                .is_loopback()
        );
        assert!(Origin::parse("http://127.3.4.5").unwrap().is_loopback());
        assert!(Origin::parse("http://[::1]:1/").unwrap().is_loopback());
        assert!(Origin::parse("http://LOCALHOST/").unwrap().is_loopback());
        assert!(
            !Origin::parse("http://localhost.evil.example/")
                .unwrap()
                .is_loopback()
        );
        assert!(!Origin::parse("http://10.0.0.1/").unwrap().is_loopback());
    }

    #[test]
    fn display_is_explicit() {
        assert_eq!(
            Origin::parse("https://A.example").unwrap().to_string(),
            "https://a.example:443"
        );
        assert_eq!(
            Origin::parse("http://[::1]:9/").unwrap().to_string(),
            "http://[::1]:9"
        );
    }

    #[test]
    fn ipv6_and_odd_hosts() {
        let o = |s: &str| Origin::parse(s).unwrap();
        assert_eq!(o("http://[::1]:80/"), o("http://[0:0:0:0:0:0:0:1]/"));
        assert_ne!(o("http://[::1]/"), o("http://127.0.0.1/"));
        // IPv4 in decimal form is still 127.0.0.1.
        assert!(o("http://2130706433/").is_loopback());
        // Fail closed: these are not loopback.
        assert!(!o("http://[::ffff:127.0.0.1]/").is_loopback());
        assert!(!o("http://0.0.0.0/").is_loopback());
        assert!(!o("http://127.0.0.1.nip.io/").is_loopback());
        // Ports are explicit and compared.
        assert_eq!(o("https://h.example/").port(), 443);
        assert_eq!(o("http://h.example/").port(), 80);
        assert_ne!(o("https://h.example/"), o("https://h.example:8443/"));
        // Userinfo is not part of the origin.
        assert_eq!(o("https://user@h.example/"), o("https://h.example/"));
        for bad in [
            "file:///etc/passwd",
            "ws://h.example/",
            "not a url",
            "https://",
        ] {
            assert_eq!(
                Origin::parse(bad).unwrap_err().kind(),
                ErrorKind::InvalidUrl,
                "{bad}"
            );
        }
    }

    #[test]
    fn secure_or_loopback() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(is_secure_or_loopback(&u("https://gis.example.com/")));
        assert!(is_secure_or_loopback(&u("http://127.0.0.1:1/")));
        assert!(is_secure_or_loopback(&u("http://[::1]/")));
        assert!(is_secure_or_loopback(&u("http://localhost:3000/")));
        assert!(!is_secure_or_loopback(&u("http://gis.example.com/")));
        assert!(!is_secure_or_loopback(&u("http://localhost.evil.example/")));
        assert!(!is_secure_or_loopback(&u("ftp://gis.example.com/")));
    }
}
