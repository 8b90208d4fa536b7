//! Portals: where users sign in and tokens come from.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::error::{Error, ErrorKind, Result};
use crate::origin::Origin;

/// An ArcGIS portal, addressed by its sharing root
/// (`https://www.arcgis.com/sharing/rest`,
/// `https://gis.example.com/portal/sharing/rest`,
/// `https://myorg.maps.arcgis.com/sharing/rest`).
///
/// [`Portal::parse`] accepts whatever URL a user is likely to paste: the
/// sharing root with or without a trailing slash, any URL under it, the
/// portal home page, an item page, an app URL, or a bare host.
///
/// ```
/// use arcgis_auth_core::Portal;
///
/// let online = Portal::arcgis_online();
/// assert_eq!(online.sharing_root().as_str(), "https://www.arcgis.com/sharing/rest");
/// assert_eq!(online.token_url().as_str(), "https://www.arcgis.com/sharing/rest/oauth2/token");
///
/// let enterprise = Portal::parse("https://GIS.example.com/portal/home/item.html?id=abc").unwrap();
/// assert_eq!(enterprise.sharing_root().as_str(), "https://gis.example.com/portal/sharing/rest");
///
/// // A server URL is not a portal, and the error says so.
/// let err = Portal::parse("https://gis.example.com/server/rest/services").unwrap_err();
/// assert!(err.to_string().contains("ArcGIS Server"));
/// ```
#[derive(Clone)]
pub struct Portal {
    /// Always ends in `/sharing/rest`, without a trailing slash, query or fragment.
    root: Url,
    /// `root`'s origin, computed once (routing asks for it on every request).
    origin: Origin,
}

/// Path segments that start the portal's own pages (the part after the web adaptor).
const PORTAL_PAGE_SEGMENTS: &[&str] = &["home", "apps", "sharing"];

impl Portal {
    /// ArcGIS Online: `https://www.arcgis.com/sharing/rest`.
    pub fn arcgis_online() -> Self {
        Portal::parse("https://www.arcgis.com/sharing/rest").unwrap_or_else(|_| unreachable!())
    }

