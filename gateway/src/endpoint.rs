//! Runtime state of an upstream endpoint. It lives outside the config snapshot, keyed by the
//! endpoint's URL, so that a reload keeps it for endpoints that stay.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Counters shared by every snapshot that contains the endpoint.
#[derive(Debug)]
pub struct EndpointState {
    pub url: Box<str>,
    in_flight: AtomicU32,
}

impl EndpointState {
    pub fn new(url: &str) -> Self {
        EndpointState {
            url: url.into(),
            in_flight: AtomicU32::new(0),
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
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
}

/// A request in flight on an endpoint: taken when the endpoint is picked, released when the
/// response body ends, fails or is dropped.
#[derive(Debug)]
pub struct InFlight(Arc<EndpointState>);

impl InFlight {
    pub fn endpoint(&self) -> &EndpointState {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Finds or creates the state of an endpoint by its URL. Used when compiling a snapshot, never
/// on the request path.
#[derive(Debug, Default)]
pub struct EndpointRegistry {
    states: Mutex<HashMap<Box<str>, Weak<EndpointState>>>,
}

impl EndpointRegistry {
    pub fn get_or_create(&self, url: &str) -> Arc<EndpointState> {
        let mut states = self
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        states.retain(|_, w| w.strong_count() > 0);
        if let Some(s) = states.get(url).and_then(Weak::upgrade) {
            return s;
        }
        let s = Arc::new(EndpointState::new(url));
        states.insert(url.into(), Arc::downgrade(&s));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_until_dropped() {
        let s = Arc::new(EndpointState::new("http://a"));
        let g1 = s.acquire();
        let g2 = s.acquire();
        assert_eq!(s.in_flight(), 2);
        drop(g1);
        assert_eq!(s.in_flight(), 1);
        assert_eq!(g2.endpoint().url.as_ref(), "http://a");
        drop(g2);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn registry_keeps_state_while_referenced() {
        let r = EndpointRegistry::default();
        let a = r.get_or_create("http://a");
        let _g = a.acquire();
        let again = r.get_or_create("http://a");
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(again.in_flight(), 1);
        drop((a, again, _g));
        let fresh = r.get_or_create("http://a");
        assert_eq!(fresh.in_flight(), 0);
    }
}
