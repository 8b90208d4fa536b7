//! The `arcgis-auth-gateway` binary: its one `listening on` line, and `check`.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_arcgis-auth-gateway");

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[tokio::test]
async fn serve_prints_one_listening_line_and_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        r#"
listen = "127.0.0.1:9"
[[apps]]
name = "geo"
client_id = "abc"
client_secret_env = "GATEWAY_TEST_SECRET"
[[routes]]
url = "https://services.example.com/arcgis/rest/services"
match_all = true
auth = "app:geo"
"#,
    );
    let mut child = tokio::process::Command::new(BIN)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--log-format")
        .arg("json")
        .env("ARCGIS_GATEWAY_CONFIG", &config)
        .env("GATEWAY_TEST_SECRET", "binary-test-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the gateway");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next_line().await.expect("read").expect("a line");
    let addr = line
        .strip_prefix("listening on http://")
        .expect("the listening line");
    let addr: std::net::SocketAddr = addr.parse().expect("ADDR:PORT");
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0, "port 0 picked a free port");
    assert_ne!(addr.port(), 9, "--listen overrides the file");

    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);
    let r = reqwest::get(format!("http://{addr}/proxy?ping"))
        .await
        .expect("answer");
    assert_eq!(r.status(), 200);

    child.start_kill().expect("stop");
    let out = child.wait_with_output().await.expect("exit");
    // Nothing else on stdout; the logs are JSON lines on stderr, without the secret.
    assert!(lines.next_line().await.ok().flatten().is_none());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with('{') && l.contains("gateway ready")),
        "{stderr}"
    );
    assert!(!stderr.contains("binary-test-secret"));
}

#[test]
fn check_reports_problems_on_stderr_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write_config(
        &dir,
        "[[apps]]\nname = \"geo\"\nclient_id = \"abc\"\nclient_secret = \"inline-secret-here\"\n\
         [[routes]]\nurl = \"https://h.example/a\"\nauth = \"app:missing\"\n",
    );
    let out = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apps[0].client_secret"), "{stderr}");
    assert!(stderr.contains("routes[0].auth"), "{stderr}");
    assert!(!stderr.contains("inline-secret-here"), "{stderr}");

    let good = write_config(
        &dir,
        "[[routes]]\nurl = \"https://h.example/a\"\nmatch_all = true\n",
    );
    let out = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&good)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zero_worker_threads_is_refused_before_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        &dir,
        "listen = \"127.0.0.1:0\"\n[[routes]]\nurl = \"https://h.example/a\"\nmatch_all = true\n",
    );
    for (flag, env) in [(Some("0"), None), (None, Some("0")), (None, Some("many"))] {
        let mut command = std::process::Command::new(BIN);
        command.arg("--config").arg(&config);
        if let Some(n) = flag {
            command.args(["--worker-threads", n]);
        }
        if let Some(n) = env {
            command.env("TOKIO_WORKER_THREADS", n);
        }
        let out = command.output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{flag:?} {env:?}");
        assert!(out.stdout.is_empty(), "it never listened");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("worker-threads"), "{stderr}");
    }
}

/// `examples/gateway/arcgis-online-location-services.toml`, as shipped.
fn location_services_example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/gateway/arcgis-online-location-services.toml")
}

#[test]
fn the_location_services_example_passes_check_with_its_secret_set() {
    let example = location_services_example();
    let out = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&example)
        .env("LOCATION_SERVICES_CLIENT_SECRET", "example-check-secret")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("OK (8 routes, 1 apps, 0 servers)"),
        "{stderr}"
    );
    assert!(!stderr.contains("example-check-secret"), "{stderr}");

    // The secret is really read from the environment: without it, check fails.
    let out = std::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&example)
        .env_remove("LOCATION_SERVICES_CLIENT_SECRET")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apps[0].client_secret"), "{stderr}");
}

#[test]
fn the_location_services_example_routes_each_service_and_nothing_else() {
    let text = std::fs::read_to_string(location_services_example()).expect("the example");
    let env = std::collections::BTreeMap::from([(
        "LOCATION_SERVICES_CLIENT_SECRET".to_owned(),
        "example-check-secret".to_owned(),
    )]);
    let config = arcgis_auth_gateway::Config::from_toml(&text, &env).expect("a valid config");
    let hosts: std::collections::BTreeSet<String> = config
        .routes
        .iter()
        .filter_map(|r| {
            let rest = r.url_text.strip_prefix("https://")?;
            Some(rest.split('/').next()?.to_owned())
        })
        .collect();
    for host in [
        "geocode-api.arcgis.com",
        "route-api.arcgis.com",
        "places-api.arcgis.com",
        "basemapstyles-api.arcgis.com",
        "basemaps-api.arcgis.com",
        "static-map-tiles-api.arcgis.com",
    ] {
        assert!(hosts.contains(host), "{host} missing from {hosts:?}");
    }
    assert_eq!(hosts.len(), 6, "{hosts:?}");
    assert!(
        config
            .routes
            .iter()
            .all(|r| r.match_all && r.auth == arcgis_auth_gateway::Auth::App("location".into())),
        "every route adds the app's token"
    );
    assert_eq!(config.apps.len(), 1);
    assert_eq!(
        config.portal.as_str(),
        "https://www.arcgis.com/sharing/rest"
    );
}
