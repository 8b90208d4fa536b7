//! ArcGIS Server roots: where services live, and what a server token is for.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;
use crate::portal::redact_query;

/// The root of an ArcGIS Server site, e.g. `https://gis.example.com/server`
/// or `https://services3.arcgis.com/AbCdEf/arcgis`.
///
/// Cut from any service, admin, info or token URL at its `/rest` (or
/// `/admin`, `/tokens`) segment. Only the host is lower-cased: paths carry
/// case-sensitive organisation ids and are kept as given.
///
/// ```
/// use arcgis_auth_core::ServerRoot;
///
/// let root = ServerRoot::parse(
///     "https://Services3.ArcGIS.com/AbCdEf/arcgis/rest/services/Roads/FeatureServer/0/query?where=1=1",
/// ).unwrap();
/// assert_eq!(root.as_url().as_str(), "https://services3.arcgis.com/AbCdEf/arcgis");
/// assert_eq!(root.rest_info_url().as_str(), "https://services3.arcgis.com/AbCdEf/arcgis/rest/info");
/// ```
#[derive(Clone)]
pub struct ServerRoot {
    /// No trailing slash (except a bare host's `/`), query or fragment.
    root: Url,
    /// `root`'s origin, computed once (routing asks for it on every request).
    origin: Origin,
}

impl ServerRoot {
    /// Cuts the server root out of `input`; see the type docs.
    pub fn parse(input: &str) -> Result<Self> {
        let url = Url::parse(input.trim()).map_err(|e| {
            Error::new(
                ErrorKind::InvalidUrl,
                "not a valid server URL: give the URL of an ArcGIS Server site or service",
            )
            .with_source(e)
        })?;
        ServerRoot::from_url(&url)
    }

    /// Cuts the server root out of `url`; see the type docs.
    pub fn from_url(url: &Url) -> Result<Self> {
        let origin = Origin::of(url)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                "server URLs must not contain a user name or password: remove the `user@` part",
            ));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|seg| !seg.is_empty()).collect())
            .unwrap_or_default();
        let cut = segments
            .iter()
            .position(|s| {
                s.eq_ignore_ascii_case("rest")
                    || s.eq_ignore_ascii_case("admin")
                    || s.eq_ignore_ascii_case("tokens")
            })
            .unwrap_or(segments.len());
        let kept = &segments[..cut];
        if kept
            .last()
            .is_some_and(|s| s.eq_ignore_ascii_case("sharing"))
        {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "{} is a portal URL, not an ArcGIS Server URL",
                    redact_query(url)
                ),
            ));
        }
        let mut root = url.clone();
        root.set_query(None);
        root.set_fragment(None);
        // The segments are already percent-encoded: set the path as text so
        // they are not encoded twice.
        let path: String = kept.iter().map(|seg| format!("/{seg}")).collect();
        root.set_path(if path.is_empty() { "/" } else { &path });
        Ok(ServerRoot { root, origin })
    }

    /// The root URL, without a trailing slash (a root at the host itself is `https://host/`).
    pub fn as_url(&self) -> &Url {
        &self.root
    }

    /// The server's origin.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// `{root}/rest/info`: federation (`owningSystemUrl`) and token settings.
    pub fn rest_info_url(&self) -> Url {
        self.join(&["rest", "info"])
    }

    /// `{root}/rest/services`.
    pub fn services_url(&self) -> Url {
        self.join(&["rest", "services"])
    }

    /// `{root}/tokens/generateToken`: a standalone server's own token endpoint.
    pub fn generate_token_url(&self) -> Url {
        self.join(&["tokens", "generateToken"])
    }

    /// `{root}/admin/generateToken`: where a standalone server's Administrator
    /// API (`{root}/admin/...`) gets its tokens. Tokens from
    /// [`generate_token_url`](Self::generate_token_url) are refused there.
    pub fn admin_generate_token_url(&self) -> Url {
        self.join(&["admin", "generateToken"])
    }

    /// Whether `url` is an Administrator API URL of this server:
    /// `{root}/admin` or below it (the segment compared ignoring ASCII case),
    /// on this server's origin. `{root}/rest/admin/...` (the REST admin of
    /// hosted services) is not: it takes ordinary tokens.
    ///
    /// ```
    /// use arcgis_auth_core::ServerRoot;
    /// use url::Url;
    ///
    /// let root = ServerRoot::parse("https://gis.example.com/arcgis").unwrap();
    /// let is_admin = |s: &str| root.is_admin_url(&Url::parse(s).unwrap());
    /// assert!(is_admin("https://gis.example.com/arcgis/admin/services?f=json"));
    /// assert!(!is_admin("https://gis.example.com/arcgis/rest/admin/services"));
    /// assert!(!is_admin("https://other.example.com/arcgis/admin/services"));
    /// assert_eq!(
    ///     root.admin_generate_token_url().as_str(),
    ///     "https://gis.example.com/arcgis/admin/generateToken"
    /// );
    /// ```
    pub fn is_admin_url(&self, url: &Url) -> bool {
        if !self.contains(url) {
            return false;
        }
        let depth = self
            .root
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .count();
        url.path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .nth(depth)
            .is_some_and(|s| s.eq_ignore_ascii_case("admin"))
    }

    /// Whether `url` lies under this root (same origin and path prefix, segment-wise).
    pub fn contains(&self, url: &Url) -> bool {
        if Origin::of(url).ok().as_ref() != Some(&self.origin) {
            return false;
        }
        let mine = self
            .root
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty());
        let mut theirs = url
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty());
        mine.into_iter().all(|m| theirs.next() == Some(m))
    }

    fn join(&self, extra: &[&str]) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend(extra);
        }
        url
    }
}

