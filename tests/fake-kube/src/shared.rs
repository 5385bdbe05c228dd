//! State shared by the test's handle, the accept loop and every request.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::stats::Stats;
use crate::store::Store;

pub(crate) struct Shared {
    store: Mutex<Store>,
    /// Bumped after every write to the store; open watches wake on it.
    pub changed: watch::Sender<u64>,
    /// Bumped to make every open watch send a bookmark now.
    pub bookmark_now: watch::Sender<u64>,
    /// Whether the server refuses connections.
    pub down: watch::Sender<bool>,
    /// How often open watches send bookmarks; `None`: only on demand.
    pub bookmark_interval: Mutex<Option<Duration>>,
    pub stats: Stats,
    pub addr: SocketAddr,
}

impl Shared {
    pub(crate) fn new(addr: SocketAddr, bookmark_interval: Option<Duration>) -> Shared {
        Shared {
            store: Mutex::new(Store::default()),
            changed: watch::Sender::new(0),
            bookmark_now: watch::Sender::new(0),
            down: watch::Sender::new(false),
            bookmark_interval: Mutex::new(bookmark_interval),
            stats: Stats::default(),
            addr,
        }
    }

    /// The store, for reading.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `write` on the store, then wakes every open watch.
    pub(crate) fn write<R>(&self, write: impl FnOnce(&mut Store) -> R) -> R {
        let result = write(&mut self.store());
        self.changed.send_modify(|n| *n += 1);
        result
    }

    pub(crate) fn bookmark_interval(&self) -> Option<Duration> {
        *self
            .bookmark_interval
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
