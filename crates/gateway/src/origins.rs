//! Which browser origins may use the gateway: `allowed_origins` patterns with per-label wildcards.

use url::Url;

/// The label `*` stands for while a pattern goes through the URL parser.
const PLACEHOLDER: &str = "gateway-wildcard-label";

/// One `allowed_origins` entry: a scheme, a host whose labels may be `*`
/// (exactly one label each, never a dot), and a port.
///
/// `https://*.example.org` allows `https://maps.example.org`, not
/// `https://example.org`, `https://a.b.example.org` or
/// `https://maps.example.org.evil.tld`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    labels: Vec<Label>,
    port: u16,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    Any,
    Exact(String),
}

impl OriginPattern {
    /// Parses `scheme://host[:port]` (a trailing `/` is allowed), or says why not.
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim().trim_end_matches('/');
        let (scheme, rest) = text
            .split_once("://")
            .ok_or("an origin is `https://host[:port]`")?;
        if scheme != "https" && scheme != "http" {
            return Err("an origin's scheme is `https` or `http`".into());
        }
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', '\\']) {
            return Err("an origin has no path, query, fragment or user name".into());
        }
        let labels_in: Vec<&str> = rest.split('.').collect();
        if labels_in.iter().any(|l| l.contains('*') && *l != "*") {
            return Err("`*` stands for a whole label (`https://*.example.com`)".into());
        }
        let placeholder_rest = labels_in
            .iter()
            .map(|l| if *l == "*" { PLACEHOLDER } else { l })
            .collect::<Vec<_>>()
            .join(".");
        let candidate = format!("{scheme}://{placeholder_rest}/");
        let url = Url::parse(&candidate).map_err(|e| format!("not an origin ({e})"))?;
        let host = url.host_str().ok_or("an origin has a host")?;
        let port = url.port_or_known_default().ok_or("an origin has a port")?;
        let labels = host
            .split('.')
            .map(|l| {
                if l == PLACEHOLDER {
                    Label::Any
                } else {
                    Label::Exact(l.to_owned())
                }
            })
            .collect::<Vec<_>>();
        if labels
            .iter()
            .filter(|l| matches!(l, Label::Exact(_)))
            .count()
            < 2
            && labels.iter().any(|l| l == &Label::Any)
        {
            return Err(
                "a wildcard needs at least two fixed labels (`https://*.example.com`)".into(),
            );
        }
        Ok(OriginPattern {
            scheme: scheme.to_owned(),
            labels,
            port,
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the origin of `url` (scheme, host, port) matches.
    pub fn matches(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme || url.port_or_known_default() != Some(self.port) {
            return false;
        }
        let Some(host) = url.host_str() else {
            return false;
        };
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() == self.labels.len()
            && labels.iter().zip(&self.labels).all(|(l, p)| match p {
                Label::Any => !l.is_empty(),
                Label::Exact(e) => e.eq_ignore_ascii_case(l),
            })
    }
}

/// The allowed origins, and the decision for one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedOrigins {
    patterns: Vec<OriginPattern>,
    /// The gateway's own origin (`[user_sign_in].public_url`): its pages'
    /// requests are same-origin and always allowed.
    own: Option<Url>,
}

/// Who a browser request says it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// An allowed `Origin` header (echoed in CORS answers) or `Referer`.
    Allowed { origin: Option<String> },
    /// An `Origin` or `Referer` that no pattern allows, or an unreadable one.
    Refused,
    /// Neither header.
    Unknown,
}

impl AllowedOrigins {
    pub(crate) fn new(patterns: Vec<OriginPattern>) -> Self {
        AllowedOrigins {
            patterns,
            own: None,
        }
    }

    /// The same patterns, and `own` (the gateway's public origin) allowed too.
    pub(crate) fn with_own(mut self, own: Option<Url>) -> Self {
        self.own = own;
        self
    }

    /// Whether no pattern is configured (the gateway's own origin aside).
    pub(crate) fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn allows(&self, url: &Url) -> bool {
        self.own
            .as_ref()
            .is_some_and(|own| own.origin() == url.origin())
            || self.patterns.iter().any(|p| p.matches(url))
    }

