//! resource-proxy's `proxy.config` (XML) and `proxy.json`: read as an equivalent `gateway.toml`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::{GatewayError, Problem, ProblemKind};
use crate::origins::OriginPattern;

/// A resource-proxy configuration turned into a `gateway.toml`.
#[derive(Clone)]
pub struct Imported {
    /// The `gateway.toml` text; secrets are named by environment variable, never written.
    pub toml: String,
    /// Things the conversion changed or could not carry over, for the operator.
    pub warnings: Vec<String>,
    /// The secrets the file held inline, by the variable name `toml` gives them.
    pub(crate) secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imported")
            .field("toml", &self.toml)
            .field("warnings", &self.warnings)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether `text` looks like a resource-proxy file (XML or JSON) rather than TOML.
pub(crate) fn is_resource_proxy(text: &str) -> bool {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with('<') || t.starts_with('{')
}

type Attrs = BTreeMap<String, String>;

/// Converts a `proxy.config` (XML) or `proxy.json` text.
///
/// Errors: [`GatewayErrorKind::Config`](crate::GatewayErrorKind::Config) with a
/// [`ProblemKind::Syntax`] problem when the text is neither.
pub fn import_resource_proxy(text: &str) -> Result<Imported, GatewayError> {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    let (top, servers) = if t.starts_with('{') {
        from_json(t)?
    } else {
        from_xml(t)?
    };
    Ok(convert(&top, &servers))
}

fn syntax(message: impl Into<String>) -> GatewayError {
    GatewayError::config(vec![Problem::new(ProblemKind::Syntax, "file", message)])
}

fn from_json(text: &str) -> Result<(Attrs, Vec<Attrs>), GatewayError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        syntax(format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let attrs = |v: &serde_json::Value| -> Attrs {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| {
                        let text = match v {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Bool(b) => b.to_string(),
                            serde_json::Value::Number(n) => n.to_string(),
                            _ => return None,
                        };
                        Some((k.to_ascii_lowercase(), text))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let find = |key: &str| {
        value
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
            .map(|(_, v)| v.clone())
    };
    let mut top = attrs(&value);
    if let Some(pc) = find("proxyConfig") {
        let pc = pc.as_array().and_then(|a| a.first().cloned()).unwrap_or(pc);
        top.extend(attrs(&pc));
    }
    let list = match find("serverUrls") {
        Some(serde_json::Value::Array(a)) => a,
        Some(serde_json::Value::Object(o)) => o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("serverUrl"))
            .and_then(|(_, v)| v.as_array().cloned())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok((top, list.iter().map(attrs).collect()))
}

/// The `<ProxyConfig>` element's attributes and each `<serverUrl>`'s, names
/// lower-cased and namespaces ignored, as a real XML parser reads them:
/// entities and character references decoded, comments, CDATA and text
/// skipped, DTDs refused (no entity expansion).
fn from_xml(text: &str) -> Result<(Attrs, Vec<Attrs>), GatewayError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| {
        let at = e.pos();
        syntax(format!(
            "not well-formed XML (line {}, column {}): {}",
            at.row,
            at.col,
            xml_problem(&e)
        ))
    })?;
    let named = |node: &roxmltree::Node<'_, '_>, name: &str| {
        node.is_element() && node.tag_name().name().eq_ignore_ascii_case(name)
    };
    let root = doc.root_element();
    if !named(&root, "proxyconfig") {
        return Err(syntax(
            "no <ProxyConfig> element: not a resource-proxy proxy.config",
        ));
    }
    let attrs = |node: roxmltree::Node<'_, '_>| -> Attrs {
        node.attributes()
            .map(|a| (a.name().to_ascii_lowercase(), a.value().to_owned()))
            .collect()
    };
    let servers = root
        .descendants()
        .filter(|n| named(n, "serverurl"))
        .map(attrs)
        .collect();
    Ok((attrs(root), servers))
}

/// What is wrong in the XML, without quoting the document (it may hold secrets).
fn xml_problem(e: &roxmltree::Error) -> &'static str {
    use roxmltree::Error as E;
    match e {
        E::DtdDetected => "a DTD (not allowed: resource-proxy files have none)",
        E::UnexpectedEndOfStream => "the file ends inside an element",
        E::UnknownEntityReference(..) | E::MalformedEntityReference(_) => {
            "an unknown or malformed entity reference"
        }
        E::InvalidAttributeValue(_) | E::DuplicatedAttribute(..) => "a bad or repeated attribute",
        E::UnexpectedCloseTag(..) => "a closing tag that does not match",
        _ => "a syntax error",
    }
}

