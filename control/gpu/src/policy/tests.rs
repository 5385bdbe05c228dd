use std::collections::BTreeSet;

use infergate_config::units::Dur;

use super::*;
use crate::fake::{healthy_gpu, node_reading, FakeProbe};
use crate::health::{
    Action, CallFault, GpuReading, NodeReading, RecoveryAction, Severity, XidEvent,
};
use crate::health::{RemappedRows, RetiredPages};
use crate::probe::GpuProbe;
use crate::probe::ProbeError;

const MIN: u64 = 60_000;

fn node(at_ms: u64, gpus: Vec<GpuReading>) -> NodeReading {
    node_reading("n", at_ms, gpus)
}

fn with_xid(index: u32, xid: u64, at_ms: u64) -> GpuReading {
    let mut g = healthy_gpu(index);
    g.xids.push(XidEvent {
        gpu: index,
        xid,
        at_ms,
    });
    g
}

/// Evaluates one GPU reading with a fresh default policy.
fn once(g: GpuReading) -> GpuVerdict {
    let mut p = Policy::new(PolicyConfig::default());
    p.evaluate(&node(1_000, vec![g])).remove(0)
}

fn codes(v: &GpuVerdict) -> Vec<&str> {
    v.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn healthy_gpu_is_healthy() {
    let v = once(healthy_gpu(0));
    assert_eq!(v.state, Severity::Healthy);
    assert_eq!(v.action, Action::None);
    assert!(v.findings.is_empty());
    assert!(v.new_findings.is_empty());
    assert_eq!(v.uuid, "GPU-fake-0");
}

#[test]
fn application_xids_restart_the_pod() {
    for xid in [8, 13, 31, 32, 43, 68, 69] {
        let v = once(with_xid(0, xid, 900));
        assert_eq!(
            (v.state, v.action),
            (Severity::Degraded, Action::RestartPod),
            "XID {xid}"
        );
        assert_eq!(codes(&v), [format!("xid_{xid}")]);
        assert_eq!(v.new_findings, [format!("xid_{xid}")]);
    }
}

#[test]
fn xid_45_is_ignored() {
    let v = once(with_xid(0, 45, 900));
    assert_eq!(v.state, Severity::Healthy);
    assert!(v.findings.is_empty());
}

#[test]
fn memory_xids_reset_the_gpu() {
    for xid in [48, 64, 95, 46, 62, 109, 110, 136, 140, 143, 155, 158] {
        let v = once(with_xid(0, xid, 900));
        assert_eq!(
            (v.state, v.action),
            (Severity::Unhealthy, Action::ResetGpu),
            "XID {xid}"
        );
    }
    // Recorded for a reset at a quiet window (the reference's "Ours": 63 reset pending,
    // 94 contained, 156 retirement event).
    for xid in [63, 94, 156] {
        let v = once(with_xid(0, xid, 900));
        assert_eq!(
            (v.state, v.action),
            (Severity::Degraded, Action::ResetGpu),
            "XID {xid}"
        );
    }
}

#[test]
fn bus_nvlink_and_gsp_xids_reboot_the_node() {
    for xid in [74, 79, 119, 120] {
        let v = once(with_xid(0, xid, 900));
        assert_eq!(
            (v.state, v.action),
            (Severity::Unhealthy, Action::RebootNode),
            "XID {xid}"
        );
    }
    let v = once(with_xid(0, 79, 900));
    assert!(
        v.findings[0]
            .reason
            .starts_with("XID 79 (GPU_HAS_FALLEN_OFF_THE_BUS: GPU has fallen off the bus): once"),
        "{}",
        v.findings[0].reason
    );
}

#[test]
fn other_listed_xids() {
    let v = once(with_xid(0, 54, 900));
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::None));
    for xid in [92, 121, 144, 150, 154] {
        let v = once(with_xid(0, xid, 900));
        assert_eq!(
            (v.state, v.action),
            (Severity::Degraded, Action::None),
            "XID {xid}"
        );
    }
    let v = once(with_xid(0, 61, 900));
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::ResetGpu));
}

