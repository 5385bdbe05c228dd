//! Endpoint state by URL, kept across snapshots so that a reload or a new endpoint set keeps
//! the in-flight counts, outlier state and health of endpoints that stay. Owned by the writer.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::endpoint::EndpointState;

#[derive(Debug, Default)]
pub struct EndpointRegistry {
    states: HashMap<Box<str>, Weak<EndpointState>>,
}

impl EndpointRegistry {
    /// The state of the endpoint at `url`: the one a live snapshot or request still holds, else
    /// a new one.
    pub fn get_or_create(&mut self, url: &str) -> Arc<EndpointState> {
        if let Some(s) = self.states.get(url).and_then(Weak::upgrade) {
            return s;
        }
        let s = Arc::new(EndpointState::new(url));
        self.states.insert(url.into(), Arc::downgrade(&s));
        s
    }

    /// Forgets endpoints that nothing holds any more.
    pub fn sweep(&mut self) {
        self.states.retain(|_, w| w.strong_count() > 0);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_state_while_referenced() {
        let mut r = EndpointRegistry::default();
        let a = r.get_or_create("http://a");
        let _g = a.acquire();
        let again = r.get_or_create("http://a");
        assert!(Arc::ptr_eq(&a, &again));
        assert_eq!(again.in_flight(), 1);
        drop((a, again, _g));
        r.sweep();
        assert!(r.states.is_empty());
        let fresh = r.get_or_create("http://a");
        assert_eq!(fresh.in_flight(), 0);
    }
}
