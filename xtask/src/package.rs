//! `cargo xtask ci`'s packaging checks: every published crate packages and
//! builds from its tarball alone, its documentation builds from the tarball
//! with `-D warnings`, and the contract crate a store implementer depends on
//! stays free of HTTP, TLS and C toolchains.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{Result, cargo, run, workspace_root};

/// The crates users add from a registry, lowest first.
const PUBLISHED: &[&str] = &[
    "arcgis-auth-core",
    "arcgis-auth-storage",
    "arcgis-auth-testkit",
    "arcgis-auth-flows",
    "arcgis-auth-cli",
    "arcgis-auth-gateway",
    "arcgis-auth",
];

/// Workspace members that are part of this repository only (`publish = false`).
const NOT_PUBLISHED: &[&str] = &["arcgis-auth-examples", "arcgis-auth-bench", "xtask"];

/// Crates a store implementer must never compile: an HTTP client, a TLS stack,
/// a C or CMake build.
const NOT_IN_THE_CONTRACT: &[&str] = &[
    "reqwest",
    "hyper",
    "oauth2",
    "rustls",
    "aws-lc-rs",
    "aws-lc-sys",
    "ring",
    "openssl-sys",
    "native-tls",
    "cc",
    "cmake",
    "url",
    "idna",
];

/// The most crates (storage itself included) a store implementer compiles.
const CONTRACT_CRATES_AT_MOST: usize = 30;

/// `cargo package` of every published crate, each verified by building its
/// tarball against the others' tarballs. Nothing is uploaded.
pub(crate) fn package() -> Result {
    // An earlier run's tarballs carry the same version, and what was built
    // from them counts as registry code, which cargo never rebuilds: clear
    // both, or this run would verify against stale sources.
    let earlier = workspace_root().join("target").join("package");
    if earlier.exists() {
        fs::remove_dir_all(&earlier)
            .map_err(|e| format!("cannot clear {}: {e}", earlier.display()))?;
        let mut clean = cargo();
        clean.arg("clean");
        for name in PUBLISHED {
            clean.args(["-p", name]);
        }
        run(
            "cargo clean of an earlier run's packaged crates",
            &mut clean,
        )?;
    }
    forget_unpacked_tarballs()?;
    let mut c = cargo();
    c.args(["package", "--workspace", "--allow-dirty"]);
    for name in NOT_PUBLISHED {
        c.args(["--exclude", name]);
    }
    run("cargo package (every published crate, verified)", &mut c)
}

