//! `GET /metrics`: the gateway's counters and upstream latency histogram, in Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the upstream latency buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Debug, Default)]
struct State {
    /// By route, then status.
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    upstream: BTreeMap<String, Histogram>,
    renewals: BTreeMap<(String, &'static str), u64>,
    retries: BTreeMap<String, u64>,
    limited: BTreeMap<String, u64>,
    /// Requests counted by the process alone because the shared limits' store did not answer.
    limit_fallbacks: u64,
}

/// Every metric of one gateway; kept across configuration reloads.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    state: Mutex<State>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut State)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s);
        }
    }

    /// One answer of a proxy path or `/token`: `route` is the route's URL as
    /// configured, `none` when no route matched, `/token` for token requests.
    pub(crate) fn request(&self, route: &str, status: u16) {
        self.with(|s| {
            update(&mut s.requests, route, |by| {
                *by.entry(status).or_default() += 1
            })
        });
    }

    /// How long an upstream took to send its answer's headers.
    pub(crate) fn upstream_latency(&self, route: &str, took: Duration) {
        self.with(|s| update(&mut s.upstream, route, |h| h.observe(took.as_secs_f64())));
    }

    /// A sign-in or renewal at a token endpoint for `credential` (`app:NAME`, `server:NAME`).
    pub(crate) fn renewal(&self, credential: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.with(|s| {
            *s.renewals
                .entry((credential.to_owned(), outcome))
                .or_default() += 1;
        });
    }

    /// A request sent again after an upstream refused the token (498/499).
    pub(crate) fn retry(&self, credential: &str) {
        self.with(|s| *s.retries.entry(credential.to_owned()).or_default() += 1);
    }

    /// A request refused with 429 under `scope` (`token` or `route:URL`).
    pub(crate) fn rate_limited(&self, scope: &str) {
        self.with(|s| *s.limited.entry(scope.to_owned()).or_default() += 1);
    }

    /// A request counted against this process's own rate limits because the
    /// shared store (Redis) did not answer.
    pub(crate) fn limit_fallback(&self) {
        self.with(|s| s.limit_fallbacks += 1);
    }

    /// The exposition: Prometheus text format 0.0.4.
    pub(crate) fn render(&self) -> String {
        let Ok(s) = self.state.lock() else {
            return String::new();
        };
        let mut out = String::new();
        family(
            &mut out,
            "arcgis_gateway_requests_total",
            "counter",
            "Answers of proxy paths and GET /token, by route and HTTP status.",
        );
        for (route, statuses) in &s.requests {
            let route = escape(route);
            for (status, n) in statuses {
                let _ = writeln!(
                    out,
                    "arcgis_gateway_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        family(
            &mut out,
            "arcgis_gateway_upstream_latency_seconds",
            "histogram",
            "Time until an upstream's answer headers arrived, by route.",
        );
        for (route, h) in &s.upstream {
            let route = escape(route);
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "arcgis_gateway_upstream_latency_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "arcgis_gateway_upstream_latency_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "arcgis_gateway_upstream_latency_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "arcgis_gateway_upstream_latency_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        family(
            &mut out,
            "arcgis_gateway_token_renewals_total",
            "counter",
            "Sign-ins and renewals at token endpoints, by credential and outcome.",
        );
        for ((credential, outcome), n) in &s.renewals {
            let _ = writeln!(
                out,
                "arcgis_gateway_token_renewals_total{{credential=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(credential)
            );
        }
        family(
            &mut out,
            "arcgis_gateway_invalid_token_retries_total",
            "counter",
            "Requests sent again with a renewed token after a 498/499, by credential.",
        );
        for (credential, n) in &s.retries {
            let _ = writeln!(
                out,
                "arcgis_gateway_invalid_token_retries_total{{credential=\"{}\"}} {n}",
                escape(credential)
            );
        }
        family(
            &mut out,
            "arcgis_gateway_rate_limited_total",
            "counter",
            "Requests answered 429, by limit (token, or route:URL).",
        );
        for (scope, n) in &s.limited {
            let _ = writeln!(
                out,
                "arcgis_gateway_rate_limited_total{{limit=\"{}\"}} {n}",
                escape(scope)
            );
        }
        family(
            &mut out,
            "arcgis_gateway_rate_limit_fallbacks_total",
            "counter",
            "Rate-limited requests counted by this process alone because the shared store (Redis) did not answer.",
        );
        let _ = writeln!(
            out,
            "arcgis_gateway_rate_limit_fallbacks_total {}",
            s.limit_fallbacks
        );
        out
    }
}

/// Applies `f` to the value under `key`, made on first use: the key is
/// copied only then, so counting a request allocates nothing.
fn update<V: Default>(map: &mut BTreeMap<String, V>, key: &str, f: impl FnOnce(&mut V)) {
    match map.get_mut(key) {
        Some(v) => f(v),
        None => f(map.entry(key.to_owned()).or_default()),
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value: `\`, `"` and line feeds escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_prometheus_text() {
        let m = Metrics::default();
        m.request("https://h.example/a", 200);
        m.request("https://h.example/a", 200);
        m.request("none", 403);
        m.upstream_latency("https://h.example/a", Duration::from_millis(30));
        m.renewal("app:geo", true);
        m.retry("app:geo");
        m.rate_limited("route:x\"y");
        let text = m.render();
        for line in [
            "# TYPE arcgis_gateway_requests_total counter",
            "arcgis_gateway_requests_total{route=\"https://h.example/a\",status=\"200\"} 2",
            "arcgis_gateway_requests_total{route=\"none\",status=\"403\"} 1",
            "# TYPE arcgis_gateway_upstream_latency_seconds histogram",
            "arcgis_gateway_upstream_latency_seconds_bucket{route=\"https://h.example/a\",le=\"0.025\"} 0",
            "arcgis_gateway_upstream_latency_seconds_bucket{route=\"https://h.example/a\",le=\"0.05\"} 1",
            "arcgis_gateway_upstream_latency_seconds_bucket{route=\"https://h.example/a\",le=\"+Inf\"} 1",
            "arcgis_gateway_upstream_latency_seconds_count{route=\"https://h.example/a\"} 1",
            "arcgis_gateway_token_renewals_total{credential=\"app:geo\",outcome=\"ok\"} 1",
            "arcgis_gateway_invalid_token_retries_total{credential=\"app:geo\"} 1",
            "arcgis_gateway_rate_limited_total{limit=\"route:x\\\"y\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
