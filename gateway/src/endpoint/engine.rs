//! The engine state of an endpoint, as its last successful metrics scrape read it: requests
//! waiting and running in the engine and its KV-cache use. Atomics, written by the scraper
//! ([`crate::engine`]) and read by the scheduler ([`crate::pick`]). A failed scrape leaves the
//! values as they were and counts; their age tells how fresh they are.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{epoch, millis_since_epoch};

/// What one scrape read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EngineSample {
    pub queue: u32,
    pub running: u32,
    /// KV-cache use, 0 to 1.
    pub kv: f64,
}

/// The last sample with its age.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EngineReading {
    pub sample: EngineSample,
    pub age: Duration,
}

#[derive(Debug, Default)]
pub struct EngineGauge {
    queue: AtomicU32,
    running: AtomicU32,
    /// KV-cache use in thousandths.
    kv_permille: AtomicU32,
    /// When the last scrape succeeded, in milliseconds since [`epoch`]; 0: never.
    at: AtomicU64,
    /// Failed scrapes since the last success.
    failures: AtomicU32,
}

impl EngineGauge {
    /// Stores a successful scrape's values, read at `now`.
    pub fn set(&self, s: EngineSample, now: Instant) {
        let kv = (s.kv.clamp(0.0, 1.0) * 1000.0).round() as u32;
        self.queue.store(s.queue, Ordering::Relaxed);
        self.running.store(s.running, Ordering::Relaxed);
        self.kv_permille.store(kv, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.at
            .store(millis_since_epoch(now).max(1), Ordering::Release);
    }

    /// Counts a failed scrape; the values stay.
    pub fn fail(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The last values and their age at `now`; `None` before the first successful scrape.
    pub fn read(&self, now: Instant) -> Option<EngineReading> {
        let at = self.at.load(Ordering::Acquire);
        if at == 0 {
            return None;
        }
        let taken = epoch() + Duration::from_millis(at);
        Some(EngineReading {
            sample: EngineSample {
                queue: self.queue.load(Ordering::Relaxed),
                running: self.running.load(Ordering::Relaxed),
                kv: f64::from(self.kv_permille.load(Ordering::Relaxed)) / 1000.0,
            },
            age: now.saturating_duration_since(taken),
        })
    }

    /// The last values when younger than `stale_after` at `now`.
    pub fn fresh(&self, now: Instant, stale_after: Duration) -> Option<EngineSample> {
        self.read(now)
            .filter(|r| r.age <= stale_after)
            .map(|r| r.sample)
    }
}