    /// Judges a request by its `Origin` header, else its `Referer`.
    pub(crate) fn judge(&self, headers: &http::HeaderMap) -> Caller {
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let Some(text) = origin.to_str().ok().filter(|t| *t != "null") else {
                return Caller::Refused;
            };
            return match Url::parse(text) {
                Ok(url) if url.path() == "/" && self.allows(&url) => Caller::Allowed {
                    origin: Some(text.to_owned()),
                },
                _ => Caller::Refused,
            };
        }
        if let Some(referer) = headers.get(http::header::REFERER) {
            return match referer.to_str().ok().and_then(|t| Url::parse(t).ok()) {
                Some(url) if url.username().is_empty() && self.allows(&url) => {
                    Caller::Allowed { origin: None }
                }
                _ => Caller::Refused,
            };
        }
        Caller::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn wildcards_stand_for_one_label() {
        let p = OriginPattern::parse("https://*.example.org").expect("pattern");
        assert!(p.matches(&url("https://maps.example.org")));
        assert!(p.matches(&url("https://MAPS.Example.org:443/")));
        assert!(!p.matches(&url("https://example.org")));
        assert!(!p.matches(&url("https://a.b.example.org")));
        assert!(!p.matches(&url("https://maps.example.org.evil.tld")));
        assert!(!p.matches(&url("https://maps.example.org:8443")));
        assert!(!p.matches(&url("http://maps.example.org")));
    }

    #[test]
    fn exact_origins_and_ports() {
        let p = OriginPattern::parse("http://127.0.0.1:3000").expect("pattern");
        assert!(p.matches(&url("http://127.0.0.1:3000")));
        assert!(!p.matches(&url("http://127.0.0.1:3001")));
        let p = OriginPattern::parse("https://app.example.com/").expect("pattern");
        assert!(p.matches(&url("https://app.example.com/page?x")));
        assert!(!p.matches(&url("https://app.example.com.evil.tld")));
        assert!(!p.matches(&url("https://evilapp.example.com")));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "app.example.com",
            "ftp://x.example.com",
            "https://*",
            "https://*.com",
            "https://a*.example.com",
            "https://app.example.com/path",
            "https://user@app.example.com",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_header_wins_over_referer() {
        let allowed = AllowedOrigins::new(vec![
            OriginPattern::parse("https://app.example.com").expect("pattern"),
        ]);
        let mut h = http::HeaderMap::new();
        assert_eq!(allowed.judge(&h), Caller::Unknown);
        h.insert(
            http::header::REFERER,
            "https://app.example.com/map".parse().expect("v"),
        );
        assert_eq!(allowed.judge(&h), Caller::Allowed { origin: None });
        h.insert(
            http::header::ORIGIN,
            "https://evil.example.com".parse().expect("v"),
        );
        assert_eq!(allowed.judge(&h), Caller::Refused);
        h.insert(http::header::ORIGIN, "null".parse().expect("v"));
        assert_eq!(allowed.judge(&h), Caller::Refused);
    }

    #[test]
    fn the_gateways_own_origin_is_always_allowed() {
        let own = url("http://127.0.0.1:8080");
        let allowed = AllowedOrigins::new(Vec::new()).with_own(Some(own));
        assert!(allowed.is_empty(), "no pattern was configured");
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::REFERER,
            "http://127.0.0.1:8080/app".parse().expect("v"),
        );
        assert_eq!(allowed.judge(&h), Caller::Allowed { origin: None });
        h.insert(
            http::header::ORIGIN,
            "http://127.0.0.1:8080".parse().expect("v"),
        );
        assert_eq!(
            allowed.judge(&h),
            Caller::Allowed {
                origin: Some("http://127.0.0.1:8080".to_owned())
            }
        );
        for other in [
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "http://localhost:8080",
        ] {
            h.insert(http::header::ORIGIN, other.parse().expect("v"));
            assert_eq!(allowed.judge(&h), Caller::Refused, "{other}");
        }
    }
}
