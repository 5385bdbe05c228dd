//! Runtime state of an upstream endpoint: in-flight count, latency averages, engine state and
//! passive outlier detection. It lives outside the config snapshot, keyed by the endpoint's URL,
//! so that a reload keeps it for endpoints that stay.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

mod engine;
mod kinds;
mod peak;

pub use engine::{EngineGauge, EngineReading, EngineSample};
pub use kinds::{EjectReason, Failure, OutlierPolicy};
pub use peak::PeakEwma;

/// A fixed origin for times kept in atomics as milliseconds: an hour before first use where
/// the clock allows, so that any instant met later is after it.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
    })
}

fn millis_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX)
}

/// Counters shared by every snapshot that contains the endpoint.
#[derive(Debug)]
pub struct EndpointState {
    pub url: Box<str>,
    /// When the endpoint entered the gateway's tables (kept while it stays in them).
    pub since: Instant,
    in_flight: AtomicU32,
    consecutive_failures: AtomicU32,
    /// Milliseconds since [`epoch`] until which the endpoint is ejected; 0 when it is not.
    ejected_until: AtomicU64,
    /// Ejections in a row (the next one lasts `base << ejections`).
    ejections: AtomicU32,
    /// When the last ejection ended or will end, in milliseconds since [`epoch`].
    last_ejection_end: AtomicU64,
    eject_reason: AtomicU8,
    /// Exponentially weighted average time to first byte, in microseconds (0: none yet).
    latency_us: AtomicU64,
    /// GPU health block: 0 none, `u64::MAX` while a GPU is unhealthy, else the end of the
    /// hold-down after recovery (milliseconds since [`epoch`]).
    health_until: AtomicU64,
    /// Why the health feed blocks the endpoint; touched only by the feed and the admin API.
    health_reason: Mutex<String>,
    /// The config requires the endpoint's model warm before it takes traffic.
    require_warm: AtomicBool,
    /// The feed says the model is warm (meaningful only with `require_warm`).
    warm: AtomicBool,
    /// What the feed says about the model while it is not warm.
    warm_reason: Mutex<String>,
    /// The engine's queue, running requests and KV-cache use, from its metrics.
    pub engine: EngineGauge,
    /// Peak-EWMA of the time to first byte, for least-latency choice.
    pub peak: PeakEwma,
}

impl EndpointState {
    pub fn new(url: &str) -> Self {
        EndpointState {
            url: url.into(),
            since: Instant::now(),
            in_flight: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            last_ejection_end: AtomicU64::new(0),
            eject_reason: AtomicU8::new(0),
            latency_us: AtomicU64::new(0),
            health_until: AtomicU64::new(0),
            health_reason: Mutex::new(String::new()),
            require_warm: AtomicBool::new(false),
            warm: AtomicBool::new(false),
            warm_reason: Mutex::new("no health feed has reported the model yet".into()),
            engine: EngineGauge::default(),
            peak: PeakEwma::default(),
        }
    }

    /// Whether the endpoint waits for its model to be warm (set from the config).
    pub fn set_require_warm(&self, on: bool) {
        self.require_warm.store(on, Ordering::Release);
    }

    /// Records the model's warm state from the feed.
    pub fn set_warm(&self, warm: bool, reason: &str) {
        if !warm {
            let mut r = self
                .warm_reason
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *r != reason {
                *r = reason.to_owned();
            }
        }
        self.warm.store(warm, Ordering::Release);
    }

    /// Whether the endpoint waits for its model to be warm now.
    pub fn cold(&self) -> bool {
        self.require_warm.load(Ordering::Acquire) && !self.warm.load(Ordering::Acquire)
    }

    /// Why the endpoint is cold.
    pub fn warm_reason(&self) -> Option<String> {
        self.cold().then(|| {
            self.warm_reason
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        })
    }

    /// Blocks the endpoint because a GPU it runs on is unhealthy. Returns true when it was not
    /// blocked before.
    pub fn set_gpu_unhealthy(&self, reason: &str) -> bool {
        let mut r = self
            .health_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *r != reason {
            *r = reason.to_owned();
        }
        self.health_until.swap(u64::MAX, Ordering::AcqRel) != u64::MAX
    }

