//! The gateway-wide retry budget: retries may be at most `ratio` of the requests of the last
//! ten seconds, plus `min_per_second`. Requests deposit, retries withdraw; both are one atomic
//! add on the current one-second bucket, with no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

const WINDOW: u64 = 10;

#[derive(Default)]
struct Bucket {
    second: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
}

pub struct RetryBudget {
    ratio: f64,
    min_per_second: u64,
    start: Instant,
    buckets: [Bucket; WINDOW as usize],
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_second: u32) -> Self {
        RetryBudget {
            ratio,
            min_per_second: u64::from(min_per_second),
            start: Instant::now(),
            buckets: Default::default(),
        }
    }

    /// Seconds since start, plus one so that 0 means "never used".
    fn now(&self) -> u64 {
        self.start.elapsed().as_secs() + 1
    }

    fn bucket(&self, second: u64) -> &Bucket {
        // `second % WINDOW` is below WINDOW, so the index is in range.
        let b = &self.buckets[(second % WINDOW) as usize];
        let seen = b.second.load(Ordering::Acquire);
        if seen != second
            && b.second
                .compare_exchange(seen, second, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            b.requests.store(0, Ordering::Relaxed);
            b.retries.store(0, Ordering::Relaxed);
        }
        b
    }

    /// Counts a request.
    pub fn deposit(&self) {
        self.bucket(self.now())
            .requests
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one retry from the budget if there is room.
    pub fn try_withdraw(&self) -> bool {
        let now = self.now();
        let (mut requests, mut retries) = (0u64, 0u64);
        for b in &self.buckets {
            let s = b.second.load(Ordering::Acquire);
            if s != 0 && s + WINDOW > now {
                requests += b.requests.load(Ordering::Relaxed);
                retries += b.retries.load(Ordering::Relaxed);
            }
        }
        let allowed = self.min_per_second * WINDOW + (self.ratio * requests as f64) as u64;
        if retries < allowed {
            self.bucket(now).retries.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn retries_are_capped_by_ratio_and_floor() {
        let b = RetryBudget::new(0.2, 0);
        for _ in 0..100 {
            b.deposit();
        }
        let granted = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(granted, 20);
        // Ten seconds later the window has moved on: nothing left to spend.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!b.try_withdraw());
        b.deposit();
        b.deposit();
        b.deposit();
        b.deposit();
        b.deposit();
        assert!(b.try_withdraw());
        assert!(!b.try_withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn floor_allows_retries_at_low_rates() {
        let b = RetryBudget::new(0.0, 2);
        let granted = (0..100).filter(|_| b.try_withdraw()).count();
        assert_eq!(granted, 20);
    }
}
