//! The gateway as requests and the admin listener see it: the published snapshot (read only),
//! the handle to the writer, readiness, and the listener's in-flight count.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use infergate_config::ConfigErrors;

use crate::accesslog::Observers;
use crate::metrics::Metrics;
use crate::status::ConfigStatus;
use crate::table::Table;
use crate::writer::{Published, WriterHandle};

pub struct Gateway {
    published: Arc<Published>,
    writer: WriterHandle,
    metrics: Arc<Metrics>,
    ready: AtomicBool,
    draining: AtomicBool,
    in_flight: Arc<AtomicU32>,
    /// Access log and tracer, set once at start when either is configured.
    observers: OnceLock<Arc<Observers>>,
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
    /// A gateway serving the config in `text` (read from `path` when there is a file). Starts
    /// the writer ([`crate::writer`]), which parses and compiles it and stops when the gateway
    /// is dropped.
    pub async fn start(
        text: String,
        path: Option<PathBuf>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Gateway>, ConfigErrors> {
        let (published, writer) = crate::writer::spawn(text, path, metrics.clone()).await?;
        let gw = Gateway {
            published,
            writer,
            metrics,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            in_flight: Arc::new(AtomicU32::new(0)),
            observers: OnceLock::new(),
        };
        Ok(Arc::new(gw))
    }

    /// The live snapshot. A request loads it once and keeps it for its whole life.
    pub fn snapshot(&self) -> Arc<Table> {
        self.published.table.load_full()
    }

    /// The live config's status.
    pub fn status(&self) -> Arc<ConfigStatus> {
        self.published.status.load_full()
    }

    /// Wakes on every table the writer publishes (config reloads and endpoint sets).
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.changed.subscribe()
    }

    /// Sends config, endpoint sets and feed documents to the writer.
    pub fn writer(&self) -> &WriterHandle {
        &self.writer
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The access log and the tracer; `None` when both are off.
    pub fn observers(&self) -> Option<&Arc<Observers>> {
        self.observers.get()
    }

    /// Sets the access log and the tracer (once, at start).
    pub fn set_observers(&self, o: Arc<Observers>) {
        let _ = self.observers.set(o);
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

    /// Takes a place under the snapshot's `limits.max_in_flight`, or `None` when the listener
    /// is full.
    pub fn try_admit(&self, table: &Table) -> Option<Slot> {
        let max = table.limits.max_in_flight;
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.in_flight.clone()))
    }
}
