//! Portals: where users sign in and tokens come from.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
#[cfg(feature = "url")]
use url::Url;

use crate::error::{Error, ErrorKind, Result};
#[cfg(feature = "url")]
use crate::origin::Origin;
use crate::plain_url::{PlainUrl, PlainUrlError};

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
    #[cfg(feature = "url")]
    root: Url,
    /// `root`'s origin, computed once (routing asks for it on every request).
    #[cfg(feature = "url")]
    origin: Origin,
    /// The sharing root's text, read by [`PlainUrl`] (builds without `url`).
    #[cfg(not(feature = "url"))]
    root: Box<str>,
}

/// Path segments that start the portal's own pages (the part after the web adaptor).
const PORTAL_PAGE_SEGMENTS: &[&str] = &["home", "apps", "sharing"];

const NO_USER_INFO: &str =
    "portal URLs must not contain a user name or password: remove the `user@` part";

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
    ///
    /// Without the `url` feature (the contract alone, as a session store
    /// compiles it) the URL is read strictly: what the full reader would
    /// rewrite beyond case, default port, query and fragment (spaces or
    /// characters outside ASCII, `..` segments, IPv4 hosts in hex) is refused
    /// instead. Every sharing root this type writes is read back the same way
    /// by both.
    pub fn parse(input: &str) -> Result<Self> {
        let trimmed = input.trim();
        #[cfg(feature = "url")]
        {
            let url = match Url::parse(trimmed) {
                Ok(u) => u,
                Err(url::ParseError::RelativeUrlWithoutBase) => {
                    return Err(not_a_full_url(trimmed));
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
        #[cfg(not(feature = "url"))]
        {
            Ok(Portal {
                root: plain_sharing_root(trimmed)?.into_boxed_str(),
            })
        }
    }

    /// The sharing root as text, e.g. `https://www.arcgis.com/sharing/rest`
    /// (no trailing slash): what [`Display`](fmt::Display) and `Serialize` write.
    pub fn as_str(&self) -> &str {
        #[cfg(feature = "url")]
        {
            self.root.as_str()
        }
        #[cfg(not(feature = "url"))]
        {
            &self.root
        }
    }

    /// Finds the portal behind `url`; see [`Portal::parse`].
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn from_url(url: &Url) -> Result<Self> {
        let origin = Origin::of(url)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::new(ErrorKind::InvalidUrl, NO_USER_INFO));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|seg| !seg.is_empty()).collect())
            .unwrap_or_default();
        let path = sharing_root_path(&segments, || redact_query(url))?;
        let mut root = url.clone();
        root.set_query(None);
        root.set_fragment(None);
        // The segments are already percent-encoded: set the path as text so
        // they are not encoded twice (`my%20portal` must stay `my%20portal`).
        root.set_path(&path);
        Ok(Portal { root, origin })
    }
    /// The sharing root, e.g. `https://www.arcgis.com/sharing/rest` (no trailing slash).
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn sharing_root(&self) -> &Url {
        &self.root
    }

    /// The portal's origin: the only origin that receives the portal token by default.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Whether this is ArcGIS Online or one of its organisation URLs (`*.arcgis.com`).
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
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
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
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
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.root.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// `oauth2/authorize`: where the browser goes to sign in.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn authorize_url(&self) -> Url {
        self.endpoint("oauth2/authorize")
    }

    /// `oauth2/token`: every OAuth grant.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn token_url(&self) -> Url {
        self.endpoint("oauth2/token")
    }

    /// `oauth2/revokeToken`.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn revoke_token_url(&self) -> Url {
        self.endpoint("oauth2/revokeToken")
    }

    /// `oauth2/approval`: the out-of-band page whose title carries the code.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn approval_url(&self) -> Url {
        self.endpoint("oauth2/approval")
    }

    /// `generateToken`: username/password tokens and federated-server tokens.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn generate_token_url(&self) -> Url {
        self.endpoint("generateToken")
    }

    /// `info`: public portal information (no token needed).
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn info_url(&self) -> Url {
        self.endpoint("info")
    }

    /// `portals/self`: the signed-in user's organisation.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn portals_self_url(&self) -> Url {
        self.endpoint("portals/self")
    }

    /// `community/self`: the signed-in user.
    #[cfg(feature = "url")]
    #[cfg_attr(docsrs, doc(cfg(feature = "url")))]
    pub fn community_self_url(&self) -> Url {
        self.endpoint("community/self")
    }
}

