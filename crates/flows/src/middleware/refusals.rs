//! Origins that keep rejecting freshly renewed tokens, and when to stop
//! renewing for them.
//!
//! One rejection of a freshly renewed token proves little: on a portal that
//! expires tokens early (an admin revoke, a password change, or a test portal
//! expiring everything every few hundred milliseconds), the renewed token may
//! simply have expired again before the retry landed. An origin that does it
//! [`STRIKES`] times in a row, with no accepted request in between, will not
//! take this token at all: for a while its rejections are handed back without
//! renewing again. Any accepted request clears the record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arcgis_auth_core::{Origin, Timestamp};

/// How many times in a row an origin must reject a freshly renewed token
/// before it is cooled down.
pub(crate) const STRIKES: u8 = 2;

#[derive(Debug, Default)]
struct Record {
    /// Freshly renewed tokens rejected in a row.
    strikes: u8,
    /// Until when the origin's rejections are not worth a renewal.
    until: Option<Timestamp>,
}

/// The per-origin records. The accepted-request path costs one atomic load
/// while no origin has a record.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    records: Mutex<HashMap<Origin, Record>>,
    any: AtomicBool,
}

impl Refusals {
    fn records(&self) -> MutexGuard<'_, HashMap<Origin, Record>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `origin`'s rejections are, at `now`, handed back without a
    /// renewal.
    pub(crate) fn cooling_down(&self, origin: &Origin, now: Timestamp) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let mut records = self.records();
        let Some(record) = records.get_mut(origin) else {
            return false;
        };
        match record.until {
            Some(until) if now < until => true,
            Some(_) => {
                // Over: the next rejection renews again (and, still a
                // strike, cools the origin down again at once).
                record.until = None;
                false
            }
            None => false,
        }
    }

    /// `origin` rejected a freshly renewed token at `now`; returns whether it
    /// is now cooled down for `cooldown`.
    pub(crate) fn rejected(&self, origin: Origin, now: Timestamp, cooldown: Duration) -> bool {
        let mut records = self.records();
        let record = records.entry(origin).or_default();
        record.strikes = record.strikes.saturating_add(1);
        let cooled = record.strikes >= STRIKES && !cooldown.is_zero();
        if cooled {
            record.until = Some(now + cooldown);
        }
        self.any.store(true, Ordering::Release);
        cooled
    }

    /// `origin` accepted a token: it is not refusing this session.
    pub(crate) fn accepted(&self, origin: &Origin) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut records = self.records();
        records.remove(origin);
        if records.is_empty() {
            self.any.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn origin(s: &str) -> Origin {
        Origin::parse(s).unwrap()
    }

    #[test]
    fn cools_down_after_strikes_in_a_row_only() {
        let r = Refusals::default();
        let (a, now) = (
            origin("https://a.example.com"),
            Timestamp::from_unix_millis(0),
        );
        assert!(!r.rejected(a.clone(), now, MINUTE));
        assert!(!r.cooling_down(&a, now));
        assert!(r.rejected(a.clone(), now, MINUTE));
        assert!(r.cooling_down(&a, now + Duration::from_secs(59)));
        assert!(!r.cooling_down(&origin("https://b.example.com"), now));
        // Over: the next strike cools it down again at once.
        let later = now + MINUTE;
        assert!(!r.cooling_down(&a, later));
        assert!(r.rejected(a.clone(), later, MINUTE));
        assert!(r.cooling_down(&a, later));
    }

    #[test]
    fn an_accepted_request_clears_the_record() {
        let r = Refusals::default();
        let (a, now) = (
            origin("https://a.example.com"),
            Timestamp::from_unix_millis(0),
        );
        r.rejected(a.clone(), now, MINUTE);
        r.accepted(&a);
        assert!(
            !r.rejected(a.clone(), now, MINUTE),
            "the count started over"
        );
        r.rejected(a.clone(), now, MINUTE);
        assert!(r.cooling_down(&a, now));
        r.accepted(&a);
        assert!(!r.cooling_down(&a, now));
        assert!(!r.any.load(Ordering::Acquire));
    }

    #[test]
    fn a_zero_cooldown_never_cools_down() {
        let r = Refusals::default();
        let (a, now) = (
            origin("https://a.example.com"),
            Timestamp::from_unix_millis(0),
        );
        for _ in 0..5 {
            assert!(!r.rejected(a.clone(), now, Duration::ZERO));
            assert!(!r.cooling_down(&a, now));
        }
    }
}
