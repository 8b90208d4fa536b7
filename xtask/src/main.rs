//! Project automation for arcgis-auth. Run `cargo xtask help`.
//!
//! `cargo xtask ci` is the one command CI runs (through `.ci/run`) and the one
//! a newcomer types on a fresh machine: it installs what the tests need
//! (`redis-server`, `openssl`, `chromium` and `chromium-driver`, MIT Kerberos's
//! development files, KDC and tools, `nodejs` and `npm` from Debian's packages,
//! `cargo-deny` from crates.io, and the ArcGIS Maps SDK for JavaScript from
//! npm for the gateway's browser test),
//! starts a throw-away Redis on a free loopback port, runs every check in
//! order, and stops Redis again, whatever happened.

mod bench;
mod fuzz;
mod package;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use arcgis_auth_storage::test_util::RedisServer;

type Result<T = ()> = std::result::Result<T, String>;

const HELP: &str = "\
cargo xtask <command>

Commands:
  ci     Run every check CI runs, in order: fmt, clippy, tests (nextest when
         installed, else cargo test), the tour and the other examples, doctests,
         rustdoc with -D warnings, the lean-contract check (arcgis-auth-storage
         compiles no HTTP client, TLS or C code), `cargo package` of every
         published crate (verified, nothing uploaded) and rustdoc of the
         packaged crates, and cargo-deny (bans, licenses, sources).
         Installs libssl-dev, pkg-config, redis-server, openssl, chromium,
         chromium-driver, nodejs, npm and cargo-deny when missing, runs
         `npm ci` and `npm run build` in examples/tests/maps-sdk (the ArcGIS
         Maps SDK for JavaScript, for the gateway's browser test) when its
         node_modules is missing or older than its package-lock.json, and
         runs the Redis tests against a private redis-server on a free
         loopback port.
  redis  Start a private redis-server and print its URL; stops on Enter.
  bench  Run the criterion benchmarks (crate arcgis-auth-bench) against a
         private redis-server, and the gateway against nginx (building the
         release arcgis-auth-gateway binary and installing Debian's nginx
         when missing), and write target/bench-summary.json
         (docs/performance.md). `bench --no-run` only rewrites the summary;
         `bench -- <filter>` passes arguments to criterion.
  fuzz   Run every cargo-fuzz target in fuzz/ for --seconds N each (default
         30), installing cargo-fuzz when missing (RUSTC_BOOTSTRAP=1 on a
         stable toolchain); `fuzz <target>` runs one. Crashes are saved
         under fuzz/artifacts/<target>/.
  package
         The packaging checks of `ci` alone: the lean-contract check, `cargo
         package` of every published crate (verified) and rustdoc of the
         packaged crates.
  help   This text.
";

/// The examples `ci` runs (`examples/README.md` lists them), the tour first.
const EXAMPLES: &[&str] = &[
    "tour",
    "app_credentials",
    "user_sign_in",
    "out_of_band",
    "generate_token",
    "web_app",
    "custom_store",
    "federated_request",
    "client_certificate",
    "directory_password",
    "kerberos",
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("redis") => redis_shell(),
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("package") => ensure_kerberos()
            .and_then(|()| package::lean_contract())
            .and_then(|()| package::package())
            .and_then(|()| package::packaged_docs()),
        Some("help") | Some("--help") | Some("-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut c = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn run(step: &str, cmd: &mut Command) -> Result {
    eprintln!("\n==> {step}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: could not start: {e}"))?;
    eprintln!(
        "<== {step}: {status} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("{step} failed ({status})"))
    }
}

fn have(program: &str) -> bool {
    answers(program, "--version")
}

/// Whether `program arg` runs and succeeds.
fn answers(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo_has(sub: &str) -> bool {
    cargo()
        .args([sub, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ci() -> Result {
    let started = Instant::now();
    // `--all-features` builds the `native-tls` backend: OpenSSL's headers.
    ensure_openssl_headers()?;
    // ... and `kerberos` (libgssapi's bindgen bindings, the tests' KDC): the
    // CLI builds it by default, so before any cargo build.
    ensure_kerberos()?;
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    run(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    let redis = start_redis()?;
    let url = redis.url().to_owned();
    eprintln!("redis-server for tests at {url}");
    // The browser test of the web example needs Chromium and its driver.
    ensure_chromium()?;
    // ... and the gateway's Maps SDK test the SDK itself, from npm.
    ensure_maps_sdk()?;
    // The rediss:// tests make their certificates with the openssl command.
    ensure_openssl()?;

    let mut tests = if cargo_has("nextest") {
        let mut c = cargo();
        c.args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
        ]);
        c
    } else {
        eprintln!("cargo-nextest not installed: falling back to cargo test");
        let mut c = cargo();
        c.args([
            "test",
            "--workspace",
            "--all-features",
            "--all-targets",
            "--no-fail-fast",
        ]);
        c
    };
    tests.env("ARCGIS_AUTH_TEST_REDIS_URL", &url);
    run("tests", &mut tests)?;
    // The tour, then every other example, each with no arguments (against
    // the testkit's portal): each checks what it shows and exits non-zero
    // when something does not behave as described.
    for example in EXAMPLES {
        run(
            &format!("cargo run --example {example}"),
            cargo().args(["run", "--quiet", "--example", example]),
        )?;
    }
    run(
        "doctests",
        cargo()
            .args(["test", "--workspace", "--all-features", "--doc"])
            .env("ARCGIS_AUTH_TEST_REDIS_URL", &url),
    )?;
    drop(redis);

    run(
        "cargo doc",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    package::lean_contract()?;
    package::package()?;
    package::packaged_docs()?;

    ensure_cargo_deny()?;
    // `advisories` needs the RustSec database from the internet, which CI machines lack.
    run(
        "cargo deny",
        cargo().args(["deny", "check", "bans", "licenses", "sources"]),
    )?;

    eprintln!(
        "\nci: all checks passed in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn ensure_cargo_deny() -> Result {
    if cargo_has("deny") {
        return Ok(());
    }
    run(
        "install cargo-deny",
        cargo().args(["install", "--locked", "cargo-deny"]),
    )
}

/// Chromium and chromedriver for the browser test of the web example
/// (`examples/tests/browser.rs`), from Debian's packages when missing.
fn ensure_chromium() -> Result {
    let found = |names: &[&str]| names.iter().any(|n| have(n));
    if found(&["chromium", "chromium-browser"]) && have("chromedriver") {
        return Ok(());
    }
    eprintln!(
        "chromium or chromedriver not found: installing Debian's chromium and chromium-driver"
    );
    apt_install(&["chromium", "chromium-driver"])?;
    if found(&["chromium", "chromium-browser"]) && have("chromedriver") {
        Ok(())
    } else {
        Err("chromium or chromedriver still missing after installing them".into())
    }
}

/// The ArcGIS Maps SDK for JavaScript for the gateway's browser test
/// (`examples/tests/gateway_maps_sdk.rs`): Debian's `nodejs` and `npm` when
/// `npm` is missing; `npm ci` in `examples/tests/maps-sdk` when its
/// `node_modules` is missing or older than its `package-lock.json` (npm's
/// own record, `node_modules/.package-lock.json`, is what `npm ci` writes
/// last); then `npm run build`, the esbuild bundle the test serves.
fn ensure_maps_sdk() -> Result {
    if !have("npm") {
        eprintln!("npm not found: installing Debian's nodejs and npm");
        apt_install(&["nodejs", "npm"])?;
        if !have("npm") {
            return Err("npm still missing after installing nodejs and npm".into());
        }
    }
    let dir = workspace_root().join("examples/tests/maps-sdk");
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < modified(&dir.join("package-lock.json")) {
        run(
            "npm ci (examples/tests/maps-sdk)",
            Command::new("npm").arg("ci").current_dir(&dir),
        )?;
    }
    run(
        "npm run build (examples/tests/maps-sdk)",
        Command::new("npm")
            .args(["run", "--silent", "build"])
            .current_dir(&dir),
    )
}

fn ensure_redis_server() -> Result {
    if have("redis-server") {
        return Ok(());
    }
    eprintln!("redis-server not found: installing Debian's redis-server package");
    apt_install(&["redis-server"])?;
    if have("redis-server") {
        Ok(())
    } else {
        Err("redis-server still missing after installing it".into())
    }
}

/// OpenSSL's development files and pkg-config, which the `native-tls`
/// feature's openssl-sys builds against, from Debian's packages when missing.
fn ensure_openssl_headers() -> Result {
    let found = || {
        Command::new("pkg-config")
            .args(["--exists", "openssl"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if found() {
        return Ok(());
    }
    eprintln!("OpenSSL headers not found: installing Debian's libssl-dev and pkg-config");
    apt_install(&["libssl-dev", "pkg-config"])?;
    if found() {
        Ok(())
    } else {
        Err("OpenSSL headers still missing after installing libssl-dev and pkg-config".into())
    }
}

/// MIT Kerberos for the `kerberos` feature and its tests, from Debian's
/// packages when missing: libkrb5-dev (the GSSAPI headers and `krb5-config`)
/// and libclang-dev (bindgen) to build libgssapi-sys; krb5-kdc,
/// krb5-admin-server (`kadmin.local`) and krb5-user (`kinit`) for the
/// throwaway realm of the Kerberos tests.
fn ensure_kerberos() -> Result {
    let missing = || {
        let mut missing = Vec::new();
        if !Path::new("/usr/include/gssapi/gssapi.h").is_file() {
            missing.push("libkrb5-dev");
        }
        if !has_libclang() {
            missing.push("libclang-dev");
        }
        for (tool, package) in [
            ("krb5kdc", "krb5-kdc"),
            ("kadmin.local", "krb5-admin-server"),
            ("kinit", "krb5-user"),
        ] {
            if !has_tool(tool) {
                missing.push(package);
            }
        }
        missing
    };
    let packages = missing();
    if packages.is_empty() {
        return Ok(());
    }
    eprintln!(
        "Kerberos parts not found: installing Debian's {}",
        packages.join(" ")
    );
    apt_install(&packages)?;
    let still = missing();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "still missing after apt-get install: {}",
            still.join(" ")
        ))
    }
}

/// Whether a libclang shared library is where clang-sys looks for one.
fn has_libclang() -> bool {
    let Ok(dirs) = std::fs::read_dir("/usr/lib") else {
        return false;
    };
    dirs.filter_map(|d| d.ok())
        .filter(|d| d.file_name().to_string_lossy().starts_with("llvm-"))
        .any(|d| {
            std::fs::read_dir(d.path().join("lib")).is_ok_and(|mut files| {
                files.any(|f| {
                    f.is_ok_and(|f| f.file_name().to_string_lossy().starts_with("libclang"))
                })
            })
        })
}

/// `tool` on `PATH` or in the sbin directories (where Debian puts the KDC's tools).
fn has_tool(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|d| d.join(tool).is_file())
}

fn ensure_openssl() -> Result {
    // `openssl` has no `--version`: it answers `openssl version`.
    let have_openssl = || answers("openssl", "version");
    if have_openssl() {
        return Ok(());
    }
    eprintln!("openssl not found: installing Debian's openssl package");
    apt_install(&["openssl"])?;
    if have_openssl() {
        Ok(())
    } else {
        Err("openssl still missing after installing it".into())
    }
}

/// Debian's nginx, the gateway benchmark's baseline, installed when missing:
/// its path (`nginx` on the PATH, else `/usr/sbin/nginx`, where Debian puts it).
fn ensure_nginx() -> Result<PathBuf> {
    let find = || {
        ["nginx", "/usr/sbin/nginx"]
            .into_iter()
            .find(|p| answers(p, "-v"))
            .map(PathBuf::from)
    };
    if let Some(path) = find() {
        return Ok(path);
    }
    eprintln!("nginx not found: installing Debian's nginx package");
    apt_install(&["nginx"])?;
    find().ok_or_else(|| "nginx still missing after installing it".into())
}

/// `apt-get update` and `apt-get install -y` of `packages` (with sudo unless root).
fn apt_install(packages: &[&str]) -> Result {
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut c = Command::new(sudo.first().copied().unwrap_or("apt-get"));
        if !sudo.is_empty() {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run("apt-get update", &mut apt(&["update", "-q"]))?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend_from_slice(packages);
    run(
        &format!("apt-get install {}", packages.join(" ")),
        &mut apt(&install),
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// A private redis-server on a free loopback port (installed first when
/// missing), killed when the guard drops.
fn start_redis() -> Result<RedisServer> {
    ensure_redis_server()?;
    RedisServer::start()
}

fn redis_shell() -> Result {
    let redis = start_redis()?;
    println!("export ARCGIS_AUTH_TEST_REDIS_URL={}", redis.url());
    eprintln!("redis-server running; press Enter to stop it");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(redis);
    Ok(())
}