/// The sharing root's path (`/{web adaptor}/sharing/rest`) behind a URL's
/// non-empty path `segments`; `shown` names the URL in messages.
fn sharing_root_path(segments: &[&str], shown: impl Fn() -> String) -> Result<String> {
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    if let Some(i) = lower.iter().position(|s| s == "rest") {
        let before_is_sharing = i > 0 && lower[i - 1] == "sharing";
        if !before_is_sharing {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "{} looks like an ArcGIS Server URL, not a portal: give the portal \
                     (for example https://gis.example.com/portal), or use ServerRoot for servers",
                    shown()
                ),
            ));
        }
    }
    let adaptor: &[&str] = match lower
        .iter()
        .position(|s| PORTAL_PAGE_SEGMENTS.contains(&s.as_str()))
    {
        Some(i) => &segments[..i],
        None if segments.len() <= 1 => segments,
        None => {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!(
                    "{} does not lead to a portal: give the portal's home page or its \
                     sharing root (…/sharing/rest)",
                    shown()
                ),
            ));
        }
    };
    let mut path = String::new();
    for seg in adaptor {
        path.push('/');
        path.push_str(seg);
    }
    path.push_str("/sharing/rest");
    Ok(path)
}

fn not_a_full_url(trimmed: &str) -> Error {
    Error::new(
        ErrorKind::InvalidUrl,
        format!(
            "`{trimmed}` is not a portal URL: give a full URL such as \
             https://www.arcgis.com or https://gis.example.com/portal"
        ),
    )
}

/// The sharing root behind `trimmed`, read by [`PlainUrl`]: how portals are
/// parsed without the `url` feature (and, in tests, checked against it).
#[cfg_attr(feature = "url", allow(dead_code))]
fn plain_sharing_root(trimmed: &str) -> Result<String> {
    let url = PlainUrl::parse(trimmed).map_err(|e| match e {
        PlainUrlError::NotAbsolute => not_a_full_url(trimmed),
        PlainUrlError::UserInfo => Error::new(ErrorKind::InvalidUrl, NO_USER_INFO),
        PlainUrlError::Invalid(why) => Error::new(
            ErrorKind::InvalidUrl,
            format!("not a valid portal URL: {why}"),
        ),
    })?;
    let origin = url.origin_text();
    let segments: Vec<&str> = url.path.split('/').filter(|s| !s.is_empty()).collect();
    let path = sharing_root_path(&segments, || format!("{origin}{}", url.path))?;
    Ok(format!("{origin}{path}"))
}

/// `url` without its user name, password, query and fragment, for messages
/// and logs (a query may hold a token, a fragment an implicit-grant token,
/// the part before `@` a password).
///
/// ```
/// let url = url::Url::parse("https://jdoe:pa55@gis.example.com/arcgis/rest/services?token=t0k#frag").unwrap();
/// assert_eq!(arcgis_auth_core::__private::redact_query(&url), "https://gis.example.com/arcgis/rest/services");
/// ```
#[cfg(feature = "url")]
pub fn redact_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    // Fails only for URLs that cannot have a user name (`mailto:`, ...),
    // which then have none to hide.
    let _ = u.set_username("");
    let _ = u.set_password(None);
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

// Equality and hashing follow the sharing root's text alone: the origin is derived from it.
impl PartialEq for Portal {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Portal {}

impl std::hash::Hash for Portal {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Display for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Portal({})", self.as_str())
    }
}

impl Serialize for Portal {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
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
        Portal::parse(input).unwrap().as_str().to_owned()
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

    /// What no reader may take for a portal.
    const NOT_PORTALS: &[&str] = &[
        "www.arcgis.com",
        "ftp://www.arcgis.com/",
        "https://user:pw@www.arcgis.com/",
        "https://gis.example.com/server/rest/services/Roads/MapServer",
        "https://gis.example.com/a/b/c",
        "mailto:me@example.com",
        "",
    ];

