//! The gateway's shared state: the live routing table and what builds it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use infergate_config::{Config, ConfigErrors};

use crate::metrics::Metrics;
use crate::table::{Compiler, Table};

pub struct Gateway {
    table: ArcSwap<Table>,
    compiler: Compiler,
    ready: AtomicBool,
    draining: AtomicBool,
    in_flight: Arc<AtomicU32>,
}

/// A request's place under the data listener's `limits.max_in_flight`; released on drop.
#[derive(Debug)]
pub struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gateway {
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Result<Self, ConfigErrors> {
        let compiler = Compiler::new(metrics);
        let table = compiler.compile(cfg)?;
        Ok(Gateway {
            table: ArcSwap::from_pointee(table),
            compiler,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            in_flight: Arc::new(AtomicU32::new(0)),
        })
    }

    /// The live table. Short-lived: do not hold it across an `.await`.
    pub fn table(&self) -> Guard<Arc<Table>> {
        self.table.load()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        self.compiler.metrics()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Fails readiness for good: the gateway is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Requests in flight on the data listener.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Takes a place under `limits.max_in_flight`, or `None` when the listener is full.
    pub fn try_admit(&self) -> Option<Slot> {
        let max = self.table().limits.max_in_flight;
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.in_flight.clone()))
    }
}