#[test]
fn unknown_xid_is_degraded_without_action() {
    let v = once(with_xid(0, 999, 900));
    assert_eq!((v.state, v.action), (Severity::Degraded, Action::None));
    assert!(v.findings[0].reason.contains("not in the table"));
}

#[test]
fn xid_32_twice_in_the_window_resets_the_gpu() {
    let mut p = Policy::new(PolicyConfig::default());
    let v = p.evaluate(&node(1_000, vec![with_xid(0, 32, 900)]));
    assert_eq!(v[0].action, Action::RestartPod);
    let v = p.evaluate(&node(2 * MIN, vec![with_xid(0, 32, 2 * MIN - 10)]));
    assert_eq!(
        (v[0].state, v[0].action),
        (Severity::Unhealthy, Action::ResetGpu)
    );
    assert!(v[0].findings[0].reason.contains("2 times"));
    assert!(v[0].findings[0].reason.contains("escalated"));
    assert_eq!(
        v[0].new_findings,
        ["xid_32"],
        "a new event of a known code is new"
    );
}

#[test]
fn the_same_event_twice_counts_once() {
    let mut p = Policy::new(PolicyConfig::default());
    p.evaluate(&node(1_000, vec![with_xid(0, 32, 900)]));
    // The same event (e.g. seen on the channel and in a reading) again.
    let v = p.evaluate(&node(2_000, vec![with_xid(0, 32, 900)]));
    assert_eq!(v[0].action, Action::RestartPod);
    assert!(v[0].new_findings.is_empty());
}

#[test]
fn xid_79_stays_unhealthy_for_the_window_then_healthy_reads() {
    let mut p = Policy::new(PolicyConfig::default());
    let v = p.evaluate(&node(0, vec![with_xid(0, 79, 0)]));
    assert_eq!(v[0].state, Severity::Unhealthy);
    // Clean readings within the 10 min window: still unhealthy, still asking for a reboot.
    for t in [MIN, 5 * MIN, 9 * MIN] {
        let v = p.evaluate(&node(t, vec![healthy_gpu(0)]));
        assert_eq!(
            (v[0].state, v[0].action),
            (Severity::Unhealthy, Action::RebootNode)
        );
        assert_eq!(codes(&v[0]), ["xid_79"]);
        assert!(v[0].new_findings.is_empty());
    }
    // After the window: two clean readings hold the state...
    for (n, t) in [(1, 10 * MIN), (2, 11 * MIN)] {
        let v = p.evaluate(&node(t, vec![healthy_gpu(0)]));
        assert_eq!(v[0].state, Severity::Unhealthy, "clean reading {n}");
        assert_eq!(v[0].action, Action::None);
        assert_eq!(codes(&v[0]), ["recovering"]);
        assert!(v[0].findings[0].reason.contains(&format!("({n} so far)")));
    }
    // ...the third makes it healthy.
    let v = p.evaluate(&node(12 * MIN, vec![healthy_gpu(0)]));
    assert_eq!(v[0].state, Severity::Healthy);
    assert!(v[0].findings.is_empty());
    assert!(p.gpu_states()[0].reasons.is_empty());
}

#[test]
fn hysteresis_restarts_on_a_bad_reading() {
    let mut p = Policy::new(PolicyConfig::default());
    let mut hot = healthy_gpu(0);
    hot.temperature_c = Some(96);
    assert_eq!(
        p.evaluate(&node(0, vec![hot.clone()]))[0].state,
        Severity::Unhealthy
    );
    p.evaluate(&node(1, vec![healthy_gpu(0)]));
    p.evaluate(&node(2, vec![healthy_gpu(0)]));
    // Bad again before the third clean reading: the count starts over.
    assert_eq!(
        p.evaluate(&node(3, vec![hot]))[0].state,
        Severity::Unhealthy
    );
    for t in 4..6 {
        assert_eq!(
            p.evaluate(&node(t, vec![healthy_gpu(0)]))[0].state,
            Severity::Unhealthy
        );
    }
    assert_eq!(
        p.evaluate(&node(6, vec![healthy_gpu(0)]))[0].state,
        Severity::Healthy
    );
}

