//! `cargo xtask bench`: runs the benchmarks of `arcgis-auth-bench` (criterion's
//! against a private redis-server; `gateway_nginx` against Debian's nginx and
//! the release gateway binary, both prepared here) and writes
//! `target/bench-summary.json`, each figure beside its baseline, their ratio
//! and the target (docs/performance.md explains how to read it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{Result, cargo, ensure_nginx, run, start_redis, workspace_root};

/// One line of the summary.
struct Figure {
    name: &'static str,
    /// Median, in `unit`.
    value: Option<f64>,
    unit: &'static str,
    baseline: Option<f64>,
    /// What must hold, in words; `None` for figures reported for context.
    target: Option<&'static str>,
    /// Whether the target is met (`None` without a target).
    met: Option<bool>,
    note: Option<&'static str>,
}

impl Figure {
    fn ratio(&self) -> Option<f64> {
        match (self.value, self.baseline) {
            (Some(v), Some(b)) if b > 0.0 => Some(v / b),
            _ => None,
        }
    }
}

/// `bench [--no-run] [-- <criterion args>]`: `--no-run` only rewrites the
/// summary from the last results.
pub(crate) fn bench(args: &[String]) -> Result {
    let summary_only = args.iter().any(|a| a == "--no-run");
    let passthrough: Vec<&String> = args
        .iter()
        .skip_while(|a| a.as_str() != "--")
        .skip(1)
        .collect();
    if !summary_only {
        let redis = start_redis()?;
        let mut cmd = cargo();
        cmd.args(["bench", "-p", "arcgis-auth-bench"])
            .env("ARCGIS_AUTH_TEST_REDIS_URL", redis.url());
        let filters: Vec<&&String> = passthrough.iter().filter(|a| !a.starts_with('-')).collect();
        if filters.is_empty() || filters.iter().any(|f| "gateway_nginx".contains(f.as_str())) {
            // The gateway benchmark runs the real binary, built in release,
            // against Debian's nginx.
            let nginx = ensure_nginx()?;
            run(
                "cargo build --release -p arcgis-auth-gateway",
                cargo().args([
                    "build",
                    "--release",
                    "-p",
                    "arcgis-auth-gateway",
                    "--bin",
                    "arcgis-auth-gateway",
                ]),
            )?;
            let bin = target_dir().join("release").join("arcgis-auth-gateway");
            cmd.env("ARCGIS_BENCH_GATEWAY_BIN", bin)
                .env("ARCGIS_BENCH_NGINX", nginx);
        }
        if !passthrough.is_empty() {
            cmd.arg("--").args(passthrough);
        }
        run("cargo bench -p arcgis-auth-bench", &mut cmd)?;
        drop(redis);
    }
    let target = target_dir();
    let criterion = target.join("criterion");
    let figures = figures(&criterion);
    let json = to_json(&figures);
    let out = target.join("bench-summary.json");
    std::fs::write(&out, &json).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    print_table(&figures);
    println!("\nwrote {}", out.display());
    Ok(())
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The median criterion estimated for `group/bench`, in nanoseconds.
fn median_ns(criterion: &Path, group: &str, bench: &str) -> Option<f64> {
    let path = criterion
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    // {"mean":{...},"median":{"confidence_interval":{...},"point_estimate":123.4,...},...}
    let median = text.split("\"median\":").nth(1)?;
    number_after(median, "\"point_estimate\":")
}

/// The JSON number that follows the first `key` in `text`.
fn number_after(text: &str, key: &str) -> Option<f64> {
    let after = text.split(key).nth(1)?;
    let number: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    number.parse().ok()
}

/// The median paired time ratio the `middleware_overhead` bench wrote to
/// `<target>/tmp/middleware_overhead_paired.json` (next to `criterion/`).
fn paired_ratio(criterion: &Path) -> Option<f64> {
    let path = criterion
        .parent()?
        .join("tmp")
        .join("middleware_overhead_paired.json");
    let text = std::fs::read_to_string(path).ok()?;
    number_after(&text, "\"median\":")
}

/// The figures `gateway_nginx` wrote to `<target>/tmp/gateway_nginx.json`.
fn gateway_figures(criterion: &Path, out: &mut Vec<Figure>) {
    let text = criterion
        .parent()
        .map(|t| t.join("tmp").join("gateway_nginx.json"))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let get = |key: &str| number_after(&text, &format!("\"{key}\":"));
    let ratio = get("gateway_vs_nginx");
    out.push(Figure {
        name: "gateway_nginx/throughput_vs_nginx",
        value: ratio,
        unit: "x",
        baseline: ratio.map(|_| 1.0),
        target: Some(">= 0.8x nginx's throughput (1 KiB GETs, 64 keep-alive connections)"),
        met: Some(ratio.is_some_and(|r| r >= 0.8)),
        note: Some(
            "value: the median over the rounds of gateway req/s / nginx req/s, an auth = \"none\" route; nginx worker_processes = the gateway's TOKIO_WORKER_THREADS",
        ),
    });
    out.push(Figure {
        name: "gateway_nginx/requests_per_second",
        value: get("gateway_rps"),
        unit: "req/s",
        baseline: get("nginx_rps"),
        target: None,
        met: None,
        note: Some("medians over the rounds; this ratio is a throughput ratio (higher is better)"),
    });
    out.push(Figure {
        name: "gateway_nginx/direct_requests_per_second",
        value: get("direct_rps"),
        unit: "req/s",
        baseline: None,
        target: None,
        met: None,
        note: Some("the same load straight to the upstream, for scale"),
    });
    out.push(Figure {
        name: "gateway_nginx/app_route_throughput_vs_nginx",
        value: get("gateway_app_vs_nginx"),
        unit: "x",
        baseline: get("gateway_app_vs_nginx").map(|_| 1.0),
        target: None,
        met: None,
        note: Some(
            "an app:NAME route: browser credentials stripped, the cached token added, the JSON answer read for a 498",
        ),
    });
    for (name, gateway, nginx) in [
        (
            "gateway_nginx/added_p50_latency",
            "gateway_added_p50_us",
            "nginx_added_p50_us",
        ),
        (
            "gateway_nginx/added_p99_latency",
            "gateway_added_p99_us",
            "nginx_added_p99_us",
        ),
        (
            "gateway_nginx/app_route_added_p50_latency",
            "gateway_app_added_p50_us",
            "nginx_added_p50_us",
        ),
        (
            "gateway_nginx/app_route_added_p99_latency",
            "gateway_app_added_p99_us",
            "nginx_added_p99_us",
        ),
    ] {
        out.push(Figure {
            name,
            value: get(gateway),
            unit: "us",
            baseline: get(nginx),
            target: None,
            met: None,
            note: Some(
                "added to the direct request's percentile under the same load; baseline: nginx's",
            ),
        });
    }
    for (name, key) in [
        (
            "gateway_memory/1gib_download_peak_above_idle",
            "download_open_peak_above_idle_mib",
        ),
        (
            "gateway_memory/1gib_download_app_route_peak_above_idle",
            "download_app_peak_above_idle_mib",
        ),
    ] {
        let value = get(key);
        out.push(Figure {
            name,
            value,
            unit: "MiB",
            baseline: None,
            target: Some("< 50 MiB above idle"),
            met: Some(value.is_some_and(|v| v < 50.0)),
            note: Some("the gateway process's VmHWM after streaming 1 GiB, less its idle VmRSS"),
        });
    }
    out.push(Figure {
        name: "gateway_memory/idle_rss",
        value: get("idle_rss_mib"),
        unit: "MiB",
        baseline: None,
        target: None,
        met: None,
        note: Some("VmRSS of a fresh gateway after one request on each route"),
    });
}

fn figures(criterion: &Path) -> Vec<Figure> {
    let ns = |group: &str, bench: &str| median_ns(criterion, group, bench);
    let scaled = |v: Option<f64>, by: f64| v.map(|v| v / by);
    let mut out = Vec::new();

    for (name, manager, baseline) in [
        (
            "cached_token/single_caller",
            "manager",
            "rwlock_arc_baseline",
        ),
        (
            "cached_token/2_threads",
            "manager_2_threads",
            "rwlock_arc_baseline_2_threads",
        ),
    ] {
        let value = ns("cached_token", manager);
        let baseline = ns("cached_token", baseline);
        let met = match (value, baseline) {
            (Some(v), Some(b)) => Some(v < 100.0 && v <= 2.0 * b),
            _ => Some(false),
        };
        out.push(Figure {
            name,
            value,
            unit: "ns",
            baseline,
            target: Some("median < 100 ns and <= 2x baseline"),
            met,
            note: None,
        });
    }
    out.push(Figure {
        name: "cached_token/manager_on_manual_clock",
        value: ns("cached_token", "manager_manual_clock"),
        unit: "ns",
        baseline: ns("cached_token", "rwlock_arc_baseline"),
        target: None,
        met: None,
        note: Some("the manager with an atomic-load clock: its own cost without the OS clock read"),
    });
    out.push(Figure {
        name: "cached_token/system_clock_now",
        value: ns("cached_token", "system_clock_now"),
        unit: "ns",
        baseline: None,
        target: None,
        met: None,
        note: Some("one SystemClock::now(), the precise wall-clock read the manager no longer makes on its cached path (it uses CoarseSystemClock)"),
    });

    let storm = scaled(ns("refresh_storm", "storm_10000_callers"), 1e6);
    let round_trip = scaled(ns("refresh_storm", "plain_round_trip"), 1e6);
    out.push(Figure {
        name: "refresh_storm/10000_callers_vs_round_trip",
        value: storm,
        unit: "ms",
        baseline: round_trip,
        target: Some("<= 1.5x one plain token round trip (exactly one request: asserted)"),
        met: Some(matches!((storm, round_trip), (Some(s), Some(r)) if s <= 1.5 * r)),
        note: None,
    });
    out.push(Figure {
        name: "refresh_storm/10000_callers_vs_fan_out",
        value: storm,
        unit: "ms",
        baseline: scaled(ns("refresh_storm", "fan_out_baseline"), 1e6),
        target: None,
        met: None,
        note: Some(
            "baseline: spawn 10,000 tasks, one plain request, its token to all through a watch channel",
        ),
    });
    let callers = scaled(ns("refresh_storm", "callers_on_a_fresh_token"), 1e6);
    out.push(Figure {
        name: "refresh_storm/10000_callers_vs_callers_on_a_fresh_token",
        value: storm,
        unit: "ms",
        baseline: callers,
        target: None,
        met: None,
        note: Some(
            "baseline: the same 10,000 spawned callers on a fresh token (no request): the callers' own cost",
        ),
    });
    out.push(Figure {
        name: "refresh_storm/storm_beyond_its_callers_vs_round_trip",
        value: match (storm, callers) {
            (Some(s), Some(c)) => Some(s - c),
            _ => None,
        },
        unit: "ms",
        baseline: round_trip,
        target: None,
        met: None,
        note: Some(
            "what the storm costs beyond spawning and answering its 10,000 callers, against one plain round trip",
        ),
    });

    let middleware = scaled(ns("middleware_overhead", "middleware_2000_gets"), 1e6);
    let fixed_header = scaled(
        ns("middleware_overhead", "fixed_header_2000_gets_baseline"),
        1e6,
    );
    out.push(Figure {
        name: "middleware_overhead/2000_gets",
        value: middleware,
        unit: "ms",
        baseline: fixed_header,
        target: None,
        met: None,
        note: Some(
            "criterion's medians, measured one after the other: the target is checked on the paired figure below",
        ),
    });
    let paired = paired_ratio(criterion);
    out.push(Figure {
        name: "middleware_overhead/2000_gets_paired",
        value: paired,
        unit: "x",
        baseline: paired.map(|_| 1.0),
        target: Some(
            "throughput >= 0.95x the fixed-header client: median time ratio of 30 back-to-back pairs <= 1.053",
        ),
        met: Some(paired.is_some_and(|r| 1.0 / r >= 0.95)),
        note: Some("value: the median of the pairs' time ratios (middleware / fixed header)"),
    });

    for store in ["memory", "file", "redis"] {
        let value = scaled(ns("store_roundtrip", store), 1e3);
        let baseline = scaled(ns("store_roundtrip", &format!("{store}_baseline")), 1e3);
        let (target, met) = if store == "redis" {
            (
                Some("<= 1.3x raw GET+SET"),
                Some(matches!((value, baseline), (Some(v), Some(b)) if v <= 1.3 * b)),
            )
        } else {
            (None, None)
        };
        out.push(Figure {
            name: match store {
                "memory" => "store_roundtrip/memory",
                "file" => "store_roundtrip/file",
                _ => "store_roundtrip/redis",
            },
            value,
            unit: "us",
            baseline,
            target,
            met,
            note: None,
        });
    }
    out.push(Figure {
        name: "store_roundtrip/file_vs_durable_baseline",
        value: scaled(ns("store_roundtrip", "file"), 1e3),
        unit: "us",
        baseline: scaled(ns("store_roundtrip", "file_baseline_fsync"), 1e3),
        target: None,
        met: None,
        note: Some("baseline: read + write + fsync + rename + fsync of the directory, as durable as the store"),
    });
    out.push(Figure {
        name: "store_roundtrip/redis_without_remote_events",
        value: scaled(ns("store_roundtrip", "redis_without_remote_events"), 1e3),
        unit: "us",
        baseline: scaled(ns("store_roundtrip", "redis_baseline"), 1e3),
        target: None,
        met: None,
        note: Some(
            "remote_events(false): since the listener starts only on subscribe(), the same path as store_roundtrip/redis (their gap is run-to-run noise)",
        ),
    });
    out.push(Figure {
        name: "store_roundtrip/redis_with_subscriber",
        value: scaled(ns("store_roundtrip", "redis_with_subscriber"), 1e3),
        unit: "us",
        baseline: scaled(ns("store_roundtrip", "redis_baseline"), 1e3),
        target: None,
        met: None,
        note: Some("a store somebody subscribed to: its listener receives (and skips) the echo of every save"),
    });
    gateway_figures(criterion, &mut out);
    out
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "null".into(),
    }
}

