//! A count of streams in flight, kept by guards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Counts one stream for as long as it lives: incremented on creation, decremented on drop,
/// whether the stream finished or its client went away.
pub struct InFlight {
    count: Arc<AtomicU64>,
}

impl InFlight {
    pub fn new(count: Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self { count }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_while_alive() {
        let count = Arc::new(AtomicU64::new(0));
        let a = InFlight::new(Arc::clone(&count));
        let b = InFlight::new(Arc::clone(&count));
        assert_eq!(count.load(Ordering::Relaxed), 2);
        drop(a);
        assert_eq!(count.load(Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(count.load(Ordering::Relaxed), 0);
    }
}
