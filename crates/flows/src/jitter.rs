//! Deterministic, seedable jitter without a random-number crate.
//!
//! Refresh times must not move every time a token is looked at (a token
//! whose refresh time jumps around could be "due" for one caller and "fresh"
//! for the next), so the jitter of a token is a pure function of a per-manager
//! seed and the token's expiry. Backoff jitter mixes in a counter instead.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A seeded source of numbers in `[0, 1)`.
#[derive(Debug)]
pub(crate) struct Jitter {
    seed: u64,
    counter: AtomicU64,
}

impl Jitter {
    /// A jitter source with `seed`, or a random seed when `None`.
    pub(crate) fn new(seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            // `RandomState` is seeded from the OS once per process and per
            // instance: enough to keep a fleet out of lockstep.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(0x9e37_79b9_7f4a_7c15);
            h.finish()
        });
        Jitter {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    /// A number in `[0, 1)` that depends only on the seed and `salt`.
    pub(crate) fn unit_for(&self, salt: u64) -> f64 {
        let bits = splitmix64(self.seed ^ splitmix64(salt)) >> 11;
        // 53 random bits scaled into [0, 1).
        bits as f64 / (1u64 << 53) as f64
    }

    /// A fresh number in `[0, 1)` on every call.
    pub(crate) fn next_unit(&self) -> f64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.unit_for(n ^ 0xa076_1d64_78bd_642f)
    }

    /// A duration between half of `ceiling` and all of it ("equal jitter").
    pub(crate) fn backoff(&self, ceiling: Duration) -> Duration {
        let half = ceiling / 2;
        half + half.mul_f64(self.next_unit())
    }
}

/// The SplitMix64 finaliser: a fast, well-mixed 64-bit permutation.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers() {
        let a = Jitter::new(Some(7));
        let b = Jitter::new(Some(7));
        assert_eq!(a.unit_for(42), b.unit_for(42));
        assert_ne!(a.unit_for(42), a.unit_for(43));
        assert_ne!(Jitter::new(Some(8)).unit_for(42), a.unit_for(42));
    }

    #[test]
    fn units_are_in_range_and_spread() {
        let j = Jitter::new(Some(1));
        let values: Vec<f64> = (0..1000).map(|_| j.next_unit()).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        let low = values.iter().filter(|v| **v < 0.5).count();
        assert!((400..600).contains(&low), "{low} of 1000 below 0.5");
    }

    #[test]
    fn backoff_stays_between_half_and_ceiling() {
        let j = Jitter::new(Some(3));
        let ceiling = Duration::from_millis(800);
        for _ in 0..100 {
            let d = j.backoff(ceiling);
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?}");
        }
    }
}
