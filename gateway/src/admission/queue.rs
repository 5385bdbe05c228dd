//! The priority queue of one backend: requests that found every endpoint of their variant
//! saturated wait here, FIFO per class, until a place frees, their class's `max_wait` passes,
//! or a higher class takes their place.
//!
//! A place is handed over, not raced for: when a request on the backend ends (its in-flight
//! guard was just dropped), [`Queue::released`] takes the lock and tries the waiters in order
//! (highest class first, oldest first), each with its own endpoint choice; the first that gets
//! an endpoint receives its guard through a channel. A waiter that arrives checks for a free
//! place once more under the same lock before it queues, so a place that freed in between is
//! never missed. Without waiters, a release costs one fence and one atomic load.

use std::collections::VecDeque;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::endpoint::InFlight;

/// A place on an endpoint: its position in the variant's members and its in-flight guard.
pub type Picked = (usize, InFlight);

/// How a waiter takes a place: its variant's endpoint choice, with its exclusions.
pub type Picker = Box<dyn Fn(Instant) -> Option<Picked> + Send + Sync>;

/// Why a request was shed (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// Its class's queue (or the backend's `max_queued`, with no lower class to shed) was full.
    QueueFull,
    /// A request of a higher class took its place.
    Displaced,
    /// It waited its class's `max_wait` (or the request's total timeout).
    Timeout,
}

impl Shed {
    pub const ALL: [Shed; 3] = [Shed::QueueFull, Shed::Displaced, Shed::Timeout];

    pub fn as_str(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::Displaced => "displaced",
            Shed::Timeout => "timeout",
        }
    }
}

/// The bounds a waiter of one class queues under.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Most waiters of this class.
    pub queue: usize,
    /// Most waiters of all classes.
    pub max_queued: usize,
    /// Longest wait.
    pub max_wait: Duration,
}

struct Waiter {
    id: u64,
    pick: Picker,
    tx: oneshot::Sender<Result<Picked, Shed>>,
}

#[derive(Default)]
struct Lanes {
    /// By class, highest first.
    lanes: Vec<VecDeque<Waiter>>,
    next_id: u64,
}

impl Lanes {
    fn total(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }
}

/// The waiters of one backend.
#[derive(Default)]
pub struct Queue {
    lanes: Mutex<Lanes>,
    /// Waiters queued now (read without the lock by [`Queue::released`]).
    waiting: AtomicUsize,
}

impl Queue {
    pub fn new(classes: usize) -> Queue {
        let q = Queue::default();
        q.grow(classes);
        q
    }

    fn lock(&self) -> MutexGuard<'_, Lanes> {
        self.lanes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes room for `classes` classes (a reload that adds classes keeps the waiters).
    pub fn grow(&self, classes: usize) {
        let mut l = self.lock();
        while l.lanes.len() < classes {
            l.lanes.push(VecDeque::new());
        }
    }

    /// Waiters by class.
    pub fn depth(&self) -> Vec<usize> {
        self.lock().lanes.iter().map(VecDeque::len).collect()
    }

    /// Waits for a place for a request of `class`. `pick` is tried once more under the lock
    /// first. Returns the place, or why the request is shed.
    pub async fn wait(
        &self,
        class: usize,
        bounds: Bounds,
        pick: Picker,
        deadline: Instant,
    ) -> Result<Picked, Shed> {
        let deadline = deadline.min(Instant::now() + bounds.max_wait);
        let (id, rx) = {
            let mut l = self.lock();
            self.waiting.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            // `waiting` stays above zero from here until this waiter is queued or gone, so
            // a release that this pick misses finds it (both sides fence).
            let leave = |l: &Lanes, r| {
                self.waiting.store(l.total(), Ordering::SeqCst);
                r
            };
            if let Some(p) = pick(Instant::now()) {
                return leave(&l, Ok(p));
            }
            let own = l.lanes.get(class).map_or(usize::MAX, VecDeque::len);
            if own >= bounds.queue {
                return leave(&l, Err(Shed::QueueFull));
            }
            if l.total() >= bounds.max_queued {
                // The newest waiter of the lowest class below this one gives way.
                let lower = (class + 1..l.lanes.len())
                    .rev()
                    .find(|&c| !l.lanes[c].is_empty());
                let Some(c) = lower else {
                    return leave(&l, Err(Shed::QueueFull));
                };
                if let Some(w) = l.lanes[c].pop_back() {
                    let _ = w.tx.send(Err(Shed::Displaced));
                }
            }
            let (tx, rx) = oneshot::channel();
            let id = l.next_id;
            l.next_id += 1;
            l.lanes[class].push_back(Waiter { id, pick, tx });
            self.waiting.store(l.total(), Ordering::SeqCst);
            (id, rx)
        };
        let mut queued = Queued {
            queue: self,
            class,
            id,
            rx,
            done: false,
        };
        let got = tokio::time::timeout_at(deadline, &mut queued.rx).await;
        queued.done = true;
        match got {
            Ok(Ok(r)) => r,
            // The queue went away with the waiter in it: nothing was handed over.
            Ok(Err(_)) => Err(Shed::Timeout),
            Err(_) => match queued.leave() {
                Some(handed) => handed,
                None => Err(Shed::Timeout),
            },
        }
    }

    /// A place freed on the backend: hands it to the first waiter that can take it.
    pub fn released(&self) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut l = self.lock();
        hand_off(&mut l, Instant::now());
        self.waiting.store(l.total(), Ordering::SeqCst);
    }
}

/// Tries the waiters, highest class first and oldest first, until one takes a place.
fn hand_off(l: &mut Lanes, now: Instant) {
    for lane in &mut l.lanes {
        let mut i = 0;
        while i < lane.len() {
            if lane[i].tx.is_closed() {
                lane.remove(i);
                continue;
            }
            let Some(p) = (lane[i].pick)(now) else {
                i += 1;
                continue;
            };
            let Some(w) = lane.remove(i) else { return };
            match w.tx.send(Ok(p)) {
                Ok(()) => return,
                // The waiter left just now: its guard is dropped and the place is free again.
                Err(_) => continue,
            }
        }
    }
}

/// A waiter's entry: leaves the queue when the wait ends without a place, or when the request
/// is dropped (the client went away).
struct Queued<'a> {
    queue: &'a Queue,
    class: usize,
    id: u64,
    rx: oneshot::Receiver<Result<Picked, Shed>>,
    done: bool,
}

impl Queued<'_> {
    /// Removes the entry. `None` when it was still queued; else what was handed to it in the
    /// meantime (under the lock, so it is already in the channel).
    fn leave(&mut self) -> Option<Result<Picked, Shed>> {
        let mut l = self.queue.lock();
        let lane = l.lanes.get_mut(self.class)?;
        if let Some(i) = lane.iter().position(|w| w.id == self.id) {
            lane.remove(i);
            let total = l.total();
            self.queue.waiting.store(total, Ordering::SeqCst);
            return None;
        }
        drop(l);
        self.rx.try_recv().ok()
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // Dropped while waiting: a place handed over meanwhile goes to the next waiter.
        if let Some(Ok(place)) = self.leave() {
            drop(place);
            self.queue.released();
        }
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
