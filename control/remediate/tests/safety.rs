//! The safety rules on tokio's paused clock, with an in-memory cluster behind `NodeActions`:
//! breaker, cooldown, K leases, ladder, recovery, dry run, restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fake::FakeCluster;
use infergate_config::Dur;
use infergate_gpu::health::{Action, Severity};
use infergate_remediate::{
    DryRun, GpuVerdict, HostRequest, LocalLeases, NodeState, RemediationConfig, Remediator, Rung,
    State, Step, Suppressed,
};
use tokio::time::advance;

const MIN: Duration = Duration::from_secs(60);

fn config() -> RemediationConfig {
    RemediationConfig::default()
}

fn bad(action: Action) -> Vec<GpuVerdict> {
    vec![
        GpuVerdict {
            gpu: 0,
            severity: Severity::Unhealthy,
            action,
            reasons: vec!["XID 79: GPU has fallen off the bus".into()],
            codes: vec!["xid_79".into()],
        },
        GpuVerdict::healthy(1),
    ]
}

fn good() -> Vec<GpuVerdict> {
    vec![GpuVerdict::healthy(0), GpuVerdict::healthy(1)]
}

fn remediator(
    cluster: &FakeCluster,
    leases: &LocalLeases,
    node: &str,
    config: RemediationConfig,
) -> Remediator {
    Remediator::new(
        config,
        node,
        Arc::new(cluster.node(node)),
        Arc::new(leases.lock_for(node)),
    )
}

fn leases(config: &RemediationConfig) -> LocalLeases {
    LocalLeases::new(config.max_concurrent_nodes, config.lease_duration.get())
}

/// Observes every `step` for `total`, returning every outcome.
async fn run_for(
    r: &mut Remediator,
    verdicts: &[GpuVerdict],
    step: Duration,
    total: Duration,
) -> Vec<infergate_remediate::Outcome> {
    let mut outcomes = Vec::new();
    let mut elapsed = Duration::ZERO;
    while elapsed < total {
        advance(step).await;
        elapsed += step;
        outcomes.push(r.observe(verdicts).await);
    }
    outcomes
}

#[tokio::test(start_paused = true)]
async fn breaker_holds_under_a_fault_storm_and_resumes_when_it_passes() {
    let mut c = config();
    c.max_concurrent_nodes = 3;
    c.breaker.max_unhealthy_share = 0.3;
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut nodes: Vec<Remediator> = (0..20)
        .map(|i| remediator(&cluster, &leases, &format!("node-{i:02}"), c.clone()))
        .collect();

    // 10 of 20 nodes report XID 79 at once. Conditions and taints change at once everywhere.
    for (i, r) in nodes.iter_mut().enumerate() {
        let v = if i < 10 {
            bad(Action::RebootNode)
        } else {
            good()
        };
        let out = r.observe(&v).await;
        assert!(matches!(
            out.suppressed,
            None | Some(Suppressed::Settling { .. })
        ));
    }
    for i in 0..10 {
        let n = cluster.get(&format!("node-{i:02}"));
        assert_eq!(n.condition, Some(false));
        assert_eq!(n.taint.as_deref(), Some("0"));
    }

    // The storm lasts an hour: 50 % > 30 % unhealthy, so no node acts, each alerts once.
    for _ in 0..120 {
        advance(Duration::from_secs(30)).await;
        for r in nodes.iter_mut().take(10) {
            let out = r.observe(&bad(Action::RebootNode)).await;
            assert!(
                matches!(out.suppressed, Some(Suppressed::CircuitOpen(h)) if h.unhealthy == 10 && h.gpu_nodes == 20),
                "{out:?}"
            );
            assert_eq!(out.state, State::Faulty);
        }
    }
    assert_eq!(cluster.all_disruptive(), Vec::<(String, String)>::new());
    assert_eq!(leases.holders(), vec![None, None, None]);
    for (i, r) in nodes.iter().take(10).enumerate() {
        let events = cluster.get(&format!("node-{i:02}")).events();
        assert_eq!(
            events
                .iter()
                .filter(|e| *e == "RemediationCircuitOpen")
                .count(),
            1,
            "{events:?}"
        );
        let m = r.metrics().snapshot();
        assert_eq!(m.breaker_trips_total, 1);
        assert!(m.breaker_open);
        assert_eq!(m.suppressed_breaker_total, 120);
        assert_eq!(m.episodes_started_total, 0);
    }

    // Six recover: 4 of 20 (20 %) is below the threshold. The other four resume, three at a
    // time (K = 3).
    for r in nodes.iter_mut().take(6) {
        r.observe(&good()).await;
    }
    // The others read the fleet again after `recheck_interval`.
    advance(Duration::from_secs(15)).await;
    let mut started = 0;
    let mut waiting = 0;
    for r in nodes.iter_mut().skip(6).take(4) {
        let out = r.observe(&bad(Action::RebootNode)).await;
        match out.suppressed {
            None => {
                started += 1;
                assert!(
                    out.steps.contains(&Step::Request(HostRequest::Reboot)),
                    "{out:?}"
                );
            }
            Some(Suppressed::NoLease) => waiting += 1,
            other => panic!("{other:?}"),
        }
        assert!(!r.metrics().snapshot().breaker_open);
    }
    assert_eq!((started, waiting), (3, 1));
    assert!(cluster
        .get("node-06")
        .events()
        .contains(&"RemediationCircuitClosed".to_owned()));
}