/// A TOML basic string: JSON's string escapes are all TOML escapes too.
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn truthy(v: Option<&String>, default: bool) -> bool {
    v.map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

/// `https://www.arcgis.com/sharing/oauth2` → `https://www.arcgis.com/sharing/rest`.
fn portal_of(oauth2: &str) -> String {
    let t = oauth2.trim().trim_end_matches('/');
    let t = t.strip_suffix("/oauth2").unwrap_or(t);
    if t.ends_with("/sharing") {
        format!("{t}/rest")
    } else {
        t.to_owned()
    }
}

/// A server root from `tokenServiceUri`, else the entry's URL up to `/rest/`.
fn server_root(token_uri: Option<&String>, url: &str) -> String {
    let from = match token_uri {
        Some(t) => {
            let t = t.trim().trim_end_matches('/');
            let t = t.strip_suffix("/generateToken").unwrap_or(t);
            t.strip_suffix("/tokens").unwrap_or(t).to_owned()
        }
        None => match url
            .find("/rest/")
            .or_else(|| url.strip_suffix("/rest").map(str::len))
        {
            Some(i) => url[..i].to_owned(),
            None => url.trim_end_matches('/').to_owned(),
        },
    };
    if from.starts_with("//") {
        format!("https:{from}")
    } else if !from.contains("://") {
        format!("https://{from}")
    } else {
        from
    }
}

fn convert(top: &Attrs, servers: &[Attrs]) -> Imported {
    let mut warnings = Vec::new();
    let mut secrets = BTreeMap::new();
    let mut out = String::from(
        "# Converted from a resource-proxy configuration by `arcgis-auth-gateway import`.\n\
         listen = \"127.0.0.1:8080\"\n",
    );
    if !truthy(top.get("mustmatch"), true) {
        warnings.push(
            "mustMatch=\"false\" is not carried over: the gateway forwards only to its routes"
                .to_owned(),
        );
    }
    let mut origins = Vec::new();
    for referer in top
        .get("allowedreferers")
        .map(|r| {
            r.split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        if referer == "*" {
            warnings.push(
                "allowedReferers=\"*\": allowed_origins is left empty (any caller may use the \
                 proxy paths; GET /token answers nobody)"
                    .to_owned(),
            );
            origins.clear();
            break;
        }
        // An origin is scheme://host[:port]: a referer's path is dropped.
        let origin = match referer.find("://") {
            Some(i) => match referer[i + 3..].find('/') {
                Some(j) => &referer[..i + 3 + j],
                None => referer,
            },
            None => referer,
        };
        match OriginPattern::parse(origin) {
            Ok(_) => {
                if !origins.contains(&origin.to_owned()) {
                    origins.push(origin.to_owned());
                }
            }
            Err(e) => warnings.push(format!("allowedReferers entry {referer:?} left out: {e}")),
        }
    }
    let _ = writeln!(
        out,
        "allowed_origins = [{}]",
        origins
            .iter()
            .map(|o| quoted(o))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut apps = String::new();
    let mut accounts = String::new();
    let mut routes = String::new();
    for (i, s) in servers.iter().enumerate() {
        let n = i + 1;
        let Some(url) = s.get("url").map(|u| u.trim()).filter(|u| !u.is_empty()) else {
            warnings.push(format!("serverUrls[{i}] has no url: left out"));
            continue;
        };
        let mut auth = "none".to_owned();
        if let Some(client_id) = s.get("clientid").filter(|c| !c.trim().is_empty()) {
            let name = format!("app{n}");
            let var = format!("GATEWAY_APP{n}_CLIENT_SECRET");
            let _ = write!(
                apps,
                "\n[[apps]]\nname = {}\nclient_id = {}\nclient_secret_env = {}\n",
                quoted(&name),
                quoted(client_id.trim()),
                quoted(&var)
            );
            if let Some(oauth2) = s.get("oauth2endpoint").filter(|o| !o.trim().is_empty()) {
                let _ = writeln!(apps, "portal = {}", quoted(&portal_of(oauth2)));
            }
            match s.get("clientsecret").filter(|c| !c.is_empty()) {
                Some(secret) => {
                    secrets.insert(var.clone(), secret.clone());
                    warnings.push(format!(
                        "serverUrls[{i}] holds its clientSecret inline: set {var} to it (and \
                         remove it from the file)"
                    ));
                }
                None => warnings.push(format!("serverUrls[{i}] has no clientSecret: set {var}")),
            }
            auth = format!("app:{name}");
        } else if let Some(username) = s.get("username").filter(|u| !u.trim().is_empty()) {
            let name = format!("server{n}");
            let var = format!("GATEWAY_SERVER{n}_PASSWORD");
            let _ = write!(
                accounts,
                "\n[[servers]]\nname = {}\nurl = {}\nusername = {}\npassword_env = {}\n",
                quoted(&name),
                quoted(&server_root(s.get("tokenserviceuri"), url)),
                quoted(username.trim()),
                quoted(&var)
            );
            match s.get("password").filter(|p| !p.is_empty()) {
                Some(password) => {
                    secrets.insert(var.clone(), password.clone());
                    warnings.push(format!(
                        "serverUrls[{i}] holds its password inline: set {var} to it (and remove \
                         it from the file)"
                    ));
                }
                None => warnings.push(format!("serverUrls[{i}] has no password: set {var}")),
            }
            auth = format!("server:{name}");
        }
        let _ = write!(
            routes,
            "\n[[routes]]\nurl = {}\nmatch_all = {}\nauth = {}\n",
            quoted(url),
            truthy(s.get("matchall"), true),
            quoted(&auth)
        );
        if let Some(limit) = s
            .get("ratelimit")
            .and_then(|r| r.trim().parse::<u64>().ok())
        {
            // resource-proxy counts rateLimit per rateLimitPeriod minutes (default 60).
            let minutes = s
                .get("ratelimitperiod")
                .and_then(|p| p.trim().parse::<u64>().ok())
                .unwrap_or(60);
            let _ = writeln!(
                routes,
                "rate_limit = {{ requests = {limit}, per_seconds = {} }}",
                minutes.saturating_mul(60)
            );
        }
    }
    out.push_str(&apps);
    out.push_str(&accounts);
    out.push_str(&routes);
    Imported {
        toml: out,
        warnings,
        secrets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_attributes_entities_and_comments() {
        let (top, servers) = from_xml(
            "<?xml version=\"1.0\"?>\n<!-- <serverUrl url=\"https://commented.example\"/> -->\n\
             <ProxyConfig mustMatch='true' allowedReferers=\"https://a.example.com\">\n\
             <serverUrls><serverUrl url=\"https://h.example/x?a=1&amp;b=2\" matchAll=\"false\"/>\
             </serverUrls></ProxyConfig>",
        )
        .expect("xml");
        assert_eq!(top["mustmatch"], "true");
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0]["url"], "https://h.example/x?a=1&b=2");
        assert!(from_xml("<config/>").is_err());
        assert!(from_xml("<ProxyConfig a=\"1").is_err());
    }

    #[test]
    fn xml_character_references_cdata_and_namespaces() {
        let (top, servers) = from_xml(
            "<p:ProxyConfig xmlns:p=\"urn:x\" allowedReferers=\"https://a.example.com&#44;https://b&#x2E;example.com\">\n\
             <p:serverUrls><![CDATA[ <serverUrl url=\"https://in-cdata.example\"/> ]]>\n\
             <p:serverUrl url=\"https://h.example/x\" p:matchAll=\"true\"/>\
             </p:serverUrls></p:ProxyConfig>",
        )
        .expect("xml");
        assert_eq!(
            top["allowedreferers"],
            "https://a.example.com,https://b.example.com"
        );
        assert_eq!(servers.len(), 1, "nothing read from inside CDATA");
        assert_eq!(servers[0]["url"], "https://h.example/x");
        assert_eq!(servers[0]["matchall"], "true");
    }

    #[test]
    fn xml_errors_give_the_place_and_never_quote_the_file() {
        let err =
            from_xml("<ProxyConfig>\n<serverUrl clientSecret=\"s3cret-77\" &bad;/>").unwrap_err();
        let err = format!("{err} {}", err.problems()[0].message());
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("s3cret-77"), "{err}");
        let bomb = "<!DOCTYPE p [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>\
                    <ProxyConfig allowedReferers=\"&b;\"/>";
        assert!(from_xml(bomb).is_err(), "no DTD, no entity expansion");
    }

    #[test]
    fn portals_and_server_roots() {
        assert_eq!(
            portal_of("https://www.arcgis.com/sharing/oauth2/"),
            "https://www.arcgis.com/sharing/rest"
        );
        assert_eq!(
            server_root(
                Some(&"https://gis.example.com/arcgis/tokens/generateToken".to_owned()),
                "x"
            ),
            "https://gis.example.com/arcgis"
        );
        assert_eq!(
            server_root(None, "//gis.example.com/arcgis/rest/services/Secure"),
            "https://gis.example.com/arcgis"
        );
    }
}
