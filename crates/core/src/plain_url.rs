//! Absolute `http(s)` URLs read without the `url` crate: the strict subset a
//! session record holds, for builds of the contract without the `url` feature.
//!
//! This reader accepts only URLs that the WHATWG parser (the `url` crate)
//! leaves as they are apart from the normalisations it applies itself
//! (lower-cased scheme and host, default port dropped, query and fragment
//! cut off); anything the `url` crate would rewrite more deeply (spaces,
//! non-ASCII, dot segments, backslashes, IPv4 in hex or octal) is refused
//! rather than guessed at. With the `url` feature, [`Portal::parse`] uses the
//! `url` crate, and a test checks that both readers agree wherever this one
//! accepts.
//!
//! [`Portal::parse`]: crate::Portal::parse

use std::fmt::Write as _;
use std::net::Ipv6Addr;

/// The parts of an absolute `http(s)` URL, normalised as the `url` crate would.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PlainUrl<'a> {
    /// `"http"` or `"https"`.
    pub(crate) scheme: &'static str,
    /// A lower-cased domain, a dotted-decimal IPv4 address or `[IPv6]`.
    pub(crate) host: String,
    /// The port, `None` when it is the scheme's default.
    pub(crate) port: Option<u16>,
    /// The path as written (possibly empty), before any `?` or `#`.
    pub(crate) path: &'a str,
}

/// Why a URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PlainUrlError {
    /// No scheme: a bare host or a relative path.
    NotAbsolute,
    /// A user name or password before the host.
    UserInfo,
    /// Anything else, with a message saying what would work.
    Invalid(String),
}

impl<'a> PlainUrl<'a> {
    /// Reads `input` (already trimmed).
    pub(crate) fn parse(input: &'a str) -> Result<Self, PlainUrlError> {
        let Some((scheme, rest)) = input.split_once(':') else {
            return Err(PlainUrlError::NotAbsolute);
        };
        let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !valid_scheme {
            return Err(PlainUrlError::NotAbsolute);
        }
        let scheme = if scheme.eq_ignore_ascii_case("https") {
            "https"
        } else if scheme.eq_ignore_ascii_case("http") {
            "http"
        } else {
            return Err(PlainUrlError::Invalid(format!(
                "`{scheme}:` URLs cannot be ArcGIS origins: use an https:// URL"
            )));
        };
        let Some(rest) = rest.strip_prefix("//") else {
            return Err(invalid("write the URL as scheme://host/path"));
        };
        // The query and fragment are dropped, whatever they hold.
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        let rest = &rest[..end];
        if let Some(bad) = rest.chars().find(|c| !allowed(*c)) {
            return Err(invalid(&format!(
                "the URL holds {bad:?}: percent-encode spaces, quotes, brackets and \
                 characters outside ASCII"
            )));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(PlainUrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None | Some("") => None,
            Some(digits) => Some(read_port(digits)?),
        };
        let port = match (scheme, port) {
            ("https", Some(443)) | ("http", Some(80)) => None,
            (_, port) => port,
        };
        let host = read_host(host)?;
        if path.split('/').any(is_dot_segment) {
            return Err(invalid(
                "the path holds `.` or `..` segments: give the URL without them",
            ));
        }
        Ok(PlainUrl {
            scheme,
            host,
            port,
            path,
        })
    }

    /// `scheme://host[:port]`, as the `url` crate serialises it.
    pub(crate) fn origin_text(&self) -> String {
        let mut s = format!("{}://{}", self.scheme, self.host);
        if let Some(port) = self.port {
            let _ = write!(s, ":{port}");
        }
        s
    }
}

fn invalid(why: &str) -> PlainUrlError {
    PlainUrlError::Invalid(why.to_owned())
}

/// Characters the `url` crate keeps as they are in a host or a path.
fn allowed(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '"' | '<' | '>' | '`' | '{' | '}' | '\\' | '^' | '|')
}

/// `.` or `..`, also percent-encoded (`%2e`, `.%2E`, ...): the `url` crate resolves them.
fn is_dot_segment(seg: &str) -> bool {
    let seg = seg.to_ascii_lowercase().replace("%2e", ".");
    seg == "." || seg == ".."
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), PlainUrlError> {
    if authority.starts_with('[') {
        let Some(close) = authority.find(']') else {
            return Err(invalid("an IPv6 host needs its closing `]`"));
        };
        let (host, after) = authority.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(invalid("only a `:port` may follow an IPv6 host")),
            },
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn read_port(digits: &str) -> Result<u16, PlainUrlError> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the port must be a number"));
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 5 {
        return Err(invalid("the port must be at most 65535"));
    }
    match trimmed {
        "" => Ok(0),
        t => t
            .parse::<u16>()
            .map_err(|_| invalid("the port must be at most 65535")),
    }
}

