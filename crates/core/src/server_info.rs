//! `{server}/rest/info`: which portal a server is federated with, and how it
//! wants tokens.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::classify::EndpointKind;
use crate::error::Result;
use crate::portal::Portal;
use crate::server::ServerRoot;
use crate::token_response::unparseable;
use crate::transport::HttpClient;

/// What `GET {server}/rest/info?f=json` says about authentication.
///
/// Facts, not decisions: whether a token may be sent to this server is for
/// the caller to decide (a portal token belongs only to servers
/// [federated with](ServerInfo::is_federated_with) its portal).
///
/// ```
/// use arcgis_auth_core::{Portal, ServerInfo};
///
/// let body = br#"{"currentVersion":11.1,"owningSystemUrl":"https://gis.example.com/portal",
///   "authInfo":{"isTokenBasedSecurity":true,
///               "tokenServicesUrl":"https://gis.example.com/portal/sharing/rest/generateToken",
///               "shortLivedTokenValidity":60}}"#;
/// let info = ServerInfo::from_body(body).unwrap();
/// let portal = Portal::parse("https://gis.example.com/portal/home").unwrap();
/// assert!(info.is_federated_with(&portal));
/// assert!(!info.is_federated_with(&Portal::arcgis_online()));
/// assert!(info.is_token_based_security());
/// assert_eq!(info.short_lived_token_validity_minutes(), Some(60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    current_version: Option<String>,
    owning_system_url: Option<Url>,
    is_token_based_security: bool,
    token_services_url: Option<Url>,
    short_lived_token_validity: Option<u32>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default, rename = "currentVersion")]
    current_version: Option<Value>,
    #[serde(default, rename = "owningSystemUrl")]
    owning_system_url: Option<String>,
    #[serde(default, rename = "authInfo")]
    auth_info: Option<WireAuth>,
}

#[derive(Deserialize)]
struct WireAuth {
    #[serde(default, rename = "isTokenBasedSecurity")]
    is_token_based_security: Option<bool>,
    #[serde(default, rename = "tokenServicesUrl")]
    token_services_url: Option<String>,
    #[serde(default, rename = "shortLivedTokenValidity")]
    short_lived_token_validity: Option<Value>,
}

