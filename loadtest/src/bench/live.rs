//! Counters of a running step, shared by the requests that update them and the progress
//! display that reads them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the progress display reads while the run goes on.
#[derive(Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub ttft: LiveHist,
}

impl Live {
    pub fn reset(&self) {
        self.sent.store(0, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.ttft.reset();
    }
}

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// A lock-free log-linear histogram of microsecond values (32 buckets per power of two, so
/// about 3 % resolution), for the running TTFT median.
pub struct LiveHist {
    counts: Box<[AtomicU64]>,
}

impl Default for LiveHist {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bucket(us: u64) -> usize {
    if us < SUB {
        us as usize
    } else {
        let e = u64::from(63 - us.leading_zeros());
        let top = us >> (e - u64::from(SUB_BITS));
        ((e - u64::from(SUB_BITS) + 1) * SUB + (top - SUB)) as usize
    }
}

/// The middle of bucket `i`.
fn bucket_mid(i: usize) -> f64 {
    let i = i as u64;
    if i < SUB {
        return i as f64;
    }
    let e = i / SUB + u64::from(SUB_BITS) - 1;
    let top = i % SUB + SUB;
    let shift = e - u64::from(SUB_BITS);
    let lower = (top << shift) as f64;
    lower + (1u64 << shift) as f64 / 2.0
}

impl LiveHist {
    pub fn record(&self, us: u64) {
        if let Some(c) = self.counts.get(bucket(us)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn reset(&self) {
        for c in self.counts.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// The approximate `q` quantile (0–1), in microseconds; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(bucket_mid(i));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut prev = 0;
        for us in [
            0u64,
            1,
            31,
            32,
            33,
            63,
            64,
            100,
            1000,
            99_999,
            100_000,
            1 << 40,
            u64::MAX,
        ] {
            let b = bucket(us);
            assert!(b >= prev, "{us}");
            assert!(b < BUCKETS, "{us}");
            prev = b;
            if us > 0 && us < (1 << 50) {
                let mid = bucket_mid(b);
                assert!((mid - us as f64).abs() / us as f64 <= 0.04, "{us} -> {mid}");
            }
        }
    }

    #[test]
    fn median() {
        let h = LiveHist::default();
        assert_eq!(h.quantile(0.5), None);
        for us in [100_000u64, 101_000, 99_000, 250_000, 98_000] {
            h.record(us);
        }
        let m = h.quantile(0.5).unwrap();
        assert!((m - 100_000.0).abs() < 3_000.0, "{m}");
        h.reset();
        assert_eq!(h.quantile(0.5), None);
    }
}
