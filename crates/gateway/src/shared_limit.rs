//! Rate limits shared by a fleet: one atomic GCRA script per request in Redis, and the process's own count while Redis does not answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::ratelimit::{Decision, Limiter, RateLimit};

/// How long one request waits for Redis before it is counted locally.
const ANSWER_WITHIN: Duration = Duration::from_millis(250);

/// After Redis failed, how long requests are counted locally before Redis is asked again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The GCRA of `ratelimit::Limiter`, atomically on the Redis server and on
/// its clock (`TIME`), so every gateway of a fleet counts against one
/// theoretical arrival time (TAT) per key, whatever their clocks say.
///
/// KEYS[1]: the key. ARGV: the interval (ms), the tolerance (ms).
/// Returns `{1, 0}` when allowed, `{0, wait_ms}` when limited. The key
/// expires when its TAT has passed (it would count as new by then).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if tat == nil or tat < now then tat = now end
local ahead = tat - now
if ahead > tolerance then
  return {0, ahead - tolerance}
end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', string.format('%d', next - now))
return {1, 0}
";

/// Rate limits counted in Redis, for every gateway sharing it.
///
/// When Redis does not answer (down, or slower than [`ANSWER_WITHIN`]),
/// the gateway **fails open to its own count**: the request is judged by
/// this process's in-memory limiter (so one process still enforces the
/// limit on its own, and a fleet of N admits at most N times it), a
/// warning is logged once per outage, and
/// `arcgis_gateway_rate_limit_fallbacks_total` counts each such request.
/// Redis is asked again [`RETRY_AFTER`] later.
pub(crate) struct SharedLimiter {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
    local: Limiter,
    metrics: Arc<Metrics>,
    /// Set while Redis is out: until when requests are counted locally.
    out_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl SharedLimiter {
    /// Limits in Redis over `conn`, under `{prefix}:ratelimit:`; `local` counts while Redis is out.
    pub(crate) fn new(
        conn: ConnectionManager,
        prefix: &str,
        local: Limiter,
        metrics: Arc<Metrics>,
    ) -> Self {
        SharedLimiter {
            conn,
            prefix: format!("{prefix}:ratelimit:"),
            script: Script::new(GCRA),
            local,
            metrics,
            out_until: Mutex::new(None),
        }
    }

    /// Counts one request of `key` against `limit`, across the fleet.
    pub(crate) async fn check(&self, key: &str, limit: RateLimit) -> Decision {
        if self.is_out() {
            self.metrics.limit_fallback();
            return self.local.check(key, limit);
        }
        let mut conn = self.conn.clone();
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation
            .arg(limit.interval_ms())
            .arg(limit.tolerance_ms());
        let answer = tokio::time::timeout(
            ANSWER_WITHIN,
            invocation.invoke_async::<(i64, i64)>(&mut conn),
        )
        .await;
        match answer {
            Ok(Ok((allowed, wait_ms))) => {
                self.back();
                if allowed == 1 {
                    Decision::Allowed
                } else {
                    Decision::Limited {
                        retry_after: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)),
                    }
                }
            }
            // The kind only: a Redis error's text may name the server.
            Ok(Err(err)) => self.fall_back(key, limit, &format!("{:?}", err.kind())),
            Err(_) => self.fall_back(key, limit, "no answer within 250 ms"),
        }
    }

    fn is_out(&self) -> bool {
        let Ok(out) = self.out_until.lock() else {
            return false;
        };
        out.is_some_and(|until| Instant::now() < until)
    }

    /// Redis answered: if it was out, say it is back.
    fn back(&self) {
        if let Ok(mut out) = self.out_until.lock()
            && out.take().is_some()
        {
            tracing::info!("Redis answers again: rate limits are shared by the fleet again");
        }
    }

    /// Redis failed `why`: count this request (and those of the next
    /// [`RETRY_AFTER`]) locally.
    fn fall_back(&self, key: &str, limit: RateLimit, why: &str) -> Decision {
        let first = match self.out_until.lock() {
            Ok(mut out) => out.replace(Instant::now() + RETRY_AFTER).is_none(),
            Err(_) => false,
        };
        if first {
            tracing::warn!(
                error = why,
                "Redis did not answer a rate-limit check: each gateway counts its own requests \
                 until it is back (a fleet of N admits up to N times a limit)"
            );
        }
        self.metrics.limit_fallback();
        self.local.check(key, limit)
    }
}
