//! The gateway's shared state: the live routing table and what builds it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use infergate_config::{Config, ConfigErrors};

use crate::metrics::Metrics;
use crate::table::{Compiler, Table};

pub struct Gateway {
    table: ArcSwap<Table>,
    compiler: Compiler,
    ready: AtomicBool,
}

impl Gateway {
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Result<Self, ConfigErrors> {
        let compiler = Compiler::new(metrics);
        let table = compiler.compile(cfg)?;
        Ok(Gateway {
            table: ArcSwap::from_pointee(table),
            compiler,
            ready: AtomicBool::new(false),
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
}