#[test]
fn hysteresis_falls_to_the_worst_state_seen_while_recovering() {
    let mut p = Policy::new(PolicyConfig::default());
    let mut hot = healthy_gpu(0);
    hot.temperature_c = Some(96);
    let mut warm = healthy_gpu(0);
    warm.temperature_c = Some(86);
    p.evaluate(&node(0, vec![hot]));
    p.evaluate(&node(1, vec![warm]));
    p.evaluate(&node(2, vec![healthy_gpu(0)]));
    let v = p.evaluate(&node(3, vec![healthy_gpu(0)]));
    assert_eq!(v[0].state, Severity::Degraded);
    // Degraded → healthy needs its own clean readings.
    p.evaluate(&node(4, vec![healthy_gpu(0)]));
    p.evaluate(&node(5, vec![healthy_gpu(0)]));
    assert_eq!(
        p.evaluate(&node(6, vec![healthy_gpu(0)]))[0].state,
        Severity::Healthy
    );
}

#[test]
fn healthy_reads_is_configurable() {
    let mut p = Policy::new(PolicyConfig {
        healthy_reads: 1,
        ..PolicyConfig::default()
    });
    let mut g = healthy_gpu(0);
    g.ecc_volatile_uncorrected = Some(1);
    assert_eq!(p.evaluate(&node(0, vec![g]))[0].state, Severity::Unhealthy);
    assert_eq!(
        p.evaluate(&node(1, vec![healthy_gpu(0)]))[0].state,
        Severity::Healthy
    );
}

#[test]
fn escalation_is_immediate() {
    let mut p = Policy::new(PolicyConfig::default());
    let mut warm = healthy_gpu(0);
    warm.temperature_c = Some(86);
    assert_eq!(
        p.evaluate(&node(0, vec![warm]))[0].state,
        Severity::Degraded
    );
    let v = p.evaluate(&node(1, vec![with_xid(0, 48, 1)]));
    assert_eq!(
        (v[0].state, v[0].action),
        (Severity::Unhealthy, Action::ResetGpu)
    );
    assert_eq!(v[0].new_findings, ["xid_48"]);
}

#[test]
fn volatile_uncorrected_ecc_resets_the_gpu() {
    let mut g = healthy_gpu(0);
    g.ecc_volatile_uncorrected = Some(3);
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::ResetGpu));
    assert_eq!(codes(&v), ["ecc_volatile_uncorrected"]);
    assert!(v.findings[0].reason.starts_with("3 uncorrected ECC errors"));
}

#[test]
fn row_remapping() {
    let mut g = healthy_gpu(0);
    g.remapped_rows = Some(RemappedRows {
        failure: true,
        ..RemappedRows::default()
    });
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::ResetGpu));
    assert_eq!(codes(&v), ["row_remap_failure"]);

    let mut g = healthy_gpu(0);
    g.remapped_rows = Some(RemappedRows {
        pending: true,
        ..RemappedRows::default()
    });
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Degraded, Action::ResetGpu));
    assert_eq!(codes(&v), ["row_remap_pending"]);

    let mut g = healthy_gpu(0);
    g.remapped_rows = Some(RemappedRows {
        uncorrectable: 512,
        correctable: 10,
        ..RemappedRows::default()
    });
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Degraded, Action::None));
    assert_eq!(codes(&v), ["row_remap_uncorrectable"]);
}