fn text(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        None => "null".into(),
    }
}

fn to_json(figures: &[Figure]) -> String {
    let mut s = String::from("{\"benchmarks\":[\n");
    for (i, f) in figures.iter().enumerate() {
        let met = match f.met {
            Some(m) => m.to_string(),
            None => "null".into(),
        };
        let _ = write!(
            s,
            "  {{\"name\":{},\"value\":{},\"unit\":{},\"baseline\":{},\"ratio\":{},\"target\":{},\"met\":{}",
            text(Some(f.name)),
            num(f.value),
            text(Some(f.unit)),
            num(f.baseline),
            num(f.ratio()),
            text(f.target),
            met
        );
        if let Some(note) = f.note {
            let _ = write!(s, ",\"note\":{}", text(Some(note)));
        }
        s.push('}');
        s.push_str(if i + 1 < figures.len() { ",\n" } else { "\n" });
    }
    s.push_str("]}\n");
    s
}

fn print_table(figures: &[Figure]) {
    println!(
        "\n{:<44} {:>12} {:>12} {:>8}  target",
        "benchmark", "value", "baseline", "ratio"
    );
    for f in figures {
        let cell = |v: Option<f64>| match v {
            Some(v) => format!("{v:.3} {}", f.unit),
            None => "-".into(),
        };
        let ratio = f.ratio().map_or("-".into(), |r| format!("{r:.2}x"));
        let verdict = match f.met {
            Some(true) => "MET",
            Some(false) => "NOT MET",
            None => "",
        };
        println!(
            "{:<44} {:>12} {:>12} {:>8}  {} {}",
            f.name,
            cell(f.value),
            cell(f.baseline),
            ratio,
            f.target.unwrap_or("(context)"),
            verdict
        );
    }
}