// Equality and hashing follow the root URL alone: the origin is derived from it.
impl PartialEq for ServerRoot {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl Eq for ServerRoot {}

impl std::hash::Hash for ServerRoot {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.root.hash(state);
    }
}

impl fmt::Display for ServerRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_str())
    }
}

impl fmt::Debug for ServerRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerRoot({})", self.root)
    }
}

impl std::str::FromStr for ServerRoot {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ServerRoot::parse(s)
    }
}

impl Serialize for ServerRoot {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.root.as_str())
    }
}

impl<'de> Deserialize<'de> for ServerRoot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ServerRoot::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(s: &str) -> String {
        ServerRoot::parse(s).unwrap().to_string()
    }

    #[test]
    fn cuts_at_rest_and_admin() {
        assert_eq!(
            root("https://GIS.Example.com/Server/rest/services/Roads/MapServer"),
            "https://gis.example.com/Server"
        );
        assert_eq!(
            root("https://gis.example.com/arcgis/rest/admin/services/x"),
            "https://gis.example.com/arcgis"
        );
        assert_eq!(
            root("https://gis.example.com/arcgis/admin/login"),
            "https://gis.example.com/arcgis"
        );
        assert_eq!(
            root("https://gis.example.com/arcgis/tokens/generateToken"),
            "https://gis.example.com/arcgis"
        );
        assert_eq!(
            root("https://gis.example.com/arcgis/"),
            "https://gis.example.com/arcgis"
        );
        assert_eq!(
            root("https://gis.example.com:6443/rest/services"),
            "https://gis.example.com:6443/"
        );
        assert_eq!(
            root("http://127.0.0.1:5000/arcgis/rest/info?f=json"),
            "http://127.0.0.1:5000/arcgis"
        );
    }

    #[test]
    fn refuses_portals_and_junk() {
        for bad in [
            "https://gis.example.com/portal/sharing/rest",
            "nope",
            "https://u:p@h.example/arcgis",
        ] {
            assert_eq!(
                ServerRoot::parse(bad).unwrap_err().kind(),
                ErrorKind::InvalidUrl,
                "{bad}"
            );
        }
    }

    #[test]
    fn admin_urls_are_the_roots_admin_segment() {
        let r = ServerRoot::parse("https://h.example/arcgis").unwrap();
        let admin = |s: &str| r.is_admin_url(&Url::parse(s).unwrap());
        assert!(admin("https://h.example/arcgis/admin"));
        assert!(admin("https://h.example/arcgis/admin/"));
        assert!(admin("https://H.example:443/arcgis/Admin/machines?f=json"));
        assert!(admin("https://h.example/arcgis//admin/services"));
        for not in [
            "https://h.example/arcgis/rest/admin/services",
            "https://h.example/arcgis/rest/services/admin/MapServer",
            "https://h.example/arcgis/administrator",
            "https://h.example/arcgis",
            "https://h.example/admin",
            "https://h.example/arcgis2/admin",
            "http://h.example/arcgis/admin",
            "https://h.example:6443/arcgis/admin",
            "https://h.example.evil.example/arcgis/admin",
        ] {
            assert!(!admin(not), "{not}");
        }
        assert_eq!(
            r.admin_generate_token_url().as_str(),
            "https://h.example/arcgis/admin/generateToken"
        );
        let bare = ServerRoot::parse("https://h.example:6443/admin/login").unwrap();
        assert!(bare.is_admin_url(&Url::parse("https://h.example:6443/admin/x").unwrap()));
        assert_eq!(
            bare.admin_generate_token_url().as_str(),
            "https://h.example:6443/admin/generateToken"
        );
    }

    #[test]
    fn contains_is_segment_wise() {
        let r = ServerRoot::parse("https://h.example/arcgis").unwrap();
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(r.contains(&u("https://h.example/arcgis/rest/services/A/MapServer")));
        assert!(!r.contains(&u("https://h.example/arcgis2/rest/services")));
        assert!(!r.contains(&u("https://h.example:8443/arcgis/rest/services")));
        assert!(!r.contains(&u("http://h.example/arcgis/rest/services")));
    }

    #[test]
    fn endpoints() {
        let r = ServerRoot::parse("https://h.example/arcgis/rest/services").unwrap();
        assert_eq!(
            r.rest_info_url().as_str(),
            "https://h.example/arcgis/rest/info"
        );
        assert_eq!(
            r.services_url().as_str(),
            "https://h.example/arcgis/rest/services"
        );
        assert_eq!(
            r.generate_token_url().as_str(),
            "https://h.example/arcgis/tokens/generateToken"
        );
        let bare = ServerRoot::parse("https://h.example/rest/services").unwrap();
        assert_eq!(bare.rest_info_url().as_str(), "https://h.example/rest/info");
    }

    #[test]
    fn hosted_ipv6_and_encoded_paths() {
        assert_eq!(
            root("https://services3.arcgis.com/AbCdEf/ArcGIS/rest/services/x/FeatureServer/0"),
            "https://services3.arcgis.com/AbCdEf/ArcGIS"
        );
        assert_eq!(
            root("https://[2001:DB8::1]:6443/arcgis/rest/services"),
            "https://[2001:db8::1]:6443/arcgis"
        );
        assert_eq!(
            root("https://gis.example.com/my%20server/rest/services"),
            "https://gis.example.com/my%20server"
        );
        let r = ServerRoot::parse("https://gis.example.com/my%20server").unwrap();
        assert!(r.contains(&Url::parse("https://gis.example.com/my%20server/rest/info").unwrap()));
        assert_eq!(
            r.rest_info_url().as_str(),
            "https://gis.example.com/my%20server/rest/info"
        );
        // Case of the path is kept, so a differently cased path is another root.
        let upper = ServerRoot::parse("https://h.example/ArcGIS/rest/services").unwrap();
        assert!(!upper.contains(&Url::parse("https://h.example/arcgis/rest/services").unwrap()));
        assert_eq!(
            upper.origin(),
            &Origin::parse("https://H.EXAMPLE:443").unwrap()
        );
    }

    #[test]
    fn serde_round_trip() {
        let r = ServerRoot::parse("https://h.example/arcgis/rest/services").unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"https://h.example/arcgis\"");
        assert_eq!(serde_json::from_str::<ServerRoot>(&json).unwrap(), r);
        assert!(serde_json::from_str::<ServerRoot>("\"ftp://x\"").is_err());
    }
}