fn read_host(host: &str) -> Result<String, PlainUrlError> {
    if host.is_empty() {
        return Err(invalid(
            "the URL has no host: give a full URL such as https://gis.example.com/portal",
        ));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| invalid("the host is not a valid IPv6 address"))?;
        return Ok(format!("[{}]", ipv6_text(ip)));
    }
    if host.contains(['[', ']']) {
        return Err(invalid("the host is not a valid IPv6 address"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(invalid(
            "the host may hold letters, digits, `-`, `_` and `.` only (write international \
             names in their xn-- form)",
        ));
    }
    let host = host.to_ascii_lowercase();
    // The WHATWG rule: a host whose last label is numeric is an IPv4 address.
    let last = host
        .strip_suffix('.')
        .unwrap_or(&host)
        .rsplit('.')
        .next()
        .unwrap_or("");
    let numeric = !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || last
                .strip_prefix("0x")
                .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit())));
    if numeric && !is_dotted_quad(&host) {
        return Err(invalid(
            "write an IPv4 host as four decimal numbers, such as 192.0.2.10",
        ));
    }
    if host.split('.').any(|label| label.len() > 63) || host.len() > 253 {
        return Err(invalid("the host name is too long"));
    }
    Ok(host)
}

/// `a.b.c.d`, each a decimal number 0–255 without leading zeros.
fn is_dotted_quad(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// An IPv6 address as the WHATWG serialiser writes it: lower-case hex, the
/// first longest run of two or more zero pieces written `::`, never the
/// dotted IPv4 tail std uses for mapped addresses.
fn ipv6_text(ip: Ipv6Addr) -> String {
    let pieces = ip.segments();
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < pieces.len() {
        if pieces[i] == 0 {
            let start = i;
            while i < pieces.len() && pieces[i] == 0 {
                i += 1;
            }
            let len = i - start;
            if len >= 2 && best.is_none_or(|(_, l)| len > l) {
                best = Some((start, len));
            }
        } else {
            i += 1;
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < pieces.len() {
        if let Some((start, len)) = best
            && i == start
        {
            out.push_str(if i == 0 { "::" } else { ":" });
            i += len;
            continue;
        }
        let _ = write!(out, "{:x}", pieces[i]);
        if i + 1 < pieces.len() {
            out.push(':');
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_normalises_what_url_normalises() {
        for (input, origin, path) in [
            (
                "HTTPS://GIS.Example.COM:443/Portal/home?x=1#y",
                "https://gis.example.com",
                "/Portal/home",
            ),
            ("http://127.0.0.1:80", "http://127.0.0.1", ""),
            ("http://h.example:0080/", "http://h.example", "/"),
            ("http://h.example:/", "http://h.example", "/"),
            (
                "https://[2001:DB8:0:0:1:0:0:1]:7443/p",
                "https://[2001:db8::1:0:0:1]:7443",
                "/p",
            ),
            ("http://[::ffff:1.2.3.4]/", "http://[::ffff:102:304]", "/"),
            ("http://[::1]:8080", "http://[::1]:8080", ""),
            (
                "https://xn--bcher-kva.example/",
                "https://xn--bcher-kva.example",
                "/",
            ),
        ] {
            let url = PlainUrl::parse(input).unwrap();
            assert_eq!(
                (url.origin_text().as_str(), url.path),
                (origin, path),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_what_it_would_have_to_guess() {
        for bad in [
            "www.arcgis.com",
            "/sharing/rest",
            "ftp://h.example/",
            "https:h.example",
            "https://user@h.example/",
            "https://h.example/my portal",
            "https://bücher.example/",
            "https://h.example\\sharing",
            "https://h.example/a/../b",
            "https://h.example/a/%2E%2e/b",
            "https://0x7f.0.0.1/",
            "https://h.0x/",
            "https://010.0.0.1/",
            "https://1.2.3/",
            "https://h.example:65536/",
            "https://h.example:99999999999999999999/",
            "https://h.example:8o/",
            "https://[::1/",
            "https://[zz]/",
            "https://[::1]x/",
            "https://",
            "https:///sharing/rest",
        ] {
            assert!(PlainUrl::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PlainUrl::parse("h.example"),
            Err(PlainUrlError::NotAbsolute)
        );
        assert_eq!(
            PlainUrl::parse("https://a:b@h.example"),
            Err(PlainUrlError::UserInfo)
        );
    }
}