#[tokio::test(start_paused = true)]
async fn the_breaker_does_not_trip_on_one_bad_node_in_a_small_cluster() {
    let c = config();
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut a = remediator(&cluster, &leases, "a", c.clone());
    let _b = remediator(&cluster, &leases, "b", c.clone());
    a.observe(&bad(Action::RestartPod)).await;
    advance(MIN).await;
    // 1 of 2 is 50 %, but fewer than `min_unhealthy_nodes` (2).
    let out = a.observe(&bad(Action::RestartPod)).await;
    assert_eq!(out.suppressed, None);
    assert_eq!(cluster.get("a").disruptive(), ["restart_pods [0]"]);
}

#[tokio::test(start_paused = true)]
async fn cooldown_holds_under_repeated_faults() {
    let c = config(); // cooldown 30m, settle 30s
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut r = remediator(&cluster, &leases, "n", c.clone());

    // First fault: restarted after the settle time.
    r.observe(&bad(Action::RestartPod)).await;
    advance(Duration::from_secs(31)).await;
    let out = r.observe(&bad(Action::RestartPod)).await;
    assert!(
        matches!(
            out.steps.as_slice(),
            [Step::AcquireLease { .. }, Step::RestartPods { .. }]
        ),
        "{out:?}"
    );
    advance(MIN).await;
    let out = r.observe(&good()).await;
    assert!(out
        .steps
        .iter()
        .any(|s| matches!(s, Step::ReleaseLease { .. })));
    assert_eq!(r.state(), State::Healthy);

    // A fault every two minutes for the next 25 minutes: marks follow, nothing disruptive.
    for _ in 0..12 {
        advance(MIN).await;
        r.observe(&bad(Action::RestartPod)).await;
        advance(MIN).await;
        let out = r.observe(&bad(Action::RestartPod)).await;
        assert!(
            matches!(out.suppressed, Some(Suppressed::Cooldown { .. })),
            "{out:?}"
        );
        r.observe(&good()).await;
    }
    let n = cluster.get("n");
    assert_eq!(n.disruptive(), ["restart_pods [0]"]);
    assert_eq!(
        n.events()
            .iter()
            .filter(|e| *e == "RemediationDeferred")
            .count(),
        12
    );
    // Counted at each of the two faulty observations of every fault.
    assert_eq!(r.metrics().snapshot().suppressed_cooldown_total, 24);
    assert_eq!(n.condition, Some(true));

    // After the cooldown, a new fault is acted on again.
    advance(6 * MIN).await;
    r.observe(&bad(Action::RestartPod)).await;
    advance(Duration::from_secs(31)).await;
    let out = r.observe(&bad(Action::RestartPod)).await;
    assert_eq!(out.suppressed, None);
    assert_eq!(
        cluster.get("n").disruptive(),
        ["restart_pods [0]", "restart_pods [0]"]
    );
}

