//! A token bucket per limit: it holds up to a minute's allowance and refills continuously at
//! `limit / 60` per second, so a tenant can spend its whole per-minute limit at once and then
//! gets it back over the next minute. Its level may go below zero: a request larger than the
//! estimate leaves a debt that the refill pays back first.

use std::time::Duration;

use tokio::time::Instant;

/// One limit's state.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    /// Units left now (tokens or requests); may be negative.
    level: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn full(per_minute: u64, now: Instant) -> Bucket {
        Bucket {
            level: per_minute as f64,
            at: now,
        }
    }

    /// Adds what refilled since the last call.
    pub fn refill(&mut self, per_minute: u64, now: Instant) {
        let cap = per_minute as f64;
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * cap / 60.0).min(cap);
        self.at = now;
    }

    /// Whether `n` units may be taken now: the bucket holds them, or it is full (a request
    /// larger than a minute's allowance passes when nothing else was spent).
    pub fn allows(&self, n: u64, per_minute: u64) -> bool {
        self.level >= (n.min(per_minute)) as f64
    }

    pub fn take(&mut self, n: u64) {
        self.level -= n as f64;
    }

    /// Gives back `n` units (negative: takes more), never above the capacity.
    pub fn adjust(&mut self, n: i64, per_minute: u64) {
        self.level = (self.level + n as f64).min(per_minute as f64);
    }

    /// Whole units left (0 when in debt).
    pub fn remaining(&self) -> u64 {
        self.level.max(0.0).floor() as u64
    }

    /// Whether the bucket is full: forgetting it changes nothing.
    pub fn is_full(&self, per_minute: u64) -> bool {
        self.level >= per_minute as f64
    }

    /// Time until the bucket holds `n` units (capped at a minute's allowance).
    pub fn wait_for(&self, n: u64, per_minute: u64) -> Duration {
        let need = n.min(per_minute) as f64 - self.level;
        if need <= 0.0 || per_minute == 0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(need * 60.0 / per_minute as f64)
    }

    /// Time until the bucket is full again.
    pub fn until_full(&self, per_minute: u64) -> Duration {
        self.wait_for(per_minute, per_minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spends_a_minute_at_once_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(600, t0);
        assert!(b.allows(600, 600));
        b.take(600);
        assert_eq!(b.remaining(), 0);
        assert!(!b.allows(1, 600));
        // 600 per minute is 10 per second.
        tokio::time::advance(Duration::from_secs(3)).await;
        b.refill(600, Instant::now());
        assert_eq!(b.remaining(), 30);
        assert!(b.allows(30, 600) && !b.allows(31, 600));
        assert_eq!(b.wait_for(40, 600), Duration::from_secs(1));
        assert_eq!(b.until_full(600), Duration::from_secs(57));
        // Never above the capacity.
        tokio::time::advance(Duration::from_secs(600)).await;
        b.refill(600, Instant::now());
        assert_eq!(b.remaining(), 600);
        assert!(b.is_full(600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_debt_is_paid_back_before_anything_is_allowed() {
        let t0 = Instant::now();
        let mut b = Bucket::full(60, t0);
        b.take(50);
        b.adjust(-30, 60); // used 30 more than estimated: level -20
        assert_eq!(b.remaining(), 0);
        assert_eq!(b.wait_for(1, 60), Duration::from_secs(21));
        tokio::time::advance(Duration::from_secs(20)).await;
        b.refill(60, Instant::now());
        assert!(!b.allows(1, 60));
        b.adjust(1000, 60);
        assert!(b.is_full(60));
    }

    #[test]
    fn a_request_larger_than_the_limit_passes_only_on_a_full_bucket() {
        let now = Instant::now();
        let mut b = Bucket::full(100, now);
        assert!(b.allows(500, 100));
        b.take(1);
        assert!(!b.allows(500, 100));
    }
}
