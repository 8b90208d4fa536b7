//! The route table: which targets the gateway forwards, and with which credential.

use std::borrow::Cow;

use url::Url;

use crate::target::{Target, path_segments};

/// What a route attaches to the requests it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Nothing: the request is forwarded as the browser sent it (minus hop-by-hop headers).
    None,
    /// A token of the `[[apps]]` entry with this name.
    App(String),
    /// A token of the `[[servers]]` entry with this name.
    Server(String),
    /// The token of the user signed in through the gateway (`[user_sign_in]`),
    /// found by the request's session cookie; a federated server's own token
    /// for that server.
    User,
}

impl Auth {
    /// Parses `none`, `user`, `app:NAME` or `server:NAME`.
    pub fn parse(text: &str) -> Option<Auth> {
        match text.split_once(':') {
            None if text == "none" => Some(Auth::None),
            None if text == "user" => Some(Auth::User),
            Some(("app", name)) if !name.is_empty() => Some(Auth::App(name.to_owned())),
            Some(("server", name)) if !name.is_empty() => Some(Auth::Server(name.to_owned())),
            _ => None,
        }
    }
}

/// A route's URL: a scheme (or none: then both `http` and `https`), a host,
/// an explicit port (or the scheme's default) and whole path segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteUrl {
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
    segments: Vec<String>,
}

impl RouteUrl {
    /// Parses `https://host[:port]/path`, `//host/path` or `host/path` (the
    /// last two match `http` and `https`), or says why not.
    pub fn parse(input: &str) -> Result<Self, String> {
        let text = input.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((s, rest)) => (Some(s.to_ascii_lowercase()), rest),
            None => (None, text.strip_prefix("//").unwrap_or(text)),
        };
        if let Some(s) = &scheme
            && s != "http"
            && s != "https"
        {
            return Err("a route's URL is http://, https:// or scheme-less (//host/path)".into());
        }
        if rest.contains(['?', '#', '\\', '@']) || rest.chars().any(char::is_control) {
            return Err("a route's URL has no query, fragment, backslash or user name".into());
        }
        let url = Url::parse(&format!(
            "{}://{rest}",
            scheme.as_deref().unwrap_or("https")
        ))
        .map_err(|e| format!("not a URL ({e})"))?;
        let host = url.host_str().ok_or("a route's URL has a host")?.to_owned();
        if host.is_empty() {
            return Err("a route's URL has a host".into());
        }
        Ok(RouteUrl {
            port: url.port(),
            scheme,
            host,
            segments: path_segments(&url),
        })
    }

    /// Whether the route is written with plain `http://`.
    pub(crate) fn is_plain_http(&self) -> bool {
        self.scheme.as_deref() == Some("http")
    }

    /// Whether the host is a loopback address or `localhost`.
    pub(crate) fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    fn same_origin(&self, url: &Url) -> bool {
        let scheme_ok = match &self.scheme {
            Some(s) => s == url.scheme(),
            None => matches!(url.scheme(), "http" | "https"),
        };
        let port_ok = match self.port {
            Some(p) => url.port_or_known_default() == Some(p),
            None => url.port().is_none(),
        };
        scheme_ok
            && port_ok
            && url
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
    }
}

/// One `[[routes]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The URL as written in the configuration (for logs and metrics).
    pub url_text: String,
    /// The parsed URL.
    pub url: RouteUrl,
    /// `true`: whole-segment prefix; `false`: the path must be exactly this one.
    pub match_all: bool,
    /// What the route attaches.
    pub auth: Auth,
    /// How many requests one client may send through this route, if limited.
    pub rate_limit: Option<crate::ratelimit::RateLimit>,
}