#[tokio::test(start_paused = true)]
async fn one_lease_one_node_at_a_time() {
    let mut c = config(); // K = 1
                          // Two of four nodes unhealthy (50 %): keep the breaker out of this test.
    c.breaker.max_unhealthy_share = 0.6;
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut a = remediator(&cluster, &leases, "a", c.clone());
    let mut b = remediator(&cluster, &leases, "b", c.clone());
    cluster.node("c");
    cluster.node("d");

    a.observe(&bad(Action::ResetGpu)).await;
    b.observe(&bad(Action::ResetGpu)).await;
    advance(Duration::from_secs(31)).await;
    let out = a.observe(&bad(Action::ResetGpu)).await;
    assert_eq!(out.state, State::Remediating(Rung::Drain));
    assert_eq!(leases.holders(), [Some("a".to_owned())]);

    // b waits as long as a holds the lease (a renews it by observing).
    for _ in 0..10 {
        let out = b.observe(&bad(Action::ResetGpu)).await;
        assert_eq!(out.suppressed, Some(Suppressed::NoLease));
        advance(Duration::from_secs(10)).await;
        a.observe(&bad(Action::ResetGpu)).await;
    }
    assert!(cluster.get("b").disruptive().is_empty());
    assert_eq!(
        cluster.get("a").disruptive(),
        ["cordon", "evict", "request reset-gpu:0"]
    );
    assert_eq!(
        cluster
            .get("b")
            .events()
            .iter()
            .filter(|e| *e == "RemediationDeferred")
            .count(),
        1
    );

    // a recovers and lets go; b goes next.
    let out = a.observe(&good()).await;
    assert!(out.steps.contains(&Step::Uncordon));
    assert!(out.steps.contains(&Step::ClearRequest));
    assert_eq!(leases.holders(), [None]);
    // b asks again within `recheck_interval` (15 s).
    advance(Duration::from_secs(15)).await;
    let out = b.observe(&bad(Action::ResetGpu)).await;
    assert_eq!(out.suppressed, None);
    assert_eq!(leases.holders(), [Some("b".to_owned())]);
    assert!(!cluster.get("a").cordoned);
    assert!(cluster.get("b").cordoned);
}

#[tokio::test(start_paused = true)]
async fn a_crashed_holder_frees_its_lease_when_it_expires() {
    let mut c = config();
    c.breaker.max_unhealthy_share = 1.0;
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut a = remediator(&cluster, &leases, "a", c.clone());
    let mut b = remediator(&cluster, &leases, "b", c.clone());
    a.observe(&bad(Action::RestartPod)).await;
    b.observe(&bad(Action::RestartPod)).await;
    advance(Duration::from_secs(31)).await;
    a.observe(&bad(Action::RestartPod)).await;
    // a stops observing (crashed). b waits out the 60 s lease.
    advance(Duration::from_secs(30)).await;
    assert_eq!(
        b.observe(&bad(Action::RestartPod)).await.suppressed,
        Some(Suppressed::NoLease)
    );
    advance(Duration::from_secs(31)).await;
    let out = b.observe(&bad(Action::RestartPod)).await;
    assert_eq!(out.suppressed, None, "{out:?}");
    assert_eq!(cluster.get("b").disruptive(), ["restart_pods [0]"]);
}

