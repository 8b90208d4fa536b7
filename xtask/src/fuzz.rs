//! `cargo xtask fuzz [--seconds N] [--sanitizer S] [target...]`: runs the
//! cargo-fuzz targets in `fuzz/` (all of them by default) for N seconds each
//! (default 30), starting from `fuzz/seeds/<target>/` (hand-written) and
//! `fuzz/regressions/<target>/` (past crashes), growing
//! `fuzz/corpus/<target>/` and then minimising it (`cargo fuzz cmin`). All
//! three are checked in and replayed by the `fuzz_corpus` tests in CI.
//!
//! cargo-fuzz needs nightly-only compiler flags; on a stable toolchain they are
//! unlocked with `RUSTC_BOOTSTRAP=1`. A crash is saved by libFuzzer under
//! `fuzz/artifacts/<target>/`; to keep it as a regression test, copy it into
//! `fuzz/regressions/<target>/` under a name that says what it found (the
//! replay test fails until the bug is fixed).

use std::path::Path;

use crate::{Result, cargo, cargo_has, run, workspace_root};

pub(crate) fn fuzz(args: &[String]) -> Result {
    let mut seconds: u64 = 30;
    let mut sanitizer = String::from("address");
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a whole number of seconds")?;
            }
            "--sanitizer" => {
                sanitizer = it
                    .next()
                    .cloned()
                    .ok_or("--sanitizer needs a value (address, none, ...)")?;
            }
            other => targets.push(other.to_owned()),
        }
    }
    let root = workspace_root();
    let all = list_targets(&root.join("fuzz").join("fuzz_targets"))?;
    if targets.is_empty() {
        targets = all.clone();
    }
    if let Some(unknown) = targets.iter().find(|t| !all.contains(t)) {
        return Err(format!(
            "no fuzz target `{unknown}`; there are: {}",
            all.join(", ")
        ));
    }
    ensure_cargo_fuzz()?;

    let mut crashed = Vec::new();
    for target in &targets {
        let corpus = root.join("fuzz").join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .map_err(|e| format!("cannot create {}: {e}", corpus.display()))?;
        let mut cmd = cargo();
        cmd.args(["fuzz", "run", "--sanitizer", &sanitizer, target])
            .arg(&corpus);
        // Read-only starting points: hand-written seeds and past crashes.
        for extra in ["seeds", "regressions"] {
            let dir = root.join("fuzz").join(extra).join(target);
            if dir.is_dir() {
                cmd.arg(dir);
            }
        }
        cmd.arg("--")
            .arg(format!("-max_total_time={seconds}"))
            // Keep new corpus entries small and readable.
            .arg("-max_len=4096")
            .env("RUSTC_BOOTSTRAP", "1");
        if let Err(e) = run(&format!("fuzz {target} for {seconds}s"), &mut cmd) {
            eprintln!("xtask fuzz: {e}");
            crashed.push(target.clone());
            continue;
        }
        // Keep the checked-in corpus to the inputs that add coverage.
        let mut cmin = cargo();
        cmin.args(["fuzz", "cmin", "--sanitizer", &sanitizer, target])
            .arg(&corpus)
            .env("RUSTC_BOOTSTRAP", "1");
        run(&format!("minimise the {target} corpus"), &mut cmin)?;
    }
    if crashed.is_empty() {
        eprintln!(
            "\nfuzz: {} target(s), {seconds}s each, no crash; new corpus entries are in fuzz/corpus/",
            targets.len()
        );
        Ok(())
    } else {
        Err(format!(
            "fuzz targets failed: {}. The crashing inputs are in fuzz/artifacts/<target>/: \
             copy each into fuzz/regressions/<target>/ (the fuzz_corpus tests then replay it), \
             fix the parser, and commit both",
            crashed.join(", ")
        ))
    }
}

fn list_targets(dir: &Path) -> Result<Vec<String>> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut targets: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    targets.sort();
    Ok(targets)
}

fn ensure_cargo_fuzz() -> Result {
    if cargo_has("fuzz") {
        return Ok(());
    }
    run(
        "install cargo-fuzz",
        cargo().args(["install", "--locked", "cargo-fuzz"]),
    )
}