    /// Finds the portal behind any URL a user might paste.
    ///
    /// Query strings and fragments are dropped, the host is lower-cased and
    /// default ports removed. URLs with a user name or password, non-HTTP
    /// schemes, ArcGIS Server URLs (`/rest/services`, `/rest/admin`) and paths
    /// that do not lead to a sharing root are refused with
    /// [`ErrorKind::InvalidUrl`] and a message saying what would work.
    pub fn parse(input: &str) -> Result<Self> {
        let trimmed = input.trim();
        let url = match Url::parse(trimmed) {
            Ok(u) => u,
            Err(url::ParseError::RelativeUrlWithoutBase) => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!(
                        "`{trimmed}` is not a portal URL: give a full URL such as \
                         https://www.arcgis.com or https://gis.example.com/portal"
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!("`{trimmed}` is not a valid URL"),
                )
                .with_source(e));
            }
        };
        Portal::from_url(&url)
    }

    /// Finds the portal behind `url`; see [`Portal::parse`].
    pub fn from_url(url: &Url) -> Result<Self> {
        let origin = Origin::of(url)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                "portal URLs must not contain a user name or password: remove the `user@` part",
            ));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|seg| !seg.is_empty()).collect())
            .unwrap_or_default();
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();

        if let Some(i) = lower.iter().position(|s| s == "rest") {
            let before_is_sharing = i > 0 && lower[i - 1] == "sharing";
            if !before_is_sharing {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!(
                        "{} looks like an ArcGIS Server URL, not a portal: give the portal \
                         (for example https://gis.example.com/portal), or use ServerRoot for servers",
                        redact_query(url)
                    ),
                ));
            }
        }

        let adaptor: &[&str] = match lower
            .iter()
            .position(|s| PORTAL_PAGE_SEGMENTS.contains(&s.as_str()))
        {
            Some(i) => &segments[..i],
            None if segments.len() <= 1 => &segments[..],
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    format!(
                        "{} does not lead to a portal: give the portal's home page or its \
                         sharing root (…/sharing/rest)",
                        redact_query(url)
                    ),
                ));
            }
        };

        let mut root = url.clone();
        root.set_query(None);
        root.set_fragment(None);
        // The segments are already percent-encoded: set the path as text so
        // they are not encoded twice (`my%20portal` must stay `my%20portal`).
        let mut path = String::new();
        for seg in adaptor {
            path.push('/');
            path.push_str(seg);
        }
        path.push_str("/sharing/rest");
        root.set_path(&path);
        Ok(Portal { root, origin })
    }

    /// The sharing root, e.g. `https://www.arcgis.com/sharing/rest` (no trailing slash).
    pub fn sharing_root(&self) -> &Url {
        &self.root
    }

    /// The portal's origin: the only origin that receives the portal token by default.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether this is ArcGIS Online or one of its organisation URLs (`*.arcgis.com`).
    pub fn is_arcgis_online(&self) -> bool {
        self.origin().is_arcgis_online()
    }

    /// Whether `owning_system_url` (the `owningSystemUrl` of a server's
    /// `/rest/info`) names this portal, as ArcGIS itself compares them: the
    /// same host; the same port, where `http` on 80 and `https` on 443 count as
    /// the same; and the same web-adaptor path, case-insensitive, with or
    /// without a trailing slash or `/sharing/rest`. Hosts are compared as
    /// parsed values, never as text, so look-alikes never match. A deeper
    /// path (`…/portal/home`, an item page) or a user name in the URL never
    /// names a portal, even though [`Portal::parse`] finds the portal behind
    /// such a URL when a user pastes it.
    ///
    /// ```
    /// use arcgis_auth_core::Portal;
    /// use url::Url;
    ///
    /// let portal = Portal::parse("https://gis.example.com/portal").unwrap();
    /// let named = |s: &str| portal.is_owning_system_url(&Url::parse(s).unwrap());
    /// assert!(named("https://gis.example.com/portal"));
    /// assert!(named("http://GIS.example.com/Portal/"));
    /// assert!(named("https://gis.example.com/portal/sharing/rest"));
    /// assert!(!named("https://gis.example.com/portal2"));
    /// assert!(!named("https://gis.example.com:7443/portal"));
    /// assert!(!named("https://gis.example.com.evil.example/portal"));
    /// assert!(!named("https://gis.example.com/portal/home"));
    /// assert!(!named("https://jdoe@gis.example.com/portal"));
    /// ```
    pub fn is_owning_system_url(&self, owning_system_url: &Url) -> bool {
        if !owning_system_url.username().is_empty() || owning_system_url.password().is_some() {
            return false;
        }
        let Ok(theirs) = Origin::of(owning_system_url) else {
            return false;
        };
        let mine = self.origin();
        if theirs.host() != mine.host() {
            return false;
        }
        let default_port =
            |o: &Origin| matches!((o.scheme(), o.port()), ("http", 80) | ("https", 443));
        if theirs.port() != mine.port() && !(default_port(&theirs) && default_port(mine)) {
            return false;
        }
        let segments = |u: &Url| -> Vec<String> {
            let mut path: Vec<String> = u
                .path_segments()
                .map(|s| {
                    s.filter(|seg| !seg.is_empty())
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            // The sharing root itself (always ours; some servers report it too).
            if path.len() >= 2 && path[path.len() - 2..] == ["sharing", "rest"] {
                path.truncate(path.len() - 2);
            }
            path
        };
        segments(owning_system_url) == segments(&self.root)
    }

    /// `{root}/{path}` for a path relative to the sharing root.
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// `oauth2/authorize`: where the browser goes to sign in.
    pub fn authorize_url(&self) -> Url {
        self.endpoint("oauth2/authorize")
    }

    /// `oauth2/token`: every OAuth grant.
    pub fn token_url(&self) -> Url {
        self.endpoint("oauth2/token")
    }

    /// `oauth2/revokeToken`.
    pub fn revoke_token_url(&self) -> Url {
        self.endpoint("oauth2/revokeToken")
    }

    /// `oauth2/approval`: the out-of-band page whose title carries the code.
    pub fn approval_url(&self) -> Url {
        self.endpoint("oauth2/approval")
    }

    /// `generateToken`: username/password tokens and federated-server tokens.
    pub fn generate_token_url(&self) -> Url {
        self.endpoint("generateToken")
    }

    /// `info`: public portal information (no token needed).
    pub fn info_url(&self) -> Url {
        self.endpoint("info")
    }

    /// `portals/self`: the signed-in user's organisation.
    pub fn portals_self_url(&self) -> Url {
        self.endpoint("portals/self")
    }

    /// `community/self`: the signed-in user.
    pub fn community_self_url(&self) -> Url {
        self.endpoint("community/self")
    }
}

/// `url` without its query and fragment, for messages and logs (a query may
/// hold a token, a fragment an implicit-grant token).
///
/// ```
/// let url = url::Url::parse("https://gis.example.com/arcgis/rest/services?token=t0k#frag").unwrap();
/// assert_eq!(arcgis_auth_core::__private::redact_query(&url), "https://gis.example.com/arcgis/rest/services");
/// ```
pub fn redact_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

impl Default for Portal {
    fn default() -> Self {
        Portal::arcgis_online()
    }
}

impl std::str::FromStr for Portal {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Portal::parse(s)
    }
}