#[tokio::test(start_paused = true)]
async fn the_ladder_escalates_on_timeouts_then_gives_up() {
    let c = config(); // 5m, 15m, 30m
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut r = remediator(&cluster, &leases, "n", c.clone());
    let v = bad(Action::RestartPod);

    r.observe(&v).await;
    let outs = run_for(&mut r, &v, Duration::from_secs(10), Duration::from_secs(30)).await;
    assert!(outs.iter().any(|o| o
        .steps
        .iter()
        .any(|s| matches!(s, Step::RestartPods { .. }))));
    assert_eq!(r.state(), State::Remediating(Rung::RestartPod));
    assert_eq!(cluster.get("n").disruptive(), ["restart_pods [0]"]);

    // Still unhealthy after 5 minutes: drain, and ask for a GPU reset.
    run_for(
        &mut r,
        &v,
        Duration::from_secs(10),
        5 * MIN - Duration::from_secs(10),
    )
    .await;
    assert_eq!(r.state(), State::Remediating(Rung::RestartPod));
    advance(Duration::from_secs(10)).await;
    let out = r.observe(&v).await;
    assert_eq!(r.state(), State::Remediating(Rung::Drain), "{out:?}");
    assert!(out.steps.contains(&Step::Escalate {
        from: Rung::RestartPod,
        to: Rung::Drain
    }));
    advance(Duration::from_secs(10)).await;
    let out = r.observe(&v).await;
    assert!(out.steps.is_empty());
    assert_eq!(
        cluster.get("n").disruptive(),
        ["restart_pods [0]", "cordon", "evict", "request reset-gpu:0"]
    );

    // 15 minutes later: reboot.
    run_for(&mut r, &v, Duration::from_secs(10), 15 * MIN).await;
    assert_eq!(r.state(), State::Remediating(Rung::Reboot));
    assert_eq!(cluster.get("n").request.as_deref(), Some("reboot"));

    // 30 minutes later: exhausted; the lease goes back, the node stays cordoned and tainted.
    run_for(&mut r, &v, Duration::from_secs(10), 30 * MIN).await;
    assert_eq!(r.state(), State::Exhausted);
    assert_eq!(leases.holders(), [None]);
    let n = cluster.get("n");
    assert!(n.cordoned && n.taint.is_some());
    assert_eq!(
        n.disruptive(),
        [
            "restart_pods [0]",
            "cordon",
            "evict",
            "request reset-gpu:0",
            "cordon",
            "evict",
            "request reboot"
        ]
    );
    let events = n.events();
    for e in [
        "GpuUnhealthy",
        "GpuTaintAdded",
        "RemediationStarted",
        "PodRestarted",
        "RemediationEscalated",
        "NodeCordoned",
        "PodsEvicted",
        "GpuResetRequested",
        "RebootRequested",
        "RemediationExhausted",
    ] {
        assert!(events.contains(&e.to_owned()), "{e} not in {events:?}");
    }
    assert_eq!(r.metrics().snapshot().episodes_exhausted_total, 1);

    // Nothing more while exhausted.
    run_for(&mut r, &v, MIN, 60 * MIN).await;
    assert_eq!(cluster.get("n").disruptive().len(), 7);

    // A human fixes it: everything is undone.
    let out = r.observe(&good()).await;
    assert_eq!(
        out.steps,
        [
            Step::SetCondition { healthy: true },
            Step::RemoveTaint,
            Step::ClearRequest,
            Step::Uncordon
        ]
    );
    let n = cluster.get("n");
    assert!(!n.cordoned && n.taint.is_none() && n.request.is_none());
    assert_eq!(n.condition, Some(true));
}

#[tokio::test(start_paused = true)]
async fn the_ladder_stops_on_recovery() {
    let c = config();
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut r = remediator(&cluster, &leases, "n", c.clone());
    let v = bad(Action::RestartPod);
    r.observe(&v).await;
    run_for(&mut r, &v, Duration::from_secs(10), 2 * MIN).await;
    let out = r.observe(&good()).await;
    assert_eq!(out.state, State::Healthy);
    assert!(out.steps.contains(&Step::SetCondition { healthy: true }));
    assert!(out.steps.contains(&Step::RemoveTaint));
    assert!(out
        .steps
        .iter()
        .any(|s| matches!(s, Step::ReleaseLease { .. })));
    assert!(!out.steps.contains(&Step::Uncordon)); // never cordoned
    run_for(&mut r, &good(), MIN, 60 * MIN).await;
    assert_eq!(cluster.get("n").disruptive(), ["restart_pods [0]"]);
    assert_eq!(leases.holders(), [None]);
    assert_eq!(r.metrics().snapshot().episodes_recovered_total, 1);
}

