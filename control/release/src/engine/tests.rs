#![allow(clippy::unwrap_used)]

use super::*;
use crate::metrics::routes::EndpointView;
use crate::metrics::Histogram;
use crate::spec::ReleaseSpec;

const SPEC: &str = "\
name: demo-v2
model: demo
stable: stable
canary: canary
steps: [10, 50, 100]
step_interval: 3s
min_requests: 20
gates: { ttft_p95_ratio: 1.5, tpot_p95_ratio: 1.5, error_rate_delta: 0.02 }
source: { gateways: [\"http://127.0.0.1:9190\"] }
";

/// Cumulative traffic of both variants, grown by `add`.
#[derive(Default, Clone)]
struct Traffic {
    snap: Snapshot,
}

impl Traffic {
    /// `n` more requests on `variant`, `errors` of them failed, every TTFT `ttft` s, every
    /// TPOT `tpot` s.
    fn add(&mut self, variant: &str, n: u64, errors: u64, ttft: f64, tpot: f64) -> Snapshot {
        let n = n as f64;
        self.snap
            .add_requests(variant, "success", n - errors as f64);
        self.snap
            .add_requests(variant, "upstream_5xx", errors as f64);
        let v = self.snap.variants.get_mut(variant).unwrap();
        add_all(&mut v.ttft, ttft, n);
        add_all(&mut v.tpot, tpot, n);
        self.snap.clone()
    }
}

fn add_all(h: &mut Histogram, value: f64, n: f64) {
    for le in [0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, f64::INFINITY] {
        h.add(le, if value <= le { n } else { 0.0 });
    }
}

fn obs(snap: Snapshot) -> Observation {
    Observation {
        snapshot: Some(Ok(snap)),
        canary: Some(Ok(view(None))),
    }
}

fn view(ejected: Option<&str>) -> CanaryView {
    CanaryView {
        endpoints: vec![EndpointView {
            gateway: "http://gw".into(),
            url: "http://canary".into(),
            ejected: ejected.map(str::to_owned),
            detail: None,
        }],
    }
}

fn spec(extra: &str) -> ReleaseSpec {
    ReleaseSpec::parse(&format!("{SPEC}{extra}")).unwrap()
}

/// Runs the steps with canary figures from `canary` until the release leaves step `until`
/// or ends; returns the time.
fn drive(r: &mut Release, t: &mut Traffic, mut now: u64, canary: (u64, f64, f64)) -> u64 {
    for _ in 0..100 {
        if !r.is_active() || matches!(r.state.phase, Phase::Paused { .. }) {
            break;
        }
        t.add("stable", 50, 0, 0.1, 0.01);
        let s = t.add("canary", 10, canary.0, canary.1, canary.2);
        r.tick(now, obs(s));
        now += 1000;
    }
    now
}

#[test]
fn a_good_canary_is_promoted_through_every_step() {
    let (mut r, first) = Release::new(spec(""), 0);
    assert_eq!(first[0].reason, "ReleaseStep");
    assert_eq!(r.record.state, "running");
    assert_eq!(r.state.canary_weight, 10);
    let mut t = Traffic::default();
    drive(&mut r, &mut t, 1000, (0, 0.1, 0.01));
    assert_eq!(r.record.state, "promoted");
    let weights: Vec<u32> = r.record.weights.iter().map(|w| w.canary).collect();
    assert_eq!(weights, vec![0, 10, 50, 100]);
    assert_eq!(r.record.steps.len(), 3);
    for s in &r.record.steps {
        assert_eq!(s.verdict, "pass");
        assert!(s.window_s >= 3.0, "{}", s.window_s);
        assert!(s.canary.requests >= 20);
        assert!(s.gates.iter().all(|g| g.pass));
        assert_eq!(s.gates.len(), 4, "ttft, tpot, error rate, gpu");
    }
    // Generations only grow.
    assert!(r.state.generation >= 4);
    assert!(r.final_split().unwrap().contains("weight: 100"));
}

#[test]
fn twice_the_ttft_rolls_back_at_the_first_judged_step() {
    let (mut r, _) = Release::new(spec(""), 0);
    let mut t = Traffic::default();
    drive(&mut r, &mut t, 1000, (0, 0.2, 0.01));
    assert_eq!(r.record.state, "rolled_back");
    assert_eq!(r.record.steps.len(), 1);
    let gate = &r.record.steps[0].gates[0];
    assert_eq!((gate.name.as_str(), gate.pass), ("ttft_p95", false));
    assert!(gate.value.unwrap() > gate.limit.unwrap());
    assert_eq!(r.state.canary_weight, 0);
    assert!(r.record.reason.as_deref().unwrap().contains("ttft_p95"));
    assert_eq!(r.record.weights.last().unwrap().canary, 0);
}

#[test]
fn slow_tokens_and_errors_roll_back_too() {
    let (mut r, _) = Release::new(spec(""), 0);
    drive(&mut r, &mut Traffic::default(), 1000, (0, 0.1, 0.05));
    let failed: Vec<&str> = r.record.steps[0]
        .gates
        .iter()
        .filter(|g| !g.pass)
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(
        (r.record.state.as_str(), failed),
        ("rolled_back", vec!["tpot_p95"])
    );
    let (mut r, _) = Release::new(spec(""), 0);
    // One error in ten: 10 % against 0 % + 2 points.
    drive(&mut r, &mut Traffic::default(), 1000, (1, 0.1, 0.01));
    let failed: Vec<&str> = r.record.steps[0]
        .gates
        .iter()
        .filter(|g| !g.pass)
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(
        (r.record.state.as_str(), failed),
        ("rolled_back", vec!["error_rate"])
    );
    let (mut r, _) = Release::new(spec(""), 0);
    let (mut r2, _) = Release::new(spec("").clone(), 0);
    r2.spec.gates.slo = Some(crate::spec::Slo {
        ttft_p95_s: Some(0.05),
        ..Default::default()
    });
    drive(&mut r2, &mut Traffic::default(), 1000, (0, 0.1, 0.01));
    assert_eq!(r2.record.state, "rolled_back", "absolute TTFT SLO");
    drive(&mut r, &mut Traffic::default(), 1000, (0, 0.1, 0.01));
    assert_eq!(r.record.state, "promoted");
}

#[test]
fn a_step_waits_for_min_requests_and_the_interval() {
    let (mut r, _) = Release::new(spec(""), 0);
    let mut t = Traffic::default();
    // The first snapshot opens the window.
    r.tick(0, obs(t.add("canary", 5, 0, 0.1, 0.01)));
    t.add("stable", 500, 0, 0.1, 0.01);
    // Long past the interval but only 15 canary requests in the window.
    r.tick(10_000, obs(t.add("canary", 15, 0, 0.1, 0.01)));
    assert_eq!(r.record.steps.len(), 1);
    assert_eq!(r.record.steps[0].verdict, "pending");
    assert_eq!(r.record.steps[0].canary.requests, 15);
    // Enough requests now.
    r.tick(11_000, obs(t.add("canary", 5, 0, 0.1, 0.01)));
    assert_eq!(r.record.steps[0].verdict, "pass");
    assert_eq!(r.record.current_step, Some(1));
    // Requests enough but the interval not passed.
    r.tick(11_500, obs(t.add("canary", 100, 0, 0.1, 0.01)));
    r.tick(13_000, obs(t.add("canary", 100, 0, 0.1, 0.01)));
    assert_eq!(r.record.steps[1].verdict, "pending");
    r.tick(14_600, obs(t.add("canary", 1, 0, 0.1, 0.01)));
    assert_eq!(r.record.steps[1].verdict, "pass");
    // A failed read changes nothing but is kept for display.
    let (_, changed) = r.tick(
        15_000,
        Observation {
            snapshot: Some(Err("GET x: refused".into())),
            canary: None,
        },
    );
    assert!(!changed);
    assert_eq!(r.state.read_error.as_deref(), Some("GET x: refused"));
}

#[test]
fn the_last_step_compares_with_the_stable_figures_of_the_step_before() {
    let (mut r, _) = Release::new(spec(""), 0);
    let mut t = Traffic::default();
    let mut now = 1000;
    while r.record.current_step != Some(2) {
        t.add("stable", 50, 0, 0.1, 0.01);
        r.tick(now, obs(t.add("canary", 10, 0, 0.1, 0.01)));
        now += 1000;
    }
    // At 100 % the stable variant serves nothing; a slow canary still fails.
    for _ in 0..10 {
        r.tick(now, obs(t.add("canary", 10, 0, 0.5, 0.01)));
        now += 1000;
    }
    assert_eq!(r.record.state, "rolled_back");
    let gate = &r.record.steps[2].gates[0];
    assert!(
        gate.detail.contains("stable from step 2"),
        "{}",
        gate.detail
    );
}

#[test]
fn an_unhealthy_canary_gpu_rolls_back_at_once() {
    let (mut r, _) = Release::new(spec(""), 0);
    let mut t = Traffic::default();
    r.tick(0, obs(t.add("canary", 1, 0, 0.1, 0.01)));
    let (tr, changed) = r.tick(
        500,
        Observation {
            snapshot: Some(Ok(t.add("canary", 1, 0, 0.1, 0.01))),
            canary: Some(Ok(view(Some("gpu_unhealthy")))),
        },
    );
    assert!(changed);
    assert_eq!(tr[0].reason, "ReleaseRolledBack");
    assert!(tr[0].warning);
    assert_eq!(r.record.state, "rolled_back");
    assert_eq!(r.record.steps[0].gates[0].name, "gpu_healthy");
    assert!(r
        .record
        .reason
        .as_deref()
        .unwrap()
        .contains("http://canary"));
    // Other ejections are not a GPU failure.
    let (mut r, _) = Release::new(spec(""), 0);
    r.tick(
        0,
        Observation {
            snapshot: None,
            canary: Some(Ok(view(Some("failures")))),
        },
    );
    assert_eq!(r.record.state, "running");
}

#[test]
fn abort_and_promote_end_it_at_once() {
    let (mut r, _) = Release::new(spec(""), 0);
    let t = r.abort(10).unwrap();
    assert_eq!(t.reason, "ReleaseAborted");
    assert_eq!(
        (r.record.state.as_str(), r.state.canary_weight),
        ("aborted", 0)
    );
    assert_eq!(r.record.reason.as_deref(), Some("aborted"));
    assert!(r.abort(11).unwrap_err().contains("has ended (aborted)"));
    assert!(r.promote(11).is_err());
    let (mut r, _) = Release::new(spec(""), 0);
    r.promote(10).unwrap();
    assert_eq!(
        (r.record.state.as_str(), r.state.canary_weight),
        ("promoted", 100)
    );
    assert_eq!(r.record.weights.last().unwrap().canary, 100);
}

#[test]
fn retry_after_the_pause_starts_again_from_the_first_step() {
    let (mut r, _) = Release::new(
        spec("on_rollback: { action: retry, pause: 10s, max_retries: 1 }\n"),
        0,
    );
    let mut t = Traffic::default();
    let now = drive(&mut r, &mut t, 1000, (0, 0.2, 0.01));
    assert_eq!(r.record.state, "paused");
    assert_eq!(r.state.canary_weight, 0);
    let Phase::Paused { until_ms } = r.state.phase else {
        panic!("{:?}", r.state.phase)
    };
    assert_eq!(until_ms, now - 1000 + 10_000);
    r.tick(until_ms - 1, Observation::default());
    assert_eq!(r.record.state, "paused");
    let (tr, _) = r.tick(until_ms, Observation::default());
    assert_eq!(tr[0].reason, "ReleaseRetry");
    assert_eq!(
        (
            r.record.state.as_str(),
            r.state.canary_weight,
            r.state.retries
        ),
        ("running", 10, 1)
    );
    // The second failure is the last.
    drive(&mut r, &mut t, until_ms + 1000, (0, 0.2, 0.01));
    assert_eq!(r.record.state, "rolled_back");
    assert_eq!(r.record.steps.len(), 2);
}

#[test]
fn warmup_waits_for_every_canary_endpoint_then_times_out() {
    let (mut r, _) = Release::new(spec("warmup: { required: true, timeout: 1m }\n"), 0);
    assert_eq!(
        (r.record.state.as_str(), r.state.canary_weight),
        ("warming", 0)
    );
    assert!(!r.needs_snapshot() && r.needs_canary_view());
    r.tick(
        1000,
        Observation {
            snapshot: None,
            canary: Some(Ok(view(Some("model_not_warm")))),
        },
    );
    assert_eq!(r.record.state, "warming");
    r.tick(
        2000,
        Observation {
            snapshot: None,
            canary: Some(Ok(view(None))),
        },
    );
    assert_eq!(
        (r.record.state.as_str(), r.state.canary_weight),
        ("running", 10)
    );
    let (mut r, _) = Release::new(spec("warmup: { required: true, timeout: 1m }\n"), 0);
    r.tick(
        60_000,
        Observation {
            snapshot: None,
            canary: Some(Ok(view(Some("model_not_warm")))),
        },
    );
    assert_eq!(r.record.state, "rolled_back");
    assert!(r
        .record
        .reason
        .as_deref()
        .unwrap()
        .contains("cold: http://canary"));
}

#[test]
fn a_saved_release_resumes_at_the_same_step_and_window() {
    let (mut r, _) = Release::new(spec(""), 0);
    let mut t = Traffic::default();
    let mut now = 1000;
    while r.record.current_step != Some(1) {
        t.add("stable", 50, 0, 0.1, 0.01);
        r.tick(now, obs(t.add("canary", 10, 0, 0.1, 0.01)));
        now += 1000;
    }
    r.tick(now, obs(t.add("canary", 10, 0, 0.1, 0.01)));
    let saved = serde_json::to_string(&r).unwrap();
    let mut back: Release = serde_json::from_str(&saved).unwrap();
    assert_eq!(back.state.phase, r.state.phase);
    assert_eq!(back.record.weights, r.record.weights);
    assert_eq!(back.record.current_step, Some(1));
    // The window opened before the save still counts.
    let Phase::Step {
        baseline: Some(b), ..
    } = &back.state.phase
    else {
        panic!()
    };
    assert_eq!(b.at_ms, now);
    drive(&mut back, &mut t, now + 1000, (0, 0.1, 0.01));
    assert_eq!(back.record.state, "promoted");
}

#[test]
fn a_gateway_restart_opens_the_window_again() {
    let (mut r, _) = Release::new(spec(""), 0);
    let mut t = Traffic::default();
    r.tick(0, obs(t.add("canary", 50, 0, 0.1, 0.01)));
    // Counters back to zero: a new window, not a negative one.
    let mut fresh = Traffic::default();
    r.tick(5000, obs(fresh.add("canary", 5, 0, 0.1, 0.01)));
    let Phase::Step {
        baseline: Some(b), ..
    } = &r.state.phase
    else {
        panic!()
    };
    assert_eq!(b.at_ms, 5000);
    assert_eq!(r.record.steps[0].verdict, "pending");
}