// Equality and hashing follow the root URL alone: the origin is derived from it.
impl PartialEq for Portal {
    fn eq(&self, other: &Self) -> bool {
        self.root == other.root
    }
}

impl Eq for Portal {}

impl std::hash::Hash for Portal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.root.hash(state);
    }
}

impl fmt::Display for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_str())
    }
}

impl fmt::Debug for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Portal({})", self.root)
    }
}

impl Serialize for Portal {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.root.as_str())
    }
}

impl<'de> Deserialize<'de> for Portal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Portal::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(input: &str) -> String {
        Portal::parse(input).unwrap().sharing_root().to_string()
    }

    #[test]
    fn accepts_what_users_paste() {
        let online = "https://www.arcgis.com/sharing/rest";
        assert_eq!(root("https://www.arcgis.com"), online);
        assert_eq!(root("https://www.arcgis.com/"), online);
        assert_eq!(root("https://www.arcgis.com/sharing/rest/"), online);
        assert_eq!(
            root("https://www.arcgis.com/sharing/rest/oauth2/token?x=1#y"),
            online
        );
        assert_eq!(root("https://www.arcgis.com/sharing"), online);
        assert_eq!(
            root(" https://www.arcgis.com/home/item.html?id=abc "),
            online
        );
        assert_eq!(
            root("https://www.arcgis.com/apps/mapviewer/index.html"),
            online
        );
        assert_eq!(
            root("https://MyOrg.maps.arcgis.com/home/index.html"),
            "https://myorg.maps.arcgis.com/sharing/rest"
        );
        assert_eq!(
            root("https://gis.example.com:7443/arcgis/home/"),
            "https://gis.example.com:7443/arcgis/sharing/rest"
        );
        assert_eq!(
            root("https://gis.example.com:443/portal"),
            "https://gis.example.com/portal/sharing/rest"
        );
        assert_eq!(
            root("https://gis.example.com/Portal/sharing/rest"),
            "https://gis.example.com/Portal/sharing/rest"
        );
        assert_eq!(
            root("http://127.0.0.1:9000/sharing/rest"),
            "http://127.0.0.1:9000/sharing/rest"
        );
    }

    #[test]
    fn refuses_what_is_not_a_portal() {
        for bad in [
            "www.arcgis.com",
            "ftp://www.arcgis.com/",
            "https://user:pw@www.arcgis.com/",
            "https://gis.example.com/server/rest/services/Roads/MapServer",
            "https://gis.example.com/a/b/c",
            "mailto:me@example.com",
            "",
        ] {
            let err = Portal::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{bad}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    fn endpoints() {
        let p = Portal::parse("https://gis.example.com/portal").unwrap();
        let base = "https://gis.example.com/portal/sharing/rest";
        assert_eq!(
            p.authorize_url().as_str(),
            format!("{base}/oauth2/authorize")
        );
        assert_eq!(p.token_url().as_str(), format!("{base}/oauth2/token"));
        assert_eq!(
            p.revoke_token_url().as_str(),
            format!("{base}/oauth2/revokeToken")
        );
        assert_eq!(p.approval_url().as_str(), format!("{base}/oauth2/approval"));
        assert_eq!(
            p.generate_token_url().as_str(),
            format!("{base}/generateToken")
        );
        assert_eq!(p.info_url().as_str(), format!("{base}/info"));
        assert_eq!(
            p.portals_self_url().as_str(),
            format!("{base}/portals/self")
        );
        assert_eq!(
            p.community_self_url().as_str(),
            format!("{base}/community/self")
        );
    }

    #[test]
    fn serde_round_trip() {
        let p = Portal::parse("https://gis.example.com/portal").unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"https://gis.example.com/portal/sharing/rest\"");
        assert_eq!(serde_json::from_str::<Portal>(&json).unwrap(), p);
        assert!(serde_json::from_str::<Portal>("\"nope\"").is_err());
    }

    #[test]
    fn organisation_ipv6_and_encoded_paths() {
        assert_eq!(
            root("https://myorg.maps.arcgis.com/sharing/rest/content/items/abc?f=json&token=t"),
            "https://myorg.maps.arcgis.com/sharing/rest"
        );
        assert!(
            Portal::parse("https://myorg.maps.arcgis.com")
                .unwrap()
                .is_arcgis_online()
        );
        assert!(
            !Portal::parse("https://gis.example.com/portal")
                .unwrap()
                .is_arcgis_online()
        );
        assert_eq!(
            root("https://[2001:DB8::1]:7443/portal/home/"),
            "https://[2001:db8::1]:7443/portal/sharing/rest"
        );
        assert_eq!(
            root("http://[::1]:8080/sharing/rest"),
            "http://[::1]:8080/sharing/rest"
        );
        // Already-encoded segments are kept, not encoded twice.
        assert_eq!(
            root("https://gis.example.com/my%20portal/home"),
            "https://gis.example.com/my%20portal/sharing/rest"
        );
        assert_eq!(
            root("https://gis.example.com/portäl/home"),
            "https://gis.example.com/port%C3%A4l/sharing/rest"
        );
        assert_eq!(
            root("https://gis.example.com/portal/SHARING/REST/"),
            "https://gis.example.com/portal/sharing/rest"
        );
        assert_eq!(
            root("https://www.arcgis.com//sharing//rest//"),
            "https://www.arcgis.com/sharing/rest"
        );
        // The portal's own origin, exactly.
        let p = Portal::parse("https://gis.example.com:7443/arcgis").unwrap();
        assert_eq!(
            p.origin(),
            &Origin::parse("https://gis.example.com:7443/").unwrap()
        );
        assert_ne!(
            p.origin(),
            &Origin::parse("https://gis.example.com/").unwrap()
        );
    }

    #[test]
    fn odd_inputs_never_panic() {
        for odd in [
            "https://",
            "https:///sharing/rest",
            "http://[::1",
            "https://gis.example.com/%",
            "https://gis.example.com/portal/home/../../..",
            "https://gis.example.com/?#",
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "https://gis.example.com/rest",
            "https://gis.example.com/sharing/rest/services",
            "\u{0}",
            "   ",
        ] {
            if let Err(e) = Portal::parse(odd) {
                assert_eq!(e.kind(), ErrorKind::InvalidUrl, "{odd}");
            }
        }
    }
}
