//! The transfer rate: byte counts sampled over time, and the rate over the last seconds.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the current rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// At most one rate sample per this interval.
pub(super) const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Adds the sample (`now`, bytes transferred so far), dropping those no longer needed: one
/// sample older than the window stays as the baseline.
pub(super) fn push_sample(samples: &mut VecDeque<(Instant, u64)>, now: Instant, total: u64) {
    samples.push_back((now, total));
    while samples.len() > 2
        && samples
            .get(1)
            .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
    {
        samples.pop_front();
    }
}

/// Bytes per second from the baseline sample to (`now`, `current`).
pub(super) fn rate(samples: &VecDeque<(Instant, u64)>, now: Instant, current: u64) -> u64 {
    // The oldest sample inside the window, or the newest one before it.
    let mut base = None;
    for &(t, bytes) in samples {
        base = Some((t, bytes));
        if now.duration_since(t) <= RATE_WINDOW {
            break;
        }
    }
    let Some((t, bytes)) = base else {
        return 0;
    };
    let secs = now.duration_since(t).as_secs_f64();
    if secs < 0.05 {
        return 0;
    }
    (current.saturating_sub(bytes) as f64 / secs) as u64
}
