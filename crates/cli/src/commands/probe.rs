//! `probe [--json]`: which sign-ins the portal accepts, asked without credentials.

use arcgis_auth_core::{HttpClient, PortalSecurity, SignInMethod, WebTierScheme};
use serde_json::json;

use super::Context;
use crate::exit::CliError;
use crate::output::{result, result_json};

pub(super) async fn run(ctx: &Context, json: bool) -> Result<(), CliError> {
    let portal = ctx.login_portal();
    // A client that holds nothing: the probe sends no credential.
    let http: &HttpClient = &ctx.http;
    let security = http.probe_portal(&portal).await?;
    if json {
        result_json(&json!({
            "portal": portal.to_string(),
            "token_based": security.is_token_based(),
            "web_tier": security.web_tier().iter().map(scheme_json).collect::<Vec<_>>(),
            "sign_ins": logins(&security),
        }))
    } else {
        result(text(&portal.to_string(), &security).as_bytes())
    }
}

/// The `login` subcommands that will work, best first.
fn logins(security: &PortalSecurity) -> Vec<&'static str> {
    let mut out = Vec::new();
    for method in security.sign_ins() {
        match method {
            SignInMethod::OAuth => out.extend(["user", "app"]),
            SignInMethod::Password => out.push("password"),
            SignInMethod::ClientCertificate => out.push("pki"),
            SignInMethod::Basic => out.push("basic"),
            SignInMethod::Kerberos => out.push("kerberos"),
            _ => {}
        }
    }
    out
}

fn scheme_json(scheme: &WebTierScheme) -> serde_json::Value {
    let (name, realm) = match scheme {
        WebTierScheme::ClientCertificate => ("client_certificate", None),
        WebTierScheme::Basic { realm } => ("basic", realm.clone()),
        WebTierScheme::Negotiate => ("negotiate", None),
        WebTierScheme::Ntlm => ("ntlm", None),
        WebTierScheme::Other(name) => (name.as_str(), None),
        _ => ("unspecified", None),
    };
    json!({"scheme": name, "realm": realm})
}

fn text(portal: &str, security: &PortalSecurity) -> String {
    let logins = logins(security)
        .iter()
        .filter(|l| cfg!(feature = "kerberos") || **l != "kerberos")
        .map(|l| format!("`arcgis-auth login {l}`"))
        .collect::<Vec<_>>();
    let how = if logins.is_empty() {
        "no sign-in this tool supports: ask the administrator for PKI or Basic access".to_owned()
    } else {
        format!("sign in with {}", logins.join(" or "))
    };
    if security.is_token_based() {
        format!("{portal}: token-based (ArcGIS signs users in); {how}\n")
    } else {
        let schemes = security
            .web_tier()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        format!("{portal}: behind a web tier asking for {schemes}; {how}\n")
    }
}
