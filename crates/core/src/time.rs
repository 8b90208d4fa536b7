//! Points in time as ArcGIS counts them: milliseconds since the Unix epoch.
//!
//! ArcGIS speaks two dialects of time: `generateToken` answers with an
//! absolute `expires` in epoch **milliseconds**, while `oauth2/token` answers
//! with `expires_in` **seconds from now**. [`Timestamp`] is the one absolute
//! form everything in this workspace is normalised to, and [`Clock`] is how
//! "now" is obtained, so tests can move time without sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An absolute point in time, in whole milliseconds since 1970-01-01T00:00:00Z.
///
/// Arithmetic saturates instead of overflowing, so an absurd `expires_in`
/// from the network can never panic; it just lands far in the future.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::Timestamp;
///
/// let t = Timestamp::from_unix_millis(1_732_212_345_678);
/// assert_eq!(t.to_rfc3339(), "2024-11-21T18:05:45.678Z");
/// assert_eq!(t + Duration::from_secs(1), Timestamp::from_unix_millis(1_732_212_346_678));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);
    /// The largest representable time; used for "never expires".
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// This time moved forward by `d`, saturating at [`Timestamp::MAX`].
    pub fn saturating_add(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// This time moved back by `d`, saturating at the smallest representable time.
    pub fn saturating_sub(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }

    /// How long after `earlier` this time is; zero when it is not later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        let diff = self.0.saturating_sub(earlier.0);
        Duration::from_millis(u64::try_from(diff).unwrap_or(0))
    }

    /// This time as a [`SystemTime`] (clamped to the epoch for negative values).
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.0).unwrap_or(0))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2024-11-21T18:05:45.678Z`.
    ///
    /// Years outside 0000–9999 are clamped so the output always parses.
    pub fn to_rfc3339(self) -> String {
        // Clamp to 0000-01-01 .. 9999-12-31T23:59:59.999Z.
        const MIN: i64 = -62_167_219_200_000;
        const MAX: i64 = 253_402_300_799_999;
        let ms = self.0.clamp(MIN, MAX);
        let secs = ms.div_euclid(1000);
        let millis = ms.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60
        )
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: Duration) -> Timestamp {
        self.saturating_add(rhs)
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: Duration) -> Timestamp {
        self.saturating_sub(rhs)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.to_rfc3339())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A source of "now". Inject one wherever expiry is decided, so tests can move
/// time instead of sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The system's wall clock, read at most once per tick of the OS's coarse
/// monotonic clock (every 1 to 4 ms on Linux); the default clock of the
/// token manager.
///
/// Every cached-token call asks the time, and [`SystemClock`] (one
/// `SystemTime::now()`) costs 20 to 75 ns on a virtual machine, several times
/// what the rest of that call costs. This clock reads the coarse monotonic
/// clock instead (`CLOCK_MONOTONIC_COARSE` on Linux, through the
/// `coarsetime` crate: a few nanoseconds, no system call) and asks the wall
/// clock again only when that has ticked since the last read, so the time
/// it gives lags the wall clock by at most one coarse tick. Expiry is
/// decided minutes ahead of time; a few milliseconds do not matter.
///
/// A step of the wall clock (NTP, suspend and resume) is seen at the next
/// tick. Clones share the cached reading.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::{Clock, CoarseSystemClock, SystemClock};
///
/// let coarse = CoarseSystemClock::new();
/// let exact = SystemClock.now();
/// let gap = coarse.now().saturating_duration_since(exact)
///     + exact.saturating_duration_since(coarse.now());
/// assert!(gap < Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, Default)]
pub struct CoarseSystemClock(Arc<CoarseReading>);

/// The last wall-clock reading and the coarse tick it was taken in.
#[derive(Debug)]
struct CoarseReading {
    /// `coarsetime::Instant` ticks; `u64::MAX` before the first reading.
    tick: AtomicU64,
    /// Milliseconds since the Unix epoch, read during `tick`.
    wall: AtomicI64,
}

impl Default for CoarseReading {
    fn default() -> Self {
        CoarseReading {
            tick: AtomicU64::new(u64::MAX),
            wall: AtomicI64::new(0),
        }
    }
}

impl CoarseSystemClock {
    /// A clock that has not read the wall clock yet (its first `now()` does).
    pub fn new() -> Self {
        Self::default()
    }
}

impl Clock for CoarseSystemClock {
    fn now(&self) -> Timestamp {
        // Not `Instant::now()`: that also stores into a process-wide atomic,
        // which threads calling at once would fight over.
        let tick = coarsetime::Instant::now_without_cache_update().as_ticks();
        let reading = &self.0;
        if reading.tick.load(Ordering::Acquire) == tick {
            // Written before `tick` (Release below): a reading from this
            // tick, or from a later one if another thread just moved on.
            return Timestamp(reading.wall.load(Ordering::Relaxed));
        }
        let now = Timestamp::now();
        reading.wall.store(now.0, Ordering::Relaxed);
        reading.tick.store(tick, Ordering::Release);
        now
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use arcgis_auth_core::{Clock, ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp::from_unix_millis(0));
/// let other = clock.clone();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(other.now(), Timestamp::from_unix_millis(60_000));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start.as_unix_millis())))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(v.saturating_add(ms))
            });
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_unix_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_rfc3339(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(-1).to_rfc3339(),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(Timestamp::MAX.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp::from_unix_millis(i64::MIN).to_rfc3339(),
            "0000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(Timestamp::UNIX_EPOCH + Duration::MAX, Timestamp::MAX);
        let a = Timestamp::from_unix_millis(1000);
        assert_eq!(
            a.saturating_duration_since(Timestamp::from_unix_millis(5000)),
            Duration::ZERO
        );
        assert_eq!(
            Timestamp::from_unix_millis(5000).saturating_duration_since(a),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn coarse_clock_follows_the_wall_clock() {
        let coarse = CoarseSystemClock::new();
        let shared = coarse.clone();
        for _ in 0..50 {
            let before = SystemClock.now();
            let c = coarse.now();
            let after = SystemClock.now();
            // At most one coarse tick (a few ms, 10 ms at HZ=100) behind, never ahead.
            assert!(c <= after, "{c:?} ahead of {after:?}");
            assert!(before.saturating_duration_since(c) < Duration::from_millis(50));
            assert!(shared.now() >= c.saturating_sub(Duration::from_millis(50)));
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn system_time_round_trip() {
        let t = Timestamp::from_unix_millis(1_732_212_345_678);
        assert_eq!(Timestamp::from(t.to_system_time()), t);
    }
}