impl ServerInfo {
    /// Reads a `rest/info` body. An ArcGIS error inside it, an HTML page or a
    /// body that is not a JSON object is an error of the matching kind;
    /// unusable optional fields (an empty or invalid `owningSystemUrl`) are
    /// read as absent, which means "not federated".
    pub fn from_body(body: &[u8]) -> Result<Self> {
        crate::classify::classify(
            EndpointKind::Service,
            true,
            http::StatusCode::OK,
            Some("application/json"),
            None,
            body,
        )?;
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| unparseable("server info", &e))?;
        let auth = wire.auth_info;
        let url = |s: Option<String>| {
            s.filter(|s| !s.trim().is_empty())
                .and_then(|s| Url::parse(s.trim()).ok())
        };
        Ok(ServerInfo {
            current_version: wire.current_version.and_then(|v| match v {
                Value::String(s) => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            owning_system_url: url(wire.owning_system_url),
            is_token_based_security: auth
                .as_ref()
                .and_then(|a| a.is_token_based_security)
                .unwrap_or(false),
            token_services_url: auth
                .as_ref()
                .and_then(|a| url(a.token_services_url.clone())),
            short_lived_token_validity: auth
                .and_then(|a| a.short_lived_token_validity)
                .and_then(|v| match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
                .and_then(|m| u32::try_from(m).ok())
                .filter(|m| *m > 0),
        })
    }

    /// The server's version (`currentVersion`), as text.
    pub fn current_version(&self) -> Option<&str> {
        self.current_version.as_deref()
    }

    /// The portal the server is federated with (`owningSystemUrl`), as given.
    pub fn owning_system_url(&self) -> Option<&Url> {
        self.owning_system_url.as_ref()
    }

    /// The portal the server is federated with, when `owningSystemUrl` names
    /// one by the rule of [`is_federated_with`](Self::is_federated_with):
    /// the portal's own URL (`https://host/<adaptor>`), with or without a
    /// trailing slash or `/sharing/rest`.
    ///
    /// A deeper URL (a home page, an item page, another endpoint under the
    /// sharing root) is not read as naming its portal, although
    /// [`Portal::parse`] would find the portal behind it when a user pastes
    /// it: a server that reports such an `owningSystemUrl` is treated as not
    /// federated, here and by `is_federated_with`. So the two always agree:
    /// this is `Some(portal)` exactly when `is_federated_with(&portal)`
    /// holds for some portal, and then for that one.
    ///
    /// The portal is as the server wrote it (scheme and path case included):
    /// to ask whether it is *your* portal, use `is_federated_with`, which
    /// tolerates `http` for `https` and path case, rather than `==`.
    ///
    /// ```
    /// use arcgis_auth_core::{Portal, ServerInfo};
    ///
    /// let owned_by = |owner: &str| {
    ///     ServerInfo::from_body(format!(r#"{{"owningSystemUrl":"{owner}"}}"#).as_bytes()).unwrap()
    /// };
    /// let portal = Portal::parse("https://gis.example.com/portal").unwrap();
    /// let info = owned_by("https://gis.example.com/portal/sharing/rest/");
    /// assert_eq!(info.owning_portal(), Some(portal.clone()));
    /// assert!(info.is_federated_with(&portal));
    /// // A page of the portal is not the portal.
    /// let info = owned_by("https://gis.example.com/portal/home/index.html");
    /// assert_eq!(info.owning_portal(), None);
    /// assert!(!info.is_federated_with(&portal));
    /// ```
    pub fn owning_portal(&self) -> Option<Portal> {
        let url = self.owning_system_url.as_ref()?;
        Portal::from_url(url)
            .ok()
            .filter(|portal| portal.is_owning_system_url(url))
    }

    /// Whether the server is federated with `portal`: its `owningSystemUrl`
    /// names it, compared as ArcGIS does (see [`Portal::is_owning_system_url`]:
    /// `http`/`https` on default ports, path case, a trailing slash and a
    /// trailing `/sharing/rest` are tolerated; a deeper path, a user name in
    /// the URL or a substring match never are). Agrees with
    /// [`owning_portal`](Self::owning_portal).
    pub fn is_federated_with(&self, portal: &Portal) -> bool {
        self.owning_system_url
            .as_ref()
            .is_some_and(|u| portal.is_owning_system_url(u))
    }

    /// Whether the server's services want tokens (`authInfo.isTokenBasedSecurity`).
    pub fn is_token_based_security(&self) -> bool {
        self.is_token_based_security
    }

    /// Where the server says tokens come from (`authInfo.tokenServicesUrl`).
    /// Check it before sending any credential there.
    pub fn token_services_url(&self) -> Option<&Url> {
        self.token_services_url.as_ref()
    }

    /// The `generateToken` endpoint that [`token_services_url`](Self::token_services_url)
    /// names, normalised by [`generate_token_endpoint`]: `None` when the
    /// server names none.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidUrl`](crate::ErrorKind::InvalidUrl) when the
    /// value is not a token service URL.
    pub fn generate_token_url(&self) -> Result<Option<Url>> {
        self.token_services_url
            .as_ref()
            .map(generate_token_endpoint)
            .transpose()
    }

    /// The `generateToken` endpoint of [`generate_token_url`](Self::generate_token_url)
    /// moved onto `server`'s origin (scheme, host and port), keeping its
    /// path: the address a client that dialled `server` should use.
    ///
    /// A site reached on its own port (`:6443`, bypassing the Web Adaptor)
    /// often reports a `tokenServicesUrl` on the public host name, or an
    /// internal one the client cannot reach; ArcGIS clients rewrite it onto
    /// the host they dialled. This also keeps a password from ever going to
    /// a host the server merely names.
    ///
    /// ```
    /// use arcgis_auth_core::{ServerInfo, ServerRoot};
    ///
    /// let body = br#"{"authInfo":{"isTokenBasedSecurity":true,
    ///   "tokenServicesUrl":"https://gis-internal.corp/arcgis/tokens/"}}"#;
    /// let info = ServerInfo::from_body(body).unwrap();
    /// let dialled = ServerRoot::parse("https://gis.example.com:6443/arcgis").unwrap();
    /// assert_eq!(
    ///     info.generate_token_url_on(&dialled).unwrap().unwrap().as_str(),
    ///     "https://gis.example.com:6443/arcgis/tokens/generateToken"
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// As [`generate_token_url`](Self::generate_token_url).
    pub fn generate_token_url_on(&self, server: &ServerRoot) -> Result<Option<Url>> {
        let Some(mut url) = self.generate_token_url()? else {
            return Ok(None);
        };
        let dialled = server.as_url();
        if url.scheme() != dialled.scheme()
            || url.host_str() != dialled.host_str()
            || url.port_or_known_default() != dialled.port_or_known_default()
        {
            let mut moved = dialled.clone();
            moved.set_path(url.path());
            url = moved;
        }
        Ok(Some(url))
    }

    /// The server's default `generateToken` lifetime in minutes
    /// (`authInfo.shortLivedTokenValidity`).
    pub fn short_lived_token_validity_minutes(&self) -> Option<u32> {
        self.short_lived_token_validity
    }
}

/// The `generateToken` endpoint behind an `authInfo.tokenServicesUrl`.
///
/// Servers report it in several shapes: `.../tokens/`, `.../tokens`,
/// `.../tokens/generateToken` or, for a federated server, the portal's
/// `.../sharing/rest/generateToken`. The first two gain `generateToken`; a
/// trailing slash after `generateToken` is dropped, as are a query and a
/// fragment. Only the path's last segments are compared, ignoring ASCII case.
///
/// ```
/// use arcgis_auth_core::generate_token_endpoint;
/// use url::Url;
///
/// let url = Url::parse("https://gis.example.com/arcgis/tokens/").unwrap();
/// assert_eq!(
///     generate_token_endpoint(&url).unwrap().as_str(),
///     "https://gis.example.com/arcgis/tokens/generateToken"
/// );
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidUrl`](crate::ErrorKind::InvalidUrl) for anything
/// else: another path, a scheme other than `http`/`https`, or a user name
/// or password in the URL.
pub fn generate_token_endpoint(url: &Url) -> Result<Url> {
    // Never repeat a password, even in a URL that should not carry one.
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let refuse = |why: &str| {
        crate::error::Error::new(
            crate::error::ErrorKind::InvalidUrl,
            format!(
                "the server's tokenServicesUrl {} {why}: ask its administrator to correct \
                 authInfo.tokenServicesUrl, or give the server's token URL yourself",
                crate::portal::redact_query(&shown)
            ),
        )
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refuse("is not an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("contains a user name or password"));
    }
    let mut segments: Vec<String> = url
        .path_segments()
        .map(|s| s.map(str::to_owned).collect())
        .unwrap_or_default();
    while segments.last().is_some_and(|s| s.is_empty()) {
        segments.pop();
    }
    match segments.last() {
        Some(last) if last.eq_ignore_ascii_case("generateToken") => {}
        Some(last) if last.eq_ignore_ascii_case("tokens") => {
            segments.push("generateToken".to_owned());
        }
        _ => return Err(refuse("does not end in /tokens or /generateToken")),
    }
    let mut endpoint = url.clone();
    endpoint.set_query(None);
    endpoint.set_fragment(None);
    // The segments are still percent-encoded: set the path as text.
    let path: String = segments.iter().map(|s| format!("/{s}")).collect();
    endpoint.set_path(&path);
    Ok(endpoint)
}

impl HttpClient {
    /// `GET {server}/rest/info?f=json`, without credentials.
    pub async fn server_info(&self, server: &ServerRoot) -> Result<ServerInfo> {
        let mut url = server.rest_info_url();
        url.query_pairs_mut().append_pair("f", "json");
        let request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| {
                crate::error::Error::new(
                    crate::error::ErrorKind::InvalidUrl,
                    format!("could not build a request to {} ({e})", server),
                )
            })?;
        let answer = self.send(request).await?;
        answer.check(EndpointKind::Service, self.clock().as_ref())?;
        ServerInfo::from_body(&answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn standalone_and_odd_fields() {
        let info = ServerInfo::from_body(
            br#"{"currentVersion":"10.9.1","owningSystemUrl":"","authInfo":{"isTokenBasedSecurity":false}}"#,
        )
        .unwrap();
        assert_eq!(info.current_version(), Some("10.9.1"));
        assert!(info.owning_portal().is_none());
        assert!(!info.is_federated_with(&Portal::arcgis_online()));
        assert!(!info.is_token_based_security());
        let info = ServerInfo::from_body(
            br#"{"owningSystemUrl":"not a url","authInfo":{"shortLivedTokenValidity":"-3"}}"#,
        )
        .unwrap();
        assert!(info.owning_system_url().is_none());
        assert_eq!(info.short_lived_token_validity_minutes(), None);
        // Lookalike hosts are not the portal.
        let info = ServerInfo::from_body(
            br#"{"owningSystemUrl":"https://gis.example.com.evil.example/portal"}"#,
        )
        .unwrap();
        let portal = Portal::parse("https://gis.example.com/portal").unwrap();
        assert!(!info.is_federated_with(&portal));
    }

    #[test]
    fn federation_is_judged_as_arcgis_judges_it() {
        let portal = Portal::parse("https://gis.example.com/portal").unwrap();
        let owned_by = |owner: &str| {
            ServerInfo::from_body(format!(r#"{{"owningSystemUrl":"{owner}"}}"#).as_bytes())
                .unwrap()
                .is_federated_with(&portal)
        };
        // Federation is often configured with http, another case or a trailing slash.
        assert!(owned_by("http://gis.example.com/portal"));
        assert!(owned_by("https://GIS.example.com/Portal/"));
        assert!(owned_by("https://gis.example.com:443/portal/sharing/rest"));
        assert!(!owned_by("https://gis.example.com/portal2"));
        assert!(!owned_by("https://gis.example.com:7443/portal"));
        assert!(!owned_by("https://gis.example.com"));
        assert!(!owned_by("https://evil.example/gis.example.com/portal"));
    }

    #[test]
    fn deeper_owning_system_urls_name_no_portal_for_either_rule() {
        let portal = Portal::parse("https://gis.example.com/portal").unwrap();
        let info = |owner: &str| {
            ServerInfo::from_body(format!(r#"{{"owningSystemUrl":"{owner}"}}"#).as_bytes()).unwrap()
        };
        // Each of these leads a user to the portal when pasted into Portal::parse,
        // but is not the portal's own URL: not federated, by either rule.
        for deeper in [
            "https://gis.example.com/portal/home",
            "https://gis.example.com/portal/home/",
            "https://gis.example.com/portal/home/item.html?id=abc123",
            "https://gis.example.com/portal/apps/mapviewer/index.html",
            "https://gis.example.com/portal/sharing",
            "https://gis.example.com/portal/sharing/rest/info",
            "https://gis.example.com/portal/sharing/rest/content/items/abc123",
            "https://gis.example.com/portal/sharing/rest/sharing/rest",
            "https://jdoe@gis.example.com/portal",
            "https://jdoe:pw@gis.example.com/portal/sharing/rest",
        ] {
            assert!(
                Portal::parse(deeper).is_ok() || deeper.contains('@'),
                "{deeper}"
            );
            let info = info(deeper);
            assert_eq!(info.owning_portal(), None, "{deeper}");
            assert!(!info.is_federated_with(&portal), "{deeper}");
            // The portal a user would find behind it is not named either.
            if let Ok(behind) = Portal::parse(deeper) {
                assert!(!info.is_federated_with(&behind), "{deeper}");
            }
        }
        // The portal's own URL, in the forms ArcGIS tolerates: both rules say yes,
        // and owning_portal is the portal itself.
        for exact in [
            "https://gis.example.com/portal",
            "https://gis.example.com/portal/",
            "https://gis.example.com/portal/sharing/rest",
            "https://gis.example.com/portal/sharing/rest/",
            "https://gis.example.com:443/portal",
            "http://GIS.example.com/Portal",
        ] {
            let info = info(exact);
            let owner = info.owning_portal().unwrap_or_else(|| panic!("{exact}"));
            assert!(info.is_federated_with(&owner), "{exact}");
            assert!(info.is_federated_with(&portal), "{exact}");
        }
        assert_eq!(
            info("https://gis.example.com/portal/sharing/rest/").owning_portal(),
            Some(portal)
        );
        // A portal at the host's root.
        let root = Portal::parse("https://gis.example.com").unwrap();
        for exact in [
            "https://gis.example.com",
            "https://gis.example.com/sharing/rest",
        ] {
            assert_eq!(info(exact).owning_portal(), Some(root.clone()), "{exact}");
            assert!(info(exact).is_federated_with(&root), "{exact}");
        }
        for deeper in [
            "https://gis.example.com/home",
            "https://gis.example.com/sharing",
        ] {
            assert_eq!(info(deeper).owning_portal(), None, "{deeper}");
            assert!(!info(deeper).is_federated_with(&root), "{deeper}");
        }
    }

    #[test]
    fn token_services_urls_are_normalised_to_generate_token() {
        let endpoint = |s: &str| generate_token_endpoint(&Url::parse(s).unwrap());
        for (given, expected) in [
            (
                "https://gis.example.com/arcgis/tokens/",
                "https://gis.example.com/arcgis/tokens/generateToken",
            ),
            (
                "https://gis.example.com/arcgis/tokens",
                "https://gis.example.com/arcgis/tokens/generateToken",
            ),
            (
                "https://gis.example.com/arcgis/tokens/generateToken",
                "https://gis.example.com/arcgis/tokens/generateToken",
            ),
            (
                "https://gis.example.com/arcgis/tokens/generateToken/",
                "https://gis.example.com/arcgis/tokens/generateToken",
            ),
            (
                "https://gis.example.com:6443/arcgis/Tokens//?f=json#x",
                "https://gis.example.com:6443/arcgis/Tokens/generateToken",
            ),
            (
                "https://gis.example.com/portal/sharing/rest/generateToken",
                "https://gis.example.com/portal/sharing/rest/generateToken",
            ),
            (
                "https://gis.example.com/tokens/",
                "https://gis.example.com/tokens/generateToken",
            ),
            (
                "https://gis.example.com/a%20b/tokens",
                "https://gis.example.com/a%20b/tokens/generateToken",
            ),
        ] {
            assert_eq!(endpoint(given).unwrap().as_str(), expected, "{given}");
        }
        for junk in [
            "https://gis.example.com/",
            "https://gis.example.com/arcgis",
            "https://gis.example.com/arcgis/rest/info",
            "https://gis.example.com/arcgis/tokens/other",
            "https://gis.example.com/arcgis/generateTokens",
            "ftp://gis.example.com/arcgis/tokens/",
            "file:///arcgis/tokens/",
            "data:text/plain,tokens",
            "https://jdoe:pw@gis.example.com/arcgis/tokens/",
        ] {
            let err = endpoint(junk).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{junk}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
        // Through ServerInfo: absent, normalised, refused.
        let info = |auth: &str| ServerInfo::from_body(auth.as_bytes()).unwrap();
        assert_eq!(info("{}").generate_token_url().unwrap(), None);
        assert_eq!(
            info(r#"{"authInfo":{"tokenServicesUrl":"https://h.example/arcgis/tokens/"}}"#)
                .generate_token_url()
                .unwrap()
                .map(String::from),
            Some("https://h.example/arcgis/tokens/generateToken".to_owned())
        );
        assert_eq!(
            info(r#"{"authInfo":{"tokenServicesUrl":"https://h.example/arcgis/rest"}}"#)
                .generate_token_url()
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidUrl
        );
    }

    #[test]
    fn errors_inside_info() {
        let e = ServerInfo::from_body(br#"{"error":{"code":499,"message":"Token Required"}}"#)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TokenRequired);
        // An HTML page is an outage or proxy page: a server failure, worth retrying.
        let e = ServerInfo::from_body(b"<html></html>").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
        let e = ServerInfo::from_body(br#"{"authInfo":"yes"}"#).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnparseableResponse);
    }
}