#[test]
fn retired_pages() {
    let mut g = healthy_gpu(0);
    g.retired_pages = Some(RetiredPages {
        pending: true,
        ..RetiredPages::default()
    });
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Degraded, Action::ResetGpu));
    assert_eq!(codes(&v), ["retired_pages_pending"]);

    let mut g = healthy_gpu(0);
    g.retired_pages = Some(RetiredPages {
        single_bit: 50,
        double_bit: 13,
        pending: false,
    });
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::None));
    assert_eq!(codes(&v), ["retired_pages_limit"]);

    let mut g = healthy_gpu(0);
    g.retired_pages = Some(RetiredPages {
        single_bit: 0,
        double_bit: 16,
        pending: false,
    });
    assert_eq!(once(g).state, Severity::Unhealthy);

    let mut g = healthy_gpu(0);
    g.retired_pages = Some(RetiredPages {
        single_bit: 40,
        double_bit: 15,
        pending: false,
    });
    assert_eq!(once(g).state, Severity::Healthy);
}

#[test]
fn temperature_thresholds() {
    for (t, want) in [
        (84, Severity::Healthy),
        (85, Severity::Degraded),
        (94, Severity::Degraded),
        (95, Severity::Unhealthy),
    ] {
        let mut g = healthy_gpu(0);
        g.temperature_c = Some(t);
        let v = once(g);
        assert_eq!(v.state, want, "{t} °C");
        assert_eq!(v.action, Action::None, "a hot GPU is not reset");
    }
}

#[test]
fn hardware_throttling_is_degraded() {
    let mut g = healthy_gpu(0);
    g.throttle_reasons = Some(0x48);
    g.throttle_names = vec!["HW_SLOWDOWN".into(), "HW_THERMAL_SLOWDOWN".into()];
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Degraded, Action::None));
    assert_eq!(
        v.findings[0].reason,
        "clocks throttled: HW_SLOWDOWN, HW_THERMAL_SLOWDOWN"
    );

    let mut g = healthy_gpu(0);
    g.throttle_reasons = Some(0x5);
    g.throttle_names = vec!["GPU_IDLE".into(), "SW_POWER_CAP".into()];
    assert_eq!(once(g).state, Severity::Healthy);
}

#[test]
fn pcie_replay_rate() {
    let mut p = Policy::new(PolicyConfig::default());
    let reading = |t: u64, count: u64| {
        let mut g = healthy_gpu(0);
        g.pcie_replay_count = Some(count);
        node(t, vec![g])
    };
    // A high cumulative count is not a rate.
    assert_eq!(p.evaluate(&reading(0, 5_000))[0].state, Severity::Healthy);
    // 10 s later: 10 more replays in under a minute: within 16/min.
    assert_eq!(
        p.evaluate(&reading(10_000, 5_010))[0].state,
        Severity::Healthy
    );
    // 20 s: 20 replays in the last minute > 16.
    let v = p.evaluate(&reading(20_000, 5_020));
    assert_eq!(v[0].state, Severity::Degraded);
    assert_eq!(codes(&v[0]), ["pcie_replays"]);
    assert!(v[0].findings[0]
        .reason
        .starts_with("20 PCIe replays per minute"));
    // Quiet for long enough: the window slides past the burst.
    for t in [80_000, 90_000, 100_000] {
        p.evaluate(&reading(t, 5_020));
    }
    assert_eq!(
        p.evaluate(&reading(110_000, 5_020))[0].state,
        Severity::Healthy
    );
    // A counter reset (driver reload) is not a negative rate.
    assert_eq!(p.evaluate(&reading(120_000, 0))[0].state, Severity::Healthy);
    // Sparse readings: 60 replays over 3 minutes is 20/min.
    let mut p = Policy::new(PolicyConfig::default());
    p.evaluate(&reading(0, 0));
    let v = p.evaluate(&reading(3 * MIN, 60));
    assert_eq!(v[0].state, Severity::Degraded);
}