/// Unpacks the tarballs `package` made into one throw-away workspace whose
/// `[patch]` points each crate at its unpacked neighbour, and documents it
/// with `-D warnings`: the documentation users get from the registry builds.
pub(crate) fn packaged_docs() -> Result {
    let root = workspace_root();
    let version = workspace_version(&root)?;
    let packaged = root.join("target").join("packaged");
    if packaged.exists() {
        fs::remove_dir_all(&packaged)
            .map_err(|e| format!("cannot clear {}: {e}", packaged.display()))?;
    }
    fs::create_dir_all(&packaged)
        .map_err(|e| format!("cannot create {}: {e}", packaged.display()))?;
    let mut members = String::new();
    let mut patches = String::new();
    for name in PUBLISHED {
        let tarball = root
            .join("target")
            .join("package")
            .join(format!("{name}-{version}.crate"));
        run(
            &format!("unpack {name}-{version}.crate"),
            Command::new("tar")
                .arg("-xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&packaged),
        )?;
        members.push_str(&format!("\"{name}-{version}\", "));
        patches.push_str(&format!("{name} = {{ path = \"{name}-{version}\" }}\n"));
    }
    let manifest = format!(
        "# Made by `cargo xtask ci` from the packaged crates; thrown away.\n\
         [workspace]\nresolver = \"3\"\nmembers = [{members}]\n\n[patch.crates-io]\n{patches}"
    );
    write(&packaged.join("Cargo.toml"), &manifest)?;
    // The same dependency versions as the workspace the tarballs came from.
    fs::copy(root.join("Cargo.lock"), packaged.join("Cargo.lock"))
        .map_err(|e| format!("cannot copy Cargo.lock: {e}"))?;
    run(
        "cargo doc of the packaged crates (-D warnings)",
        cargo()
            .current_dir(&packaged)
            .args(["doc", "--workspace", "--no-deps", "--all-features"])
            // Reuse the workspace's compiled dependencies.
            .env("CARGO_TARGET_DIR", root.join("target"))
            .env("RUSTDOCFLAGS", "-D warnings --cfg docsrs")
            .env("RUSTC_BOOTSTRAP", "1"),
    )
}

/// The contract stays lean: `arcgis-auth-core` builds without its wire, and
/// nothing in `arcgis-auth-storage`'s tree (normal and build dependencies)
/// is an HTTP client, a TLS stack or a C build. Prints how many crates a store
/// implementer compiles.
pub(crate) fn lean_contract() -> Result {
    run(
        "cargo test -p arcgis-auth-core --no-default-features --lib",
        cargo().args([
            "test",
            "-p",
            "arcgis-auth-core",
            "--no-default-features",
            "--lib",
        ]),
    )?;
    let out = cargo()
        .args([
            "tree",
            "-p",
            "arcgis-auth-storage",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .map_err(|e| format!("cargo tree: could not start: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree -p arcgis-auth-storage failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let mut crates: Vec<&str> = tree
        .lines()
        .map(|l| l.trim_end_matches(" (*)").trim())
        .filter(|l| !l.is_empty())
        .collect();
    crates.sort_unstable();
    crates.dedup();
    let name_of = |line: &str| line.split_whitespace().next().unwrap_or("").to_owned();
    let forbidden: Vec<String> = crates
        .iter()
        .map(|l| name_of(l))
        .filter(|n| NOT_IN_THE_CONTRACT.contains(&n.as_str()))
        .collect();
    eprintln!(
        "arcgis-auth-storage compiles {} crates (itself included)",
        crates.len()
    );
    if !forbidden.is_empty() {
        return Err(format!(
            "arcgis-auth-storage's dependency tree holds {}: a store implementer would \
             compile an HTTP client, TLS, C code or a URL parser the contract does not need",
            forbidden.join(", ")
        ));
    }
    if crates.len() > CONTRACT_CRATES_AT_MOST {
        return Err(format!(
            "arcgis-auth-storage compiles {} crates, more than {CONTRACT_CRATES_AT_MOST}: \
             keep the contract lean",
            crates.len()
        ));
    }
    Ok(())
}

/// Verification unpacks each tarball under `$CARGO_HOME/registry/src/`, and
/// an earlier run's unpacked copy of the same version would be used again as
/// it is. Removes every unpacked `arcgis-auth*-VERSION` there (none of them
/// comes from a real registry: these crates are ours).
fn forget_unpacked_tarballs() -> Result {
    let version = workspace_version(&workspace_root())?;
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let Some(sources) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = fs::read_dir(&sources) else {
        return Ok(()); // nothing unpacked yet
    };
    for registry in registries.flatten() {
        for name in PUBLISHED {
            let unpacked = registry.path().join(format!("{name}-{version}"));
            if unpacked.exists() {
                fs::remove_dir_all(&unpacked)
                    .map_err(|e| format!("cannot remove {}: {e}", unpacked.display()))?;
            }
        }
    }
    Ok(())
}

/// The `version` of `[workspace.package]` in the root manifest.
fn workspace_version(root: &Path) -> Result<String> {
    let manifest = fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    manifest
        .split("[workspace.package]")
        .nth(1)
        .and_then(|section| {
            section
                .lines()
                .take_while(|l| !l.starts_with('['))
                .find_map(|l| l.strip_prefix("version = "))
        })
        .map(|v| v.trim().trim_matches('"').to_owned())
        .ok_or_else(|| "no version in [workspace.package] of Cargo.toml".into())
}

fn write(path: &Path, text: &str) -> Result {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
