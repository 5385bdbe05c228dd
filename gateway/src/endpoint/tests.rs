#![allow(clippy::unwrap_used)]

use super::*;

const POLICY: OutlierPolicy = OutlierPolicy {
    consecutive_failures: 3,
    base_ejection: Duration::from_secs(10),
    max_ejection: Duration::from_secs(60),
    max_ejected_percent: 50,
};

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

#[tokio::test(start_paused = true)]
async fn failure_streak_reaches_threshold_and_success_resets_it() {
    let s = EndpointState::new("http://a");
    assert!(!s.record_failure(&POLICY));
    assert!(!s.record_failure(&POLICY));
    s.record_success(Duration::from_millis(5));
    assert!(!s.record_failure(&POLICY));
    assert!(!s.record_failure(&POLICY));
    assert!(s.record_failure(&POLICY));
    let off = OutlierPolicy {
        consecutive_failures: 0,
        ..POLICY
    };
    assert!(!s.record_failure(&off));
}

#[tokio::test(start_paused = true)]
async fn ejection_doubles_up_to_the_maximum_and_expires() {
    let s = EndpointState::new("http://a");
    let t0 = Instant::now();
    let until = s
        .eject(EjectReason::ConsecutiveFailures, &POLICY, t0)
        .unwrap();
    assert_eq!(until - t0, Duration::from_secs(10));
    assert!(s.is_ejected(t0));
    assert_eq!(
        s.ejection(t0).map(|e| e.1),
        Some(EjectReason::ConsecutiveFailures)
    );
    // Already ejected: no second ejection.
    assert!(s
        .eject(EjectReason::ConsecutiveFailures, &POLICY, t0)
        .is_none());
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(!s.is_ejected(Instant::now()));
    let t1 = Instant::now();
    assert_eq!(
        s.eject(EjectReason::ConsecutiveFailures, &POLICY, t1)
            .unwrap()
            - t1,
        Duration::from_secs(20)
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    let t2 = Instant::now();
    assert_eq!(
        s.eject(EjectReason::ConsecutiveFailures, &POLICY, t2)
            .unwrap()
            - t2,
        Duration::from_secs(40)
    );
    tokio::time::advance(Duration::from_secs(40)).await;
    let t3 = Instant::now();
    assert_eq!(
        s.eject(EjectReason::ConsecutiveFailures, &POLICY, t3)
            .unwrap()
            - t3,
        Duration::from_secs(60)
    );
    // Healthy for longer than the maximum: back to the base time.
    tokio::time::advance(Duration::from_secs(60 + 61)).await;
    let t4 = Instant::now();
    assert_eq!(
        s.eject(EjectReason::ConsecutiveFailures, &POLICY, t4)
            .unwrap()
            - t4,
        Duration::from_secs(10)
    );
}

#[tokio::test(start_paused = true)]
async fn gpu_block_holds_until_recovery_plus_hold_down() {
    let s = EndpointState::new("http://a");
    let now = Instant::now();
    assert!(!s.is_ejected(now));
    assert!(s.set_gpu_unhealthy("node n: gpu 1: XID 79"));
    assert!(!s.set_gpu_unhealthy("node n: gpu 1: XID 79"));
    assert!(s.is_ejected(now));
    assert_eq!(
        s.ejection(now).map(|e| e.1),
        Some(EjectReason::GpuUnhealthy)
    );
    tokio::time::advance(Duration::from_secs(600)).await;
    assert!(s.is_ejected(Instant::now()), "stays out while unhealthy");
    s.set_gpu_healthy(Instant::now(), Duration::from_secs(10));
    assert!(s
        .health_reason(Instant::now())
        .unwrap()
        .starts_with("recovered"));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(s.is_ejected(Instant::now()));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!s.is_ejected(Instant::now()));
    // Healthy again while already healthy: nothing changes.
    s.set_gpu_healthy(Instant::now(), Duration::from_secs(10));
    assert!(!s.is_ejected(Instant::now()));
}

#[test]
fn latency_average_moves_toward_samples() {
    let s = EndpointState::new("http://a");
    assert_eq!(s.latency(), None);
    s.record_success(Duration::from_millis(100));
    assert_eq!(s.latency(), Some(Duration::from_millis(100)));
    for _ in 0..50 {
        s.record_success(Duration::from_millis(20));
    }
    let l = s.latency().unwrap();
    assert!(
        l < Duration::from_millis(22) && l >= Duration::from_millis(20),
        "{l:?}"
    );
}