#[test]
fn probe_timeout_is_unhealthy_and_reboots_only_when_it_persists() {
    let mut p = Policy::new(PolicyConfig::default());
    let timed_out = || {
        let mut g = healthy_gpu(0);
        g.temperature_c = None;
        g.errors = vec!["nvmlDeviceGetTemperature did not answer within 2s".into()];
        g.faults = vec![CallFault::Timeout];
        g
    };
    for n in 1..=2 {
        let v = p.evaluate(&node(n, vec![timed_out()]));
        assert_eq!(
            (v[0].state, v[0].action),
            (Severity::Unhealthy, Action::None)
        );
        assert_eq!(codes(&v[0]), ["probe_timeout"]);
        assert!(v[0].findings[0]
            .reason
            .contains("nvmlDeviceGetTemperature did not answer within 2s"));
    }
    let v = p.evaluate(&node(3, vec![timed_out()]));
    assert_eq!(
        (v[0].state, v[0].action),
        (Severity::Unhealthy, Action::RebootNode)
    );
    // A good reading resets the streak.
    p.evaluate(&node(4, vec![healthy_gpu(0)]));
    let v = p.evaluate(&node(5, vec![timed_out()]));
    assert_eq!(v[0].action, Action::None);
}

#[test]
fn probe_errors() {
    // Errors without faults (an older producer) are probe errors.
    let mut g = healthy_gpu(0);
    g.errors = vec!["nvmlDeviceGetPowerUsage failed: unknown".into()];
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::None));
    assert_eq!(codes(&v), ["probe_error"]);

    let mut g = healthy_gpu(0);
    g.errors = vec!["nvmlDeviceGetTemperature: the GPU is lost".into()];
    g.faults = vec![CallFault::GpuLost];
    let v = once(g);
    assert_eq!(
        (v.state, v.action),
        (Severity::Unhealthy, Action::RebootNode)
    );
    assert_eq!(codes(&v), ["gpu_lost"]);

    let mut g = healthy_gpu(0);
    g.errors = vec!["nvmlDeviceGetTemperature: the GPU requires a reset".into()];
    g.faults = vec![CallFault::ResetRequired];
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::ResetGpu));
}

#[test]
fn failed_reads_and_missing_gpus() {
    let probe = FakeProbe::new();
    probe.push_reading(node(0, vec![healthy_gpu(0), healthy_gpu(1)]));
    probe.push_error(ProbeError::Failed(
        "nvmlDeviceGetCount_v2 did not answer within 2s".into(),
    ));
    probe.push_reading(node(2_000, vec![healthy_gpu(0)]));
    let mut p = Policy::new(PolicyConfig::default());

    let v = p.evaluate(&probe.read().unwrap());
    assert!(v.iter().all(|v| v.state == Severity::Healthy));

    let err = probe.read().unwrap_err();
    let v = p.evaluate_failure(&err, 1_000);
    assert_eq!(v.len(), 2);
    for v in &v {
        assert_eq!(v.state, Severity::Unhealthy);
        assert_eq!(codes(v), ["probe_error"]);
        assert!(v.findings[0].reason.contains("nvmlDeviceGetCount_v2"));
    }

    // GPU 1 disappears: the XID 79 path.
    let v = p.evaluate(&probe.read().unwrap());
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].uuid, "GPU-fake-1");
    assert_eq!(
        (v[1].state, v[1].action),
        (Severity::Unhealthy, Action::RebootNode)
    );
    assert_eq!(codes(&v[1]), ["gpu_missing"]);
    // Until it is forgotten.
    assert!(p.forget_gpu("GPU-fake-1"));
    assert_eq!(p.evaluate(&node(3_000, vec![healthy_gpu(0)])).len(), 1);
}