    /// The endpoint's GPUs are healthy: an endpoint that was blocked comes back after
    /// `hold_down`.
    pub fn set_gpu_healthy(&self, now: Instant, hold_down: Duration) {
        let until =
            millis_since_epoch(now) + u64::try_from(hold_down.as_millis()).unwrap_or(u64::MAX / 2);
        let _ = self.health_until.compare_exchange(
            u64::MAX,
            until,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Whether the health feed keeps traffic off the endpoint now.
    pub fn health_blocked(&self, now: Instant) -> bool {
        let u = self.health_until.load(Ordering::Acquire);
        u != 0 && u > millis_since_epoch(now)
    }

    /// Whether outlier detection has ejected the endpoint now.
    pub fn outlier_ejected(&self, now: Instant) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && until > millis_since_epoch(now)
    }

    /// The health feed's reason, while it blocks the endpoint.
    pub fn health_reason(&self, now: Instant) -> Option<String> {
        if !self.health_blocked(now) {
            return None;
        }
        let r = self
            .health_reason
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let back = self.health_until.load(Ordering::Acquire);
        Some(if back == u64::MAX {
            r
        } else {
            format!("recovered, in hold-down ({r})")
        })
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Average time to first byte, if any request completed.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Until when the endpoint is ejected, and why; `None` when it takes traffic. A GPU that is
    /// still unhealthy has no known end: it is reported an hour ahead.
    pub fn ejection(&self, now: Instant) -> Option<(Instant, EjectReason)> {
        if self.cold() {
            return Some((now + Duration::from_secs(3600), EjectReason::NotWarm));
        }
        if self.health_blocked(now) {
            let u = self.health_until.load(Ordering::Acquire);
            let end = if u == u64::MAX {
                now + Duration::from_secs(3600)
            } else {
                epoch() + Duration::from_millis(u)
            };
            return Some((end, EjectReason::GpuUnhealthy));
        }
        let until = self.ejected_until.load(Ordering::Relaxed);
        if until == 0 || until <= millis_since_epoch(now) {
            return None;
        }
        let reason = EjectReason::from_u8(self.eject_reason.load(Ordering::Relaxed));
        Some((epoch() + Duration::from_millis(until), reason))
    }

    /// Ejected by outlier detection or blocked by the health feed.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.outlier_ejected(now) || self.health_blocked(now) || self.cold()
    }

    /// Blocked by the health feed: an unhealthy GPU, or a model not warm. Such an endpoint never
    /// takes traffic as the least bad choice.
    pub fn feed_blocked(&self, now: Instant) -> bool {
        self.health_blocked(now) || self.cold()
    }

    /// Counts a request on this endpoint if it has fewer than `limit` in flight.
    pub fn try_acquire(self: &Arc<Self>, limit: Option<u32>) -> Option<InFlight> {
        let limit = limit.unwrap_or(u32::MAX);
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlight(self.clone()))
    }

    /// Counts a request on this endpoint until the returned guard is dropped.
    pub fn acquire(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// A successful response: resets the failure streak and folds `ttfb` into the average.
    pub fn record_success(&self, ttfb: Duration) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
        let sample = u64::try_from(ttfb.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.latency_us.load(Ordering::Relaxed);
        // Weight 1/8 for the new sample; races lose a sample, never corrupt the value.
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.latency_us.store(new.max(1), Ordering::Relaxed);
        self.peak.observe(ttfb, Instant::now());
    }

    /// A failed attempt. Returns true when it made the endpoint's failure streak reach the
    /// policy's threshold (the caller then decides on ejection with [`Self::eject`]).
    pub fn record_failure(&self, policy: &OutlierPolicy) -> bool {
        let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        policy.consecutive_failures > 0 && n >= policy.consecutive_failures
    }

    /// Ejects the endpoint. Each ejection in a row doubles the time, up to the maximum; an
    /// endpoint that stayed in for longer than the maximum starts again from the base time.
    /// Returns the ejection's end, or `None` when it was already ejected.
    pub fn eject(
        &self,
        reason: EjectReason,
        policy: &OutlierPolicy,
        now: Instant,
    ) -> Option<Instant> {
        let now_ms = millis_since_epoch(now);
        let current = self.ejected_until.load(Ordering::Relaxed);
        if current > now_ms {
            return None;
        }
        let last_end = self.last_ejection_end.load(Ordering::Relaxed);
        let max_ms = u64::try_from(policy.max_ejection.as_millis()).unwrap_or(u64::MAX);
        if last_end != 0 && now_ms.saturating_sub(last_end) > max_ms {
            self.ejections.store(0, Ordering::Relaxed);
        }
        let n = self.ejections.fetch_add(1, Ordering::Relaxed).min(20);
        let time = policy
            .base_ejection
            .saturating_mul(1u32 << n)
            .min(policy.max_ejection);
        let until = now_ms
            + u64::try_from(time.as_millis())
                .unwrap_or(u64::MAX / 2)
                .max(1);
        if self
            .ejected_until
            .compare_exchange(current, until, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        self.eject_reason.store(reason as u8, Ordering::Relaxed);
        self.last_ejection_end.store(until, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        Some(now + time)
    }
}

/// A request in flight on an endpoint: taken when the endpoint is picked, released when the
/// response body ends, fails or is dropped.
#[derive(Debug)]
pub struct InFlight(Arc<EndpointState>);

impl InFlight {
    pub fn endpoint(&self) -> &Arc<EndpointState> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