    #[test]
    fn refuses_what_is_not_a_portal() {
        for bad in NOT_PORTALS {
            let err = Portal::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{bad}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
    }

    #[test]
    #[cfg(feature = "url")]
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
    #[cfg(feature = "url")]
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

    /// Inputs of every shape the strict reader meets: what it accepts must
    /// give the very sharing root the `url` crate gives.
    const PASTED: &[&str] = &[
        "https://www.arcgis.com",
        "https://www.arcgis.com/",
        "https://www.arcgis.com/sharing/rest/",
        "https://www.arcgis.com/sharing/rest/oauth2/token?x=1#y",
        "https://www.arcgis.com/sharing",
        "https://www.arcgis.com/home/item.html?id=abc",
        "https://www.arcgis.com/apps/mapviewer/index.html",
        "https://MyOrg.maps.arcgis.com/home/index.html",
        "HTTPS://GIS.example.com:7443/arcgis/home/",
        "https://gis.example.com:443/portal",
        "https://gis.example.com:0443/portal",
        "https://gis.example.com:/portal",
        "http://gis.example.com:80/portal",
        "https://gis.example.com/Portal/sharing/rest",
        "http://127.0.0.1:9000/sharing/rest",
        "https://[2001:DB8::1]:7443/portal/home/",
        "http://[::1]:8080/sharing/rest",
        "http://[::ffff:1.2.3.4]/sharing/rest",
        "https://[2001:db8:0:0:1:0:0:1]/portal",
        "https://gis.example.com/my%20portal/home",
        "https://gis.example.com/portal/SHARING/REST/",
        "https://www.arcgis.com//sharing//rest//",
        "https://xn--bcher-kva.example/portal",
        "https://gis.example.com./portal",
        "https://under_score.example/portal",
        "https://gis.example.com/portal;v=1/home",
        "https://gis.example.com/~portal/home",
        "https://gis.example.com/port%C3%A4l/home",
    ];

    #[test]
    fn the_strict_reader_reads_what_users_paste() {
        assert_eq!(
            plain_sharing_root("https://MyOrg.maps.arcgis.com/home/index.html?x#y").unwrap(),
            "https://myorg.maps.arcgis.com/sharing/rest"
        );
        assert_eq!(
            plain_sharing_root("https://[2001:DB8::1]:7443/portal/home/").unwrap(),
            "https://[2001:db8::1]:7443/portal/sharing/rest"
        );
        for input in PASTED {
            assert!(plain_sharing_root(input).is_ok(), "{input}");
        }
        let strict_only = [
            "https://gis.example.com/portäl/home",
            "https://gis.example.com/my portal?token=s3cr3t",
        ];
        for bad in NOT_PORTALS.iter().chain(&strict_only) {
            let err = plain_sharing_root(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{bad}");
            assert!(!err.to_string().contains("pw@"), "{err}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    #[cfg(feature = "url")]
    fn the_strict_reader_agrees_with_the_url_crate() {
        for input in PASTED {
            assert_eq!(plain_sharing_root(input).unwrap(), root(input), "{input}");
        }
    }

    #[cfg(feature = "url")]
    proptest::proptest! {
        #[test]
        fn where_the_strict_reader_accepts_it_agrees(
            input in "(https?|HTTPS|Http)://([a-zA-Z0-9_-]{1,6}\\.){0,3}[a-zA-Z0-9-]{1,6}\\.?(:[0-9]{0,6})?(/[a-zA-Z0-9%._~;:@!$&'()*+,=-]{0,8}){0,5}(/(home|sharing|rest|apps|Home|SHARING)){0,3}[?#]?[a-z=&/]{0,6}",
        ) {
            if let Ok(plain) = plain_sharing_root(&input) {
                let full = Portal::parse(&input).map(|p| p.as_str().to_owned());
                proptest::prop_assert_eq!(Ok(plain), full.map_err(|e| e.to_string()), "{}", input);
            }
        }

        #[test]
        fn what_portals_write_the_strict_reader_reads_back(
            host in "[a-z0-9-]{1,8}(\\.[a-z0-9-]{1,8}){0,2}",
            port in proptest::option::of(1u16..),
            adaptor in proptest::collection::vec("[a-zA-Z0-9%._~-]{1,8}", 0..2),
        ) {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let input = format!("https://{host}{port}/{}/home", adaptor.join("/"));
            if let Ok(portal) = Portal::parse(&input) {
                proptest::prop_assert_eq!(plain_sharing_root(portal.as_str()).unwrap(), portal.as_str());
            }
        }
    }
}