#[test]
fn indices_may_shift_state_follows_the_uuid() {
    let mut p = Policy::new(PolicyConfig::default());
    p.evaluate(&node(0, vec![healthy_gpu(0), with_xid(1, 79, 0)]));
    // GPU 0 vanished; the former GPU 1 is now index 0.
    let mut moved = healthy_gpu(0);
    moved.uuid = "GPU-fake-1".into();
    let v = p.evaluate(&node(1_000, vec![moved]));
    let by_uuid = |u: &str| v.iter().find(|v| v.uuid == u).unwrap();
    assert_eq!(by_uuid("GPU-fake-1").state, Severity::Unhealthy);
    assert_eq!(codes(by_uuid("GPU-fake-1")), ["xid_79"]);
    assert_eq!(codes(by_uuid("GPU-fake-0")), ["gpu_missing"]);
}

#[test]
fn recovery_action_outranks_the_xid_table() {
    // XID 79 says reboot; the driver says a GPU reset is enough.
    let mut g = with_xid(0, 79, 900);
    g.recovery_action = Some(RecoveryAction::GpuReset);
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::ResetGpu));
    let xid = v.findings.iter().find(|f| f.code == "xid_79").unwrap();
    assert_eq!(xid.action, Action::None);
    assert!(xid
        .reason
        .contains("replaced by the driver's recovery action"));
    let ra = v
        .findings
        .iter()
        .find(|f| f.code == "recovery_action")
        .unwrap();
    assert_eq!(ra.action, Action::ResetGpu);

    // XID 13 says restart the pod; the driver says reboot.
    let mut g = with_xid(0, 13, 900);
    g.recovery_action = Some(RecoveryAction::NodeReboot);
    let v = once(g);
    assert_eq!(
        (v.state, v.action),
        (Severity::Unhealthy, Action::RebootNode)
    );

    let mut g = healthy_gpu(0);
    g.recovery_action = Some(RecoveryAction::DrainAndReset);
    let v = once(g);
    assert_eq!((v.state, v.action), (Severity::Unhealthy, Action::ResetGpu));

    let mut g = healthy_gpu(0);
    g.recovery_action = Some(RecoveryAction::DrainP2p);
    let v = once(g);
    assert_eq!(
        (v.state, v.action),
        (Severity::Degraded, Action::RestartPod)
    );

    // `none` (and absent) leaves the table alone.
    let mut g = with_xid(0, 79, 900);
    g.recovery_action = Some(RecoveryAction::None);
    assert_eq!(once(g).action, Action::RebootNode);

    // Other findings keep their actions: a lost GPU still reboots.
    let mut g = healthy_gpu(0);
    g.recovery_action = Some(RecoveryAction::GpuReset);
    g.errors = vec!["lost".into()];
    g.faults = vec![CallFault::GpuLost];
    assert_eq!(once(g).action, Action::RebootNode);

    // Configurable.
    let mut p = Policy::new(PolicyConfig {
        recovery_action: RecoveryActionPolicy {
            outranks_xid: false,
            ..RecoveryActionPolicy::default()
        },
        ..PolicyConfig::default()
    });
    let mut g = with_xid(0, 79, 900);
    g.recovery_action = Some(RecoveryAction::GpuReset);
    assert_eq!(
        p.evaluate(&node(1_000, vec![g]))[0].action,
        Action::RebootNode
    );
}

