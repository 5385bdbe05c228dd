//! What the fake has served, for tests to assert on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Counts of what the fake has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// List requests answered with 200.
    pub lists: u64,
    /// Watch streams opened (answered with 200).
    pub watches: u64,
    /// GETs of one object answered with 200.
    pub gets: u64,
    /// 410 Gone answers: HTTP 410 on lists plus in-stream `ERROR` events with code 410.
    pub gone: u64,
    /// BOOKMARK events sent.
    pub bookmarks: u64,
    /// Connections accepted and dropped at once while the server was down.
    pub refused: u64,
    /// Creates, updates and deletes through the API that succeeded.
    pub writes: u64,
    /// Writes refused with 409 (`AlreadyExists` on create, `Conflict` on a stale
    /// resourceVersion).
    pub conflicts: u64,
}

/// One request the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (may be empty).
    pub query: String,
    /// The HTTP status answered (200 for a watch, whatever it streams).
    pub status: u16,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub lists: AtomicU64,
    pub watches: AtomicU64,
    pub gets: AtomicU64,
    pub gone: AtomicU64,
    pub bookmarks: AtomicU64,
    pub refused: AtomicU64,
    pub writes: AtomicU64,
    pub conflicts: AtomicU64,
    pub open_watches: AtomicU64,
    log: Mutex<Vec<RequestRecord>>,
}

impl Stats {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counters(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            lists: get(&self.lists),
            watches: get(&self.watches),
            gets: get(&self.gets),
            gone: get(&self.gone),
            bookmarks: get(&self.bookmarks),
            refused: get(&self.refused),
            writes: get(&self.writes),
            conflicts: get(&self.conflicts),
        }
    }

    pub(crate) fn record(&self, record: RequestRecord) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
