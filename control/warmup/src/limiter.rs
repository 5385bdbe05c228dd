//! A token bucket shared by every transfer of a job.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bandwidth cap: callers take tokens (bytes) before moving data and sleep when the bucket is
/// in debt. The bucket holds at most a tenth of a second of traffic (at least 64 KiB), so
/// bursts stay short.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(crate) fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        let burst = (rate / 10.0).max(65536.0);
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes `n` tokens, sleeping as long as the bucket is in debt afterwards.
    pub(crate) async fn acquire(&self, n: u64) {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (tokens, last) = *state;
            let refilled =
                (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.burst);
            let left = refilled - n as f64;
            *state = (left, now);
            if left < 0.0 {
                Duration::from_secs_f64(-left / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