#[test]
fn overrides_from_yaml_and_json() {
    let cfg: PolicyConfig = serde_yaml_ng::from_str(
        r#"
xid:
  "13": { severity: unhealthy, action: reset_gpu }
  79: { severity: healthy, action: none }
  200: { severity: degraded, action: restart_pod, repeat: { count: 3, severity: unhealthy, action: reboot_node } }
unknown_xid: { severity: unhealthy, action: none }
xid_window: 5m
healthy_reads: 5
temperature: { degraded_c: 80, unhealthy_c: null }
probe: { timeout_action_after: 1 }
"#,
    )
    .unwrap();
    assert_eq!(cfg.healthy_reads, 5);
    assert_eq!(cfg.xid_window, Dur::secs(300));
    assert_eq!(cfg.temperature.unhealthy_c, None);
    // Unset sub-fields keep their defaults.
    assert_eq!(cfg.probe.timeout, ProbePolicy::default().timeout);
    let mut p = Policy::new(cfg.clone());
    let v = p.evaluate(&node(
        1_000,
        vec![with_xid(0, 13, 900), with_xid(1, 79, 900)],
    ));
    assert_eq!(
        (v[0].state, v[0].action),
        (Severity::Unhealthy, Action::ResetGpu)
    );
    assert_eq!(v[1].state, Severity::Healthy, "79 overridden to ignore");
    assert_eq!(
        once_with(&cfg, with_xid(0, 555, 900)).state,
        Severity::Unhealthy
    );
    let mut hot = healthy_gpu(0);
    hot.temperature_c = Some(99);
    assert_eq!(once_with(&cfg, hot).state, Severity::Degraded);
    // Built-in rows stay unless overridden.
    assert_eq!(cfg.xid_rule(48), xid_info(48).unwrap().rule);

    // Repeat escalation of an added XID.
    let mut p = Policy::new(cfg);
    for (n, want) in [
        (1, Action::RestartPod),
        (2, Action::RestartPod),
        (3, Action::RebootNode),
    ] {
        let v = p.evaluate(&node(n * 1_000, vec![with_xid(0, 200, n * 1_000)]));
        assert_eq!(v[0].action, want, "occurrence {n}");
    }

    let cfg: PolicyConfig = serde_json::from_str(
        r#"{"xid": {"13": {"severity": "unhealthy", "action": "reset_gpu"}}}"#,
    )
    .unwrap();
    assert_eq!(cfg.xid_rule(13).action, Action::ResetGpu);
    assert_eq!(cfg.xid_table()[&13].severity, Severity::Unhealthy);
    assert_eq!(cfg.xid_table()[&79].action, Action::RebootNode);
}

fn once_with(cfg: &PolicyConfig, g: GpuReading) -> GpuVerdict {
    Policy::new(cfg.clone())
        .evaluate(&node(1_000, vec![g]))
        .remove(0)
}

#[test]
fn config_rejects_unknown_fields_and_bad_keys() {
    let e = serde_yaml_ng::from_str::<PolicyConfig>("healthy_read: 3").unwrap_err();
    assert!(e.to_string().contains("healthy_read"), "{e}");
    let e = serde_yaml_ng::from_str::<PolicyConfig>("xid: { 13: { severity: bad, action: none } }")
        .unwrap_err();
    assert!(e.to_string().contains("bad"), "{e}");
    let e = serde_yaml_ng::from_str::<PolicyConfig>(
        "xid: { thirteen: { severity: healthy, action: none } }",
    )
    .unwrap_err();
    assert!(e.to_string().contains("not an XID number"), "{e}");
    let e = serde_yaml_ng::from_str::<PolicyConfig>(
        "xid: { 13: { severity: healthy, action: none, color: red } }",
    )
    .unwrap_err();
    assert!(e.to_string().contains("color"), "{e}");
    let e = serde_yaml_ng::from_str::<PolicyConfig>("temperature: { degraded: 80 }").unwrap_err();
    assert!(e.to_string().contains("degraded"), "{e}");
}

