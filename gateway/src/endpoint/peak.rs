//! Peak-EWMA latency (Finagle's and Linkerd's load metric): a sample above the average replaces
//! it at once; a sample below it is folded in with a weight that grows with the time since the
//! last sample; and when read, the average decays toward zero with the time since the last
//! sample, so that an endpoint that was slow once is tried again later.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::epoch;

/// Decay time constant.
pub const TAU: Duration = Duration::from_secs(10);

/// The cost of an endpoint with requests in flight and no sample yet: one second, so that it
/// gets no more traffic before its first answer than an endpoint that answers in a second.
const PENALTY_NS: f64 = 1e9;

#[derive(Debug, Default)]
pub struct PeakEwma {
    /// Nanoseconds, as `f64` bits; 0 before the first sample.
    cost: AtomicU64,
    /// When `cost` was last written, in nanoseconds since [`epoch`].
    stamp: AtomicU64,
}

fn nanos(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

fn decay(since_ns: u64) -> f64 {
    (-(since_ns as f64) / TAU.as_nanos() as f64).exp()
}

impl PeakEwma {
    /// Folds a latency sample taken at `now` in. Concurrent samples may lose one another; the
    /// value stays one of them or an average.
    pub fn observe(&self, rtt: Duration, now: Instant) {
        let rtt = rtt.as_nanos() as f64;
        let now_ns = nanos(now);
        let old = f64::from_bits(self.cost.load(Ordering::Relaxed));
        let since = now_ns.saturating_sub(self.stamp.load(Ordering::Relaxed));
        let new = if rtt > old {
            rtt
        } else {
            let w = decay(since);
            old * w + rtt * (1.0 - w)
        };
        self.cost.store(new.to_bits(), Ordering::Relaxed);
        self.stamp.store(now_ns, Ordering::Relaxed);
    }

    /// The average at `now`, decayed since the last sample; `None` before the first sample.
    pub fn get(&self, now: Instant) -> Option<Duration> {
        let cost = f64::from_bits(self.cost.load(Ordering::Relaxed));
        if cost <= 0.0 {
            return None;
        }
        let since = nanos(now).saturating_sub(self.stamp.load(Ordering::Relaxed));
        Some(Duration::from_nanos((cost * decay(since)) as u64))
    }

    /// The load score of least-latency choice: the decayed average times (in-flight + 1), in
    /// nanoseconds. Lower is better.
    pub fn load(&self, now: Instant, in_flight: u32) -> f64 {
        let cost = match self.get(now) {
            Some(d) => d.as_nanos() as f64,
            None if in_flight > 0 => PENALTY_NS,
            None => 0.0,
        };
        cost * (f64::from(in_flight) + 1.0)
    }
}
