//! resource-proxy's `proxy.config` and `proxy.json`: `import` prints the gateway.toml, `--config` reads them as is.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use arcgis_auth_core::ExposeSecret;
use arcgis_auth_gateway::{Auth, Config, RateLimit, import_resource_proxy};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_arcgis-auth-gateway");
const XML: &str = include_str!("data/proxy.config");
const JSON: &str = include_str!("data/proxy.json");

#[test]
fn proxy_config_becomes_an_equivalent_gateway_toml_without_its_secrets() {
    let imported = import_resource_proxy(XML).expect("imports");
    assert!(
        !imported.toml.contains("inline-app-secret-1"),
        "{}",
        imported.toml
    );
    assert!(!imported.toml.contains("inline-pass"), "{}", imported.toml);
    assert!(!format!("{imported:?}").contains("inline-app-secret-1"));
    // The TOML is valid once its variables are set, and says what proxy.config said.
    let env = BTreeMap::from([
        ("GATEWAY_APP1_CLIENT_SECRET".to_owned(), "s1".to_owned()),
        ("GATEWAY_SERVER2_PASSWORD".to_owned(), "s2".to_owned()),
    ]);
    let c = Config::from_toml(&imported.toml, &env).expect(&imported.toml);
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    // The referer's path is dropped: an origin is scheme://host[:port].
    assert!(
        imported
            .toml
            .contains(r#"allowed_origins = ["https://app.example.com", "https://*.example.org"]"#),
        "{}",
        imported.toml
    );
    assert_eq!(
        c.allowed_origins,
        [
            arcgis_auth_gateway::OriginPattern::parse("https://app.example.com").expect("origin"),
            arcgis_auth_gateway::OriginPattern::parse("https://*.example.org").expect("origin"),
        ]
    );
    assert_eq!(c.apps[0].client_id, "geo-client");
    assert_eq!(
        c.apps[0].portal.to_string().trim_end_matches('/'),
        "https://www.arcgis.com/sharing/rest"
    );
    assert_eq!(c.servers[0].username, "svc");
    assert_eq!(
        c.servers[0].root.as_url().as_str().trim_end_matches('/'),
        "https://gis.example.com/arcgis"
    );
    assert_eq!(c.routes.len(), 3);
    assert_eq!(c.routes[0].auth, Auth::App("app1".into()));
    assert!(c.routes[0].match_all);
    assert_eq!(
        c.routes[0].rate_limit,
        Some(RateLimit {
            requests: 600,
            per: Duration::from_secs(3600)
        }),
        "rateLimitPeriod is in minutes"
    );
    assert_eq!(c.routes[1].auth, Auth::Server("server2".into()));
    assert_eq!(
        c.routes[1].url_text,
        "//gis.example.com/arcgis/rest/services/Secure"
    );
    assert_eq!(c.routes[2].auth, Auth::None);
    assert!(!c.routes[2].match_all);
    assert!(
        imported
            .warnings
            .iter()
            .any(|w| w.contains("GATEWAY_APP1_CLIENT_SECRET"))
    );
}

#[test]
fn proxy_json_and_mustmatch_false_are_read() {
    let imported = import_resource_proxy(JSON).expect("imports");
    assert!(imported.warnings.iter().any(|w| w.contains("mustMatch")));
    let c = Config::from_resource_proxy(JSON, &BTreeMap::new()).expect("valid as is");
    assert_eq!(
        c.apps[0].client_secret.expose_secret(),
        "inline-app-secret-1"
    );
    assert_eq!(c.servers[0].password.expose_secret(), "inline-pass-2");
    assert_eq!(
        c.servers[0].root.as_url().as_str().trim_end_matches('/'),
        "https://gis.example.com/arcgis"
    );
    // rateLimitPeriod defaults to 60 minutes.
    assert_eq!(
        c.routes[0].rate_limit.map(|l| l.per),
        Some(Duration::from_secs(3600))
    );
    assert!(c.warnings.iter().any(|w| w.contains("inline secret")));
    assert!(!format!("{c:?}").contains("inline-app-secret-1"));
    assert!(import_resource_proxy("<config/>").is_err());
    assert!(import_resource_proxy("{ not json").is_err());
}

#[test]
fn the_import_command_prints_toml_on_stdout_and_warnings_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("proxy.config");
    std::fs::write(&path, XML).expect("write");
    let out = std::process::Command::new(BIN)
        .arg("import")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("[[routes]]"), "{stdout}");
    assert!(stderr.contains("GATEWAY_SERVER2_PASSWORD"), "{stderr}");
    for secret in ["inline-app-secret-1", "inline-pass"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

#[tokio::test]
async fn serve_reads_a_proxy_config_as_is_listening_where_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("proxy.config");
    std::fs::write(&path, XML).expect("write");
    let mut child = tokio::process::Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = lines.next_line().await.expect("read").expect("a line");
    let addr = line
        .strip_prefix("listening on http://")
        .expect("listening line");
    let r = reqwest::Client::new()
        .get(format!(
            "http://{addr}/proxy.ashx?https://evil.example/arcgis/rest/services"
        ))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 403, "only the configured serverUrls are routes");
    child.start_kill().expect("stop");
    let out = child.wait_with_output().await.expect("exit");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("inline secret"), "{stderr}");
    assert!(!stderr.contains("inline-app-secret-1") && !stderr.contains("inline-pass"));
}
