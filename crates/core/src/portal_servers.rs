//! `{portal}/portals/self/servers`: the ArcGIS Server sites an Enterprise
//! portal says it is federated with.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::classify::EndpointKind;
use crate::error::Result;
use crate::portal::Portal;
use crate::server::ServerRoot;
use crate::token_response::unparseable;
use crate::transport::HttpClient;

/// The servers an ArcGIS Enterprise portal lists as federated with it
/// (`GET {sharing root}/portals/self/servers?f=json`, with a token): each
/// site's externally visible `url` and its `adminUrl` (the machine's own
/// address, often on `:6443`).
///
/// The portal's word is a proof of federation that does not need the
/// server: behind a web tier that demands a client certificate on every
/// handshake, a server's `rest/info` cannot be read without presenting the
/// certificate, and the certificate must not go to a server before it is
/// known to belong to the portal.
///
/// Entries whose URLs do not make a server root are skipped; a body that is
/// not such a list is an error.
///
/// ```
/// use arcgis_auth_core::{FederatedServers, ServerRoot};
///
/// let body = br#"{"servers":[{"id":"EzbP0KZKrzn5guAh","name":"gis.example.com:6443",
///   "url":"https://gis.example.com/server","adminUrl":"https://gis.example.com:6443/arcgis",
///   "isHosted":true,"serverType":"ArcGIS","serverRole":"FEDERATED_SERVER"}]}"#;
/// let servers = FederatedServers::from_body(body).unwrap();
/// assert!(servers.lists(&ServerRoot::parse("https://gis.example.com/server/rest/services").unwrap()));
/// assert!(servers.lists(&ServerRoot::parse("https://GIS.example.com:6443/arcgis").unwrap()));
/// assert!(!servers.lists(&ServerRoot::parse("https://gis.example.com/other").unwrap()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FederatedServers {
    roots: Vec<ServerRoot>,
}

#[derive(Deserialize)]
struct Wire {
    servers: Vec<Value>,
}

impl FederatedServers {
    /// Reads a `portals/self/servers` body. An ArcGIS error inside it, an
    /// HTML page, or a body without a `servers` array is an error of the
    /// matching kind.
    pub fn from_body(body: &[u8]) -> Result<Self> {
        crate::classify::classify(
            EndpointKind::Service,
            true,
            http::StatusCode::OK,
            Some("application/json"),
            None,
            body,
        )?;
        let wire: Wire = serde_json::from_slice(body)
            .map_err(|e| unparseable("the portal's server list", &e))?;
        let mut roots = Vec::new();
        for server in &wire.servers {
            for field in ["url", "adminUrl", "adminURL"] {
                let root = server
                    .get(field)
                    .and_then(Value::as_str)
                    .and_then(|s| Url::parse(s.trim()).ok())
                    .and_then(|u| ServerRoot::from_url(&u).ok());
                if let Some(root) = root.filter(|r| !roots.contains(r)) {
                    roots.push(root);
                }
            }
        }
        Ok(FederatedServers { roots })
    }

    /// Whether the portal lists `server` (its `url` or its `adminUrl`),
    /// compared as server roots are: scheme, host (any case), port and path.
    pub fn lists(&self, server: &ServerRoot) -> bool {
        self.roots.contains(server)
    }

    /// Every server root the portal lists.
    pub fn roots(&self) -> &[ServerRoot] {
        &self.roots
    }
}

impl HttpClient {
    /// `GET {portal}/portals/self/servers?f=json` with `token` (in
    /// `X-Esri-Authorization`, never the URL) and, for a token bound to a
    /// referer (`generateToken`, web-tier sign-in), `Referer: referer`: the
    /// servers the portal says are federated with it. The portal's web-tier
    /// credential goes with the request as with every request to its origin.
    ///
    /// # Errors
    ///
    /// As [`get_json`](Self::get_json), and
    /// [`ErrorKind::UnparseableResponse`](crate::ErrorKind::UnparseableResponse)
    /// for an answer that is not a server list (ArcGIS Online has none).
    pub async fn federated_servers(
        &self,
        portal: &Portal,
        token: &SecretString,
        referer: Option<&str>,
    ) -> Result<FederatedServers> {
        let body = self
            .get_json_from(
                &portal.endpoint("portals/self/servers"),
                Some(token),
                referer,
            )
            .await?;
        FederatedServers::from_body(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn bodies_that_are_not_server_lists_are_errors_of_their_kind() {
        let kind = |body: &[u8]| FederatedServers::from_body(body).unwrap_err().kind();
        // An HTML page is an outage or proxy page, as everywhere else.
        assert_eq!(
            kind(b"<html><body>Sign in</body></html>"),
            ErrorKind::Server
        );
        assert_eq!(
            kind(br#"{"servers":"none"}"#),
            ErrorKind::UnparseableResponse
        );
        assert_eq!(
            kind(br#"{"servers":[{"url":"https://a.example/s"}"#),
            ErrorKind::UnparseableResponse
        );
        assert_eq!(kind(b"{}"), ErrorKind::UnparseableResponse);
        assert_eq!(
            kind(br#"{"error":{"code":498,"message":"Invalid token."}}"#),
            ErrorKind::InvalidToken
        );
    }

    #[test]
    fn unusable_entries_are_skipped_and_the_rest_kept() {
        let body = br#"{"servers":[
            {"url":42},
            {"url":"not a url","adminUrl":"ftp://x.example/arcgis"},
            {"url":"https://user:pw@bad.example/arcgis"},
            {"name":"no urls"},
            "a string",
            {"url":"https://gis.example.com/server/","adminURL":"https://gis.example.com:6443/arcgis/"}
        ]}"#;
        let servers = FederatedServers::from_body(body).unwrap();
        let shown: Vec<&str> = servers
            .roots()
            .iter()
            .map(|r| r.as_url().as_str())
            .collect();
        assert_eq!(
            shown,
            [
                "https://gis.example.com/server",
                "https://gis.example.com:6443/arcgis"
            ]
        );
    }

    #[test]
    fn a_look_alike_host_or_path_is_not_listed() {
        let body = br#"{"servers":[{"url":"https://gis.example.com/server"}]}"#;
        let servers = FederatedServers::from_body(body).unwrap();
        for other in [
            "https://gis.example.com.evil.example/server",
            "https://gis.example.com/server2",
            "http://gis.example.com/server",
            "https://gis.example.com:8443/server",
        ] {
            assert!(
                !servers.lists(&ServerRoot::parse(other).unwrap()),
                "{other}"
            );
        }
    }
}
