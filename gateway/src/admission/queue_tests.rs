#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;
use crate::endpoint::EndpointState;

const HIGH: usize = 0;
const LOW: usize = 1;

/// One endpoint with room for one request.
fn endpoint() -> Arc<EndpointState> {
    Arc::new(EndpointState::new("http://127.0.0.1:1"))
}

fn picker(ep: &Arc<EndpointState>) -> Picker {
    let ep = ep.clone();
    Box::new(move |_| ep.try_acquire(Some(1)).map(|g| (0, g)))
}

fn bounds(queue: usize, max_queued: usize, max_wait: Duration) -> Bounds {
    Bounds {
        queue,
        max_queued,
        max_wait,
    }
}

/// A waiter that reports `(name, outcome)` and holds its place until `hold` passes.
fn spawn_waiter(
    q: &Arc<Queue>,
    ep: &Arc<EndpointState>,
    class: usize,
    b: Bounds,
    name: &'static str,
    hold: Duration,
    out: &mpsc::UnboundedSender<(&'static str, Result<(), Shed>)>,
) -> JoinHandle<()> {
    let (q, pick, out) = (q.clone(), picker(ep), out.clone());
    tokio::spawn(async move {
        let far = Instant::now() + Duration::from_secs(3600);
        match q.wait(class, b, pick, far).await {
            Ok((_, guard)) => {
                let _ = out.send((name, Ok(())));
                tokio::time::sleep(hold).await;
                drop(guard);
                q.released();
            }
            Err(s) => {
                let _ = out.send((name, Err(s)));
            }
        }
    })
}

/// Lets spawned tasks run until they block.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_freed_place_goes_to_the_highest_class_then_the_oldest() {
    let q = Arc::new(Queue::new(2));
    let ep = endpoint();
    let busy = ep.try_acquire(Some(1)).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let b = bounds(10, 20, Duration::from_secs(60));
    let hold = Duration::from_millis(10);
    for (class, name) in [
        (LOW, "low1"),
        (HIGH, "high1"),
        (LOW, "low2"),
        (HIGH, "high2"),
    ] {
        spawn_waiter(&q, &ep, class, b, name, hold, &tx);
        settle().await;
    }
    assert_eq!(q.depth(), vec![2, 2]);
    drop(busy);
    q.released();
    let mut order = Vec::new();
    for _ in 0..4 {
        let (name, r) = rx.recv().await.unwrap();
        assert_eq!(r, Ok(()), "{name}");
        // Only one holds the endpoint at a time.
        assert_eq!(ep.in_flight(), 1);
        order.push(name);
    }
    assert_eq!(order, ["high1", "high2", "low1", "low2"]);
    settle().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(q.depth(), vec![0, 0]);
    assert_eq!(ep.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_is_shed_at_its_deadline_and_leaves_the_queue() {
    let q = Arc::new(Queue::new(2));
    let ep = endpoint();
    let _busy = ep.try_acquire(Some(1)).unwrap();
    let start = Instant::now();
    let r = q
        .wait(
            LOW,
            bounds(10, 20, Duration::from_secs(2)),
            picker(&ep),
            start + Duration::from_secs(60),
        )
        .await;
    assert_eq!(r.err(), Some(Shed::Timeout));
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    // The request's own deadline, when earlier, wins.
    let start = Instant::now();
    let r = q
        .wait(
            LOW,
            bounds(10, 20, Duration::from_secs(2)),
            picker(&ep),
            start + Duration::from_millis(300),
        )
        .await;
    assert_eq!(r.err(), Some(Shed::Timeout));
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(q.depth(), vec![0, 0]);
}

#[tokio::test(start_paused = true)]
async fn full_queues_shed_the_lowest_class_first() {
    let q = Arc::new(Queue::new(2));
    let ep = endpoint();
    let busy = ep.try_acquire(Some(1)).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let wait = Duration::from_secs(60);
    let hold = Duration::from_millis(1);
    // Per class: 2 places; all classes: 3.
    let b = bounds(2, 3, wait);
    spawn_waiter(&q, &ep, LOW, b, "low1", hold, &tx);
    settle().await;
    spawn_waiter(&q, &ep, LOW, b, "low2", hold, &tx);
    settle().await;
    // The low class is full: a third low request is shed at once.
    spawn_waiter(&q, &ep, LOW, b, "low3", hold, &tx);
    settle().await;
    assert_eq!(rx.try_recv().unwrap(), ("low3", Err(Shed::QueueFull)));
    spawn_waiter(&q, &ep, HIGH, b, "high1", hold, &tx);
    settle().await;
    assert_eq!(q.depth(), vec![1, 2]);
    // All three places are taken: the next high request displaces the newest low one.
    spawn_waiter(&q, &ep, HIGH, b, "high2", hold, &tx);
    settle().await;
    assert_eq!(rx.try_recv().unwrap(), ("low2", Err(Shed::Displaced)));
    assert_eq!(q.depth(), vec![2, 1]);
    // The high class is full now: a third high request is shed, low or not.
    spawn_waiter(&q, &ep, HIGH, b, "high3", hold, &tx);
    settle().await;
    assert_eq!(rx.try_recv().unwrap(), ("high3", Err(Shed::QueueFull)));
    // With nothing lower to shed, a full backend sheds the arrival.
    let b1 = bounds(5, 3, wait);
    spawn_waiter(&q, &ep, LOW, b1, "low4", hold, &tx);
    settle().await;
    assert_eq!(rx.try_recv().unwrap(), ("low4", Err(Shed::QueueFull)));
    // The queued ones are served in order.
    drop(busy);
    q.released();
    let mut order = Vec::new();
    for _ in 0..3 {
        let (name, r) = rx.recv().await.unwrap();
        assert_eq!(r, Ok(()));
        order.push(name);
    }
    assert_eq!(order, ["high1", "high2", "low1"]);
}

#[tokio::test(start_paused = true)]
async fn a_queue_of_zero_never_queues_but_a_free_place_is_still_taken() {
    let q = Queue::new(1);
    let ep = endpoint();
    let b = bounds(0, 10, Duration::from_secs(1));
    let far = Instant::now() + Duration::from_secs(60);
    let (_, held) = q.wait(0, b, picker(&ep), far).await.unwrap();
    assert_eq!(ep.in_flight(), 1);
    assert_eq!(
        q.wait(0, b, picker(&ep), far).await.err(),
        Some(Shed::QueueFull)
    );
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_goes_away_leaves_and_its_place_passes_on() {
    let q = Arc::new(Queue::new(1));
    let ep = endpoint();
    let busy = ep.try_acquire(Some(1)).unwrap();
    let b = bounds(10, 10, Duration::from_secs(60));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gone = spawn_waiter(&q, &ep, 0, b, "gone", Duration::ZERO, &tx);
    settle().await;
    spawn_waiter(&q, &ep, 0, b, "next", Duration::from_secs(1), &tx);
    settle().await;
    assert_eq!(q.depth(), vec![2]);
    gone.abort();
    settle().await;
    assert_eq!(q.depth(), vec![1]);
    drop(busy);
    q.released();
    assert_eq!(rx.recv().await.unwrap(), ("next", Ok(())));
    assert_eq!(ep.in_flight(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_release_without_waiters_changes_nothing() {
    let q = Queue::new(3);
    q.released();
    assert_eq!(q.depth(), vec![0, 0, 0]);
    q.grow(4);
    assert_eq!(q.depth(), vec![0, 0, 0, 0]);
}