#[test]
fn config_round_trips_and_has_a_schema() {
    let cfg: PolicyConfig = serde_yaml_ng::from_str("{}").unwrap();
    assert_eq!(cfg, PolicyConfig::default());
    let mut cfg = PolicyConfig::default();
    cfg.xid.insert(
        XidKey(13),
        XidRule {
            severity: Severity::Unhealthy,
            action: Action::ResetGpu,
            repeat: None,
        },
    );
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(json.contains(r#""xid":{"13":"#), "{json}");
    assert!(json.contains(r#""xid_window":"10m""#), "{json}");
    let back: PolicyConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cfg);
    let schema = serde_json::to_string(&schemars::schema_for!(PolicyConfig)).unwrap();
    assert!(schema.contains("healthy_reads"), "{schema}");
}

#[test]
fn gpu_states_and_clearing_xids() {
    let mut p = Policy::new(PolicyConfig::default());
    let v = p.evaluate(&node(5_000, vec![healthy_gpu(0), with_xid(1, 48, 4_000)]));
    let states = p.gpu_states();
    assert_eq!(states, gpu_states(&v, 5_000));
    assert_eq!(states.len(), 2);
    assert_eq!(states[0].state, Severity::Healthy);
    assert!(states[0].reasons.is_empty());
    assert_eq!(states[1].state, Severity::Unhealthy);
    assert_eq!(states[1].read_at_ms, 5_000);
    assert!(states[1].reasons[0].starts_with("XID 48 (GPU_ECC_DBE"));

    // After a successful reset the XID is forgotten; the state still needs clean readings.
    assert!(p.clear_xids("GPU-fake-1"));
    assert!(!p.clear_xids("GPU-nope"));
    let v = p.evaluate(&node(6_000, vec![healthy_gpu(0), healthy_gpu(1)]));
    assert_eq!(v[1].state, Severity::Unhealthy);
    assert_eq!(codes(&v[1]), ["recovering"]);
    p.evaluate(&node(7_000, vec![healthy_gpu(0), healthy_gpu(1)]));
    let v = p.evaluate(&node(8_000, vec![healthy_gpu(0), healthy_gpu(1)]));
    assert_eq!(v[1].state, Severity::Healthy);
}

#[test]
fn findings_are_worst_first_and_the_action_is_the_strongest() {
    let mut g = with_xid(0, 13, 900);
    g.temperature_c = Some(90);
    g.remapped_rows = Some(RemappedRows {
        pending: true,
        ..RemappedRows::default()
    });
    g.ecc_volatile_uncorrected = Some(1);
    let v = once(g);
    assert_eq!(v.state, Severity::Unhealthy);
    assert_eq!(v.action, Action::ResetGpu);
    assert_eq!(v.findings[0].code, "ecc_volatile_uncorrected");
    assert_eq!(
        v.new_findings,
        [
            "ecc_volatile_uncorrected",
            "row_remap_pending",
            "temperature",
            "xid_13"
        ]
    );
}

#[test]
fn driven_through_the_fake_probe() {
    let probe = FakeProbe::with_readings([
        node(0, vec![healthy_gpu(0)]),
        node(10_000, vec![healthy_gpu(0)]),
    ]);
    let rx = probe.xid_events().unwrap();
    let mut p = Policy::new(PolicyConfig::default());
    assert_eq!(
        p.evaluate(&probe.read().unwrap())[0].state,
        Severity::Healthy
    );
    probe.inject_xid(XidEvent {
        gpu: 0,
        xid: 95,
        at_ms: 5_000,
    });
    assert_eq!(rx.recv().unwrap().xid, 95);
    let v = p.evaluate(&probe.read().unwrap());
    assert_eq!(
        (v[0].state, v[0].action),
        (Severity::Unhealthy, Action::ResetGpu)
    );
    assert_eq!(v[0].new_findings, ["xid_95"]);
}

#[test]
fn the_table_covers_the_reference() {
    for xid in [
        8, 13, 31, 32, 43, 45, 46, 48, 54, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 109, 110,
        119, 120, 121, 136, 140, 143, 144, 145, 146, 147, 148, 149, 150, 154, 155, 156, 158,
    ] {
        assert!(xid_info(xid).is_some(), "XID {xid}");
    }
    let mut seen = BTreeSet::new();
    for i in XID_TABLE {
        assert!(seen.insert(i.xid), "XID {} twice", i.xid);
    }
}
