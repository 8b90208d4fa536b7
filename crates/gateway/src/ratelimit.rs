//! Rate limits: a keyed GCRA (generic cell rate algorithm) over the gateway's clock, which of them counts, and who the client is.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arcgis_auth_core::Clock;
use http::HeaderMap;
use ipnet::IpNet;

use crate::shared_limit::SharedLimiter;

/// `requests` per `per`: a route's `rate_limit = { requests, per_seconds }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// How many requests one client may make in one period (also the largest burst).
    pub requests: u32,
    /// The period.
    pub per: Duration,
}

impl RateLimit {
    /// The time one request "costs": `per / requests`, at least 1 ms.
    pub(crate) fn interval_ms(&self) -> i64 {
        let per = i64::try_from(self.per.as_millis()).unwrap_or(i64::MAX);
        (per / i64::from(self.requests.max(1))).max(1)
    }

    /// How far ahead of now a client's theoretical arrival time may run: a burst of `requests`.
    pub(crate) fn tolerance_ms(&self) -> i64 {
        self.interval_ms()
            .saturating_mul(i64::from(self.requests.max(1)) - 1)
    }
}

/// Whether a request may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Within the limit.
    Allowed,
    /// Over it: try again after this long (rounded up to whole seconds for `Retry-After`).
    Limited { retry_after: Duration },
}

/// Keeps entries whose theoretical arrival time is still ahead; pruned when the map grows.
const PRUNE_ABOVE: usize = 10_000;

/// The keyed limiter. The state of one key is one number, its theoretical
/// arrival time (TAT), so the same algorithm can later live in a shared store.
#[derive(Debug)]
pub(crate) struct Limiter {
    clock: Arc<dyn Clock>,
    tat: Mutex<HashMap<String, i64>>,
}

impl Limiter {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        Limiter {
            clock,
            tat: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `key` against `limit`.
    pub(crate) fn check(&self, key: &str, limit: RateLimit) -> Decision {
        let now = self.clock.now().as_unix_millis();
        let interval = limit.interval_ms();
        let tolerance = limit.tolerance_ms();
        let Ok(mut map) = self.tat.lock() else {
            // A poisoned map only means a panic elsewhere: do not refuse traffic for it.
            return Decision::Allowed;
        };
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let ahead = tat - now;
        if ahead > tolerance {
            let wait = u64::try_from(ahead - tolerance).unwrap_or(0);
            return Decision::Limited {
                retry_after: Duration::from_millis(wait),
            };
        }
        map.insert(key.to_owned(), tat.saturating_add(interval));
        Decision::Allowed
    }
}

/// The gateway's rate limits: counted in this process, or in Redis for a fleet.
#[derive(Debug)]
pub(crate) enum Limits {
    /// This process's own count (a memory or file store).
    Local(Limiter),
    /// Shared by every gateway on the Redis store.
    Shared(SharedLimiter),
}

impl Limits {
    /// Counts one request of `key` against `limit`.
    pub(crate) async fn check(&self, key: &str, limit: RateLimit) -> Decision {
        match self {
            Limits::Local(local) => local.check(key, limit),
            Limits::Shared(shared) => shared.check(key, limit).await,
        }
    }
}

/// Who is asking: the peer's address, or, when the peer is a trusted proxy,
/// the nearest `X-Forwarded-For` address that is not itself a trusted proxy.
pub(crate) fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer.map(|p| canonical(p.ip()))?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .map(|s| s.parse::<IpAddr>().map(canonical))
        .collect::<Result<_, _>>()
        // An unreadable header: believe none of it.
        .unwrap_or_default();
    // From the nearest hop outwards: the first address not of a trusted proxy
    // is the client; a spoofed entry further left is never reached.
    let mut client = peer;
    for ip in forwarded.into_iter().rev() {
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// `::ffff:1.2.3.4` is `1.2.3.4`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcgis_auth_core::{ManualClock, Timestamp};

    fn limiter() -> (ManualClock, Limiter) {
        let clock = ManualClock::new(Timestamp::from_unix_millis(1_000_000));
        (clock.clone(), Limiter::new(Arc::new(clock)))
    }

    #[test]
    fn a_burst_of_the_limit_then_one_per_interval() {
        let (clock, l) = limiter();
        let limit = RateLimit {
            requests: 3,
            per: Duration::from_secs(60),
        };
        for _ in 0..3 {
            assert_eq!(l.check("a", limit), Decision::Allowed);
        }
        let Decision::Limited { retry_after } = l.check("a", limit) else {
            panic!("the fourth request in a minute is limited");
        };
        assert_eq!(retry_after, Duration::from_secs(20));
        // Another key has its own budget.
        assert_eq!(l.check("b", limit), Decision::Allowed);
        clock.advance(Duration::from_secs(19));
        assert!(matches!(l.check("a", limit), Decision::Limited { .. }));
        clock.advance(Duration::from_secs(1));
        assert_eq!(l.check("a", limit), Decision::Allowed);
        assert!(matches!(l.check("a", limit), Decision::Limited { .. }));
        // A quiet period refills the whole burst, no more.
        clock.advance(Duration::from_secs(600));
        for _ in 0..3 {
            assert_eq!(l.check("a", limit), Decision::Allowed);
        }
        assert!(matches!(l.check("a", limit), Decision::Limited { .. }));
    }

    #[test]
    fn over_a_long_run_the_rate_is_the_limit() {
        let (clock, l) = limiter();
        let limit = RateLimit {
            requests: 10,
            per: Duration::from_secs(1),
        };
        let mut allowed = 0;
        for _ in 0..10_000 {
            if l.check("k", limit) == Decision::Allowed {
                allowed += 1;
            }
            clock.advance(Duration::from_millis(1));
        }
        // 10 s at 10/s, plus the first burst.
        assert_eq!(allowed, 100 + 9);
    }

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let outside: SocketAddr = "203.0.113.5:4000".parse().expect("addr");
        let proxy: SocketAddr = "10.1.2.3:4000".parse().expect("addr");
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        // An untrusted peer's header is ignored.
        assert_eq!(
            client_ip(Some(outside), &headers("198.51.100.7"), &trusted),
            Some(ip("203.0.113.5"))
        );
        // A trusted peer's is read from the right: a spoofed left entry is not reached.
        assert_eq!(
            client_ip(Some(proxy), &headers("1.1.1.1, 198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // Chains of trusted proxies are skipped.
        assert_eq!(
            client_ip(Some(proxy), &headers("198.51.100.7, 10.9.9.9"), &trusted),
            Some(ip("198.51.100.7"))
        );
        // No header, or an unreadable one: the proxy itself.
        assert_eq!(
            client_ip(Some(proxy), &HeaderMap::new(), &trusted),
            Some(ip("10.1.2.3"))
        );
        assert_eq!(
            client_ip(Some(proxy), &headers("not-an-ip"), &trusted),
            Some(ip("10.1.2.3"))
        );
        // IPv4-mapped peers are their IPv4 address.
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:1".parse().expect("addr");
        assert_eq!(
            client_ip(Some(mapped), &headers("198.51.100.7"), &trusted),
            Some(ip("198.51.100.7"))
        );
    }
}
