//! The ArcGIS Maps SDK for JavaScript (`@arcgis/core` from npm), installed
//! in `examples/tests/maps-sdk` by `npm ci` (which `cargo xtask ci` runs) and
//! bundled there by `npm run build` (esbuild, pinned in the same
//! `package.json`), which this module runs when the bundle is missing or
//! older than its inputs.
//!
//! Not installed, or installed at another version than `package.json` pins:
//! the test skips with a notice naming the command, except under `CI=true`,
//! where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::Value;

use super::chromium::skip_or_fail;

/// The installed SDK: where its bundle and its assets are.
pub(crate) struct MapsSdk {
    /// `build/`: `sdk.js` and its chunks.
    pub(crate) build: PathBuf,
    /// `node_modules/@arcgis/core/assets`: what the SDK loads at run time
    /// (`esriConfig.assetsPath`), instead of its CDN.
    pub(crate) assets: PathBuf,
    /// The version `package.json` pins, and `node_modules` holds.
    pub(crate) version: String,
}

/// `examples/tests/maps-sdk`.
pub(crate) fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/maps-sdk")
}

const INSTALL: &str = "run `npm ci` in examples/tests/maps-sdk (or `cargo xtask ci`, which does)";

fn json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The SDK, installed and bundled; `None` (after a notice, or a failure
/// under CI) when it is not installed.
pub(crate) fn installed(what: &str) -> Option<MapsSdk> {
    let dir = dir();
    let pinned = json(&dir.join("package.json"))
        .and_then(|p| {
            p["dependencies"]["@arcgis/core"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("examples/tests/maps-sdk/package.json pins @arcgis/core");
    let core = dir.join("node_modules/@arcgis/core");
    let have =
        json(&core.join("package.json")).and_then(|p| p["version"].as_str().map(str::to_owned));
    match have {
        None => {
            skip_or_fail(what, "@arcgis/core is not installed", INSTALL);
            return None;
        }
        Some(v) if v != pinned => {
            skip_or_fail(
                what,
                &format!("@arcgis/core {v} is installed, package.json pins {pinned}"),
                INSTALL,
            );
            return None;
        }
        Some(_) => {}
    }
    // npm's own record of what it installed is older than the lock file:
    // the lock changed since `npm ci`.
    let lock = modified(&dir.join("package-lock.json"));
    if modified(&dir.join("node_modules/.package-lock.json")) < lock {
        skip_or_fail(
            what,
            "node_modules is older than package-lock.json",
            INSTALL,
        );
        return None;
    }
    let bundle = dir.join("build/sdk.js");
    let inputs = ["package-lock.json", "entry.js", "build.mjs"]
        .iter()
        .filter_map(|f| modified(&dir.join(f)))
        .max();
    if modified(&bundle) < inputs {
        let status = Command::new("node")
            .arg("build.mjs")
            .current_dir(&dir)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("`npm run build` in {} failed: {s}", dir.display()),
            Err(e) => {
                skip_or_fail(what, &format!("node does not run: {e}"), INSTALL);
                return None;
            }
        }
    }
    Some(MapsSdk {
        build: dir.join("build"),
        assets: core.join("assets"),
        version: pinned,
    })
}