#[tokio::test(start_paused = true)]
async fn a_stronger_action_jumps_up_the_ladder_at_once() {
    let c = config();
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut r = remediator(&cluster, &leases, "n", c.clone());
    r.observe(&bad(Action::RestartPod)).await;
    advance(Duration::from_secs(31)).await;
    r.observe(&bad(Action::RestartPod)).await;
    advance(Duration::from_secs(10)).await;
    let out = r.observe(&bad(Action::RebootNode)).await;
    assert!(out.steps.contains(&Step::Escalate {
        from: Rung::RestartPod,
        to: Rung::Reboot
    }));
    assert_eq!(
        cluster.get("n").disruptive(),
        ["restart_pods [0]", "cordon", "evict", "request reboot"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_drain_held_by_a_pdb_requests_nothing_and_is_retried() {
    let c = config(); // retry every minute
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut r = remediator(&cluster, &leases, "n", c.clone());
    cluster.with("n", |n| n.blocked_evictions = 2);
    let v = bad(Action::ResetGpu);
    r.observe(&v).await;
    advance(Duration::from_secs(31)).await;
    r.observe(&v).await;
    assert_eq!(cluster.get("n").disruptive(), ["cordon", "evict"]);
    assert!(cluster
        .get("n")
        .events()
        .contains(&"EvictionIncomplete".to_owned()));
    run_for(&mut r, &v, Duration::from_secs(20), 3 * MIN).await;
    assert_eq!(
        cluster.get("n").disruptive(),
        [
            "cordon",
            "evict",
            "cordon",
            "evict",
            "cordon",
            "evict",
            "request reset-gpu:0"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn dry_run_takes_no_action() {
    let c = config();
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut r = Remediator::new(
        c.clone(),
        "n",
        Arc::new(DryRun::new(cluster.node("n"))),
        Arc::new(DryRun::new(leases.lock_for("n"))),
    );
    let v = bad(Action::RestartPod);
    r.observe(&v).await;
    let outs = run_for(&mut r, &v, Duration::from_secs(10), 60 * MIN).await;
    // The decisions are the real ones…
    let steps: Vec<&Step> = outs.iter().flat_map(|o| &o.steps).collect();
    assert!(steps.iter().any(|s| matches!(s, Step::RestartPods { .. })));
    assert!(steps.iter().any(|s| matches!(s, Step::Cordon)));
    assert!(steps
        .iter()
        .any(|s| matches!(s, Step::Request(HostRequest::Reboot))));
    assert_eq!(r.state(), State::Exhausted);
    r.observe(&good()).await;
    // …but only reads reached the cluster, and no lease was taken.
    let n = cluster.get("n");
    assert!(n.actions().is_empty(), "{:?}", n.actions());
    assert!(n.events().is_empty());
    assert!(n.calls.iter().all(|c| c.starts_with("read ")));
    assert_eq!(leases.holders(), [None]);
}

#[tokio::test(start_paused = true)]
async fn state_left_on_the_node_survives_a_restart() {
    let c = config();
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    // Before the restart: cordoned by us, a reboot asked for 5 minutes ago.
    let initial = NodeState {
        unschedulable: true,
        cordoned_by_us: true,
        condition_healthy: Some(false),
        taint_value: Some("0".into()),
        requested_action: Some("reboot".into()),
        requested_at: Some(SystemTime::now() - 5 * MIN),
        boot_id: Some("boot-2".into()),
        requested_boot_id: Some("boot-1".into()),
    };
    // p: the reboot was asked for but has not happened yet (same boot).
    cluster.with("p", |n| {
        n.initial = NodeState {
            boot_id: Some("boot-1".into()),
            ..initial.clone()
        };
        n.cordoned = true;
    });
    cluster.with("n", |n| {
        n.initial = initial.clone();
        n.cordoned = true;
        n.taint = Some("0".into());
    });
    cluster.with("m", |n| {
        n.initial = initial.clone();
        n.cordoned = true;
        n.taint = Some("0".into());
    });

    // n comes back healthy: uncordon, withdraw the request; cooldown still runs.
    let mut n = remediator(&cluster, &leases, "n", c.clone());
    let out = n.observe(&good()).await;
    assert!(out.steps.contains(&Step::Uncordon) && out.steps.contains(&Step::ClearRequest));
    assert!(out.steps.contains(&Step::RemoveTaint));
    n.observe(&bad(Action::RestartPod)).await;
    advance(MIN).await;
    let out = n.observe(&bad(Action::RestartPod)).await;
    assert!(
        matches!(out.suppressed, Some(Suppressed::Cooldown { remaining }) if remaining > 20 * MIN)
    );

    // m comes back still unhealthy: the reboot did not help, a human is needed.
    let mut m = remediator(&cluster, &leases, "m", c.clone());
    m.observe(&bad(Action::RebootNode)).await;
    advance(40 * MIN).await;
    let out = m.observe(&bad(Action::RebootNode)).await;
    assert_eq!(out.state, State::Exhausted, "{out:?}");
    assert!(cluster.get("m").disruptive().is_empty());
    assert!(cluster
        .get("m")
        .events()
        .contains(&"RemediationExhausted".to_owned()));

    // p is still waiting for its reboot: it is not given up on; the cooldown holds.
    let mut p = remediator(&cluster, &leases, "p", c.clone());
    p.observe(&bad(Action::RebootNode)).await;
    advance(MIN).await;
    let out = p.observe(&bad(Action::RebootNode)).await;
    assert_eq!(out.state, State::Faulty);
    assert!(matches!(out.suppressed, Some(Suppressed::Cooldown { .. })));
    assert!(cluster.get("p").disruptive().is_empty());
}

#[tokio::test(start_paused = true)]
async fn marks_follow_the_verdicts_at_once_and_write_only_on_change() {
    let mut c = config();
    c.dry_run = false;
    c.cooldown = Dur::secs(0);
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut r = remediator(&cluster, &leases, "n", c);
    let out = r.observe(&bad(Action::None)).await;
    assert_eq!(
        out.steps,
        [
            Step::SetCondition { healthy: false },
            Step::AddTaint { value: "0".into() }
        ]
    );
    // Same verdicts: nothing written; an unhealthy GPU with no action asks for nothing.
    for _ in 0..10 {
        advance(MIN).await;
        let out = r.observe(&bad(Action::None)).await;
        assert!(out.steps.is_empty());
        assert_eq!(out.state, State::Faulty);
    }
    let mut two = bad(Action::None);
    two[1] = two[0].clone();
    two[1].gpu = 1;
    let out = r.observe(&two).await;
    assert_eq!(
        out.steps,
        [
            Step::SetCondition { healthy: false },
            Step::AddTaint {
                value: "0-1".into()
            }
        ]
    );
    assert!(cluster.get("n").disruptive().is_empty());
}

#[tokio::test(start_paused = true)]
async fn held_back_nodes_read_the_fleet_and_the_leases_at_most_every_recheck_interval() {
    let c = config(); // recheck every 15 s
    let cluster = FakeCluster::default();
    let leases = leases(&c);
    let mut held: Vec<Remediator> = (0..3)
        .map(|i| remediator(&cluster, &leases, &format!("h{i}"), c.clone()))
        .collect();
    for i in 0..3 {
        cluster.node(&format!("ok{i}"));
    }
    // 3 of 6 unhealthy: the breaker holds; the control loop observes every second.
    for r in held.iter_mut() {
        r.observe(&bad(Action::RebootNode)).await;
    }
    advance(Duration::from_secs(30)).await;
    for _ in 0..60 {
        for r in held.iter_mut() {
            let out = r.observe(&bad(Action::RebootNode)).await;
            assert!(matches!(out.suppressed, Some(Suppressed::CircuitOpen(_))));
        }
        advance(Duration::from_secs(1)).await;
    }
    let reads = cluster
        .get("h0")
        .calls
        .iter()
        .filter(|c| *c == "read fleet_health")
        .count();
    assert_eq!(reads, 4, "one LIST per 15 s over 60 s");
    assert!(cluster.all_disruptive().is_empty());
}