impl Route {
    /// The number of path segments this route matched `target` with, if it does.
    fn matches(&self, target: &Target, segments: &[Cow<'_, str>]) -> bool {
        if !self.url.same_origin(&target.url) {
            return false;
        }
        let mine = &self.url.segments;
        if self.match_all {
            segments.len() >= mine.len() && segments.iter().zip(mine).all(|(a, b)| a == b)
        } else {
            segments == mine.as_slice()
        }
    }
}

/// The routes, searched longest prefix first.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub(crate) fn new(mut routes: Vec<Route>) -> Self {
        // Longest path first; at equal length an exact route before a prefix,
        // and a route with a scheme before a scheme-less one.
        routes.sort_by_key(|r| {
            (
                std::cmp::Reverse(r.url.segments.len()),
                r.match_all,
                r.url.scheme.is_none(),
            )
        });
        RouteTable { routes }
    }

    /// The route for `target`, if any.
    pub(crate) fn find(&self, target: &Target) -> Option<&Route> {
        let segments = target.segments();
        self.routes.iter().find(|r| r.matches(target, &segments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::parse;

    fn route(url: &str, match_all: bool, auth: &str) -> Route {
        Route {
            url_text: url.to_owned(),
            url: RouteUrl::parse(url).expect("route url"),
            match_all,
            auth: Auth::parse(auth).expect("auth"),
            rate_limit: None,
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(vec![
            route("https://h.example/arcgis/rest/services", true, "none"),
            route(
                "https://h.example/arcgis/rest/services/Secure",
                true,
                "app:geo",
            ),
            route(
                "//s.example/arcgis/rest/services/Exact/MapServer",
                false,
                "server:gis",
            ),
            route("http://127.0.0.1:8081/x", true, "app:geo"),
        ])
    }

    fn auth_for(raw: &str) -> Option<Auth> {
        let target = parse(raw).expect("target");
        table().find(&target).map(|r| r.auth.clone())
    }

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(
            auth_for("https://h.example/arcgis/rest/services/Secure/MapServer"),
            Some(Auth::App("geo".into()))
        );
        assert_eq!(
            auth_for("https://h.example/arcgis/rest/services/Open/MapServer"),
            Some(Auth::None)
        );
        assert_eq!(
            auth_for("https://h.example/arcgis/rest/services"),
            Some(Auth::None)
        );
    }

    #[test]
    fn whole_segments_only() {
        assert_eq!(auth_for("https://h.example/arcgis/rest/servicesX"), None);
        assert_eq!(
            auth_for("https://h.example/arcgis/rest/services/SecureX/MapServer"),
            Some(Auth::None)
        );
        assert_eq!(auth_for("https://h.example/arcgis/rest"), None);
    }

    #[test]
    fn origin_must_match_exactly() {
        assert_eq!(
            auth_for("http://h.example/arcgis/rest/services/Secure"),
            None
        );
        assert_eq!(
            auth_for("https://h.example:8443/arcgis/rest/services/Secure"),
            None
        );
        assert_eq!(
            auth_for("https://H.EXAMPLE/arcgis/rest/services/Secure"),
            Some(Auth::App("geo".into()))
        );
        assert_eq!(
            auth_for("https://h.example.evil.tld/arcgis/rest/services/Secure"),
            None
        );
        assert_eq!(
            auth_for("https://evilh.example/arcgis/rest/services/Secure"),
            None
        );
        assert_eq!(
            auth_for("https://h.example./arcgis/rest/services/Secure"),
            None
        );
        assert_eq!(
            auth_for("http://127.0.0.1:8081/x/y"),
            Some(Auth::App("geo".into()))
        );
        assert_eq!(auth_for("http://127.0.0.1:8082/x/y"), None);
        assert_eq!(auth_for("http://127.0.0.1/x/y"), None);
    }

    #[test]
    fn scheme_less_routes_match_both_schemes_and_exact_means_exact() {
        for raw in [
            "https://s.example/arcgis/rest/services/Exact/MapServer?f=json",
            "http://s.example/arcgis/rest/services/Exact/MapServer/",
        ] {
            assert_eq!(auth_for(raw), Some(Auth::Server("gis".into())), "{raw}");
        }
        assert_eq!(
            auth_for("https://s.example/arcgis/rest/services/Exact/MapServer/0"),
            None
        );
        assert_eq!(
            auth_for("https://s.example:444/arcgis/rest/services/Exact/MapServer"),
            None
        );
    }

    #[test]
    fn dot_segments_cannot_climb_into_a_route() {
        assert_eq!(
            auth_for("https://h.example/arcgis/rest/services/Secure/../../../admin"),
            None
        );
        assert_eq!(
            auth_for("https://h.example/arcgis/rest/services/Open/../Secure/x"),
            Some(Auth::App("geo".into()))
        );
    }
}
