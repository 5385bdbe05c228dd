use super::*;
use crate::fake::{healthy_gpu, node_reading, FakeProbe};
use crate::health::Severity;
use crate::health::XidEvent;
use crate::policy::PolicyConfig;

#[test]
fn healthy_node_exits_0() {
    let probe = FakeProbe::with_readings([node_reading(
        "n1",
        1_000,
        vec![healthy_gpu(0), healthy_gpu(1)],
    )]);
    let out = check(&probe, &PolicyConfig::default());
    assert_eq!(out.exit_code, 0, "{}", out.text);
    assert!(
        out.text
            .contains("GPU 0  GPU-fake-0  NVIDIA H100 80GB HBM3"),
        "{}",
        out.text
    );
    assert!(out.text.contains("HEALTHY"), "{}", out.text);
    let report: CheckReport = serde_json::from_str(&out.json).unwrap();
    assert_eq!(report.gpus.len(), 2);
    assert_eq!(report.state, Some(Severity::Healthy));
    assert_eq!(report.exit_code, 0);
}

#[test]
fn unhealthy_gpu_exits_1_with_reasons() {
    let mut g = healthy_gpu(1);
    g.xids.push(XidEvent {
        gpu: 1,
        xid: 79,
        at_ms: 900,
    });
    g.throttle_reasons = Some(0x8);
    g.throttle_names = vec!["HW_SLOWDOWN".into()];
    let probe = FakeProbe::with_readings([node_reading("n1", 1_000, vec![healthy_gpu(0), g])]);
    let out = check(&probe, &PolicyConfig::default());
    assert_eq!(out.exit_code, 1);
    assert!(
        out.text.contains("UNHEALTHY (reboot the node)"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("xid_79: XID 79 (GPU_HAS_FALLEN_OFF_THE_BUS"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("recent XIDs                 79"),
        "{}",
        out.text
    );
    assert!(out.text.contains("HW_SLOWDOWN (0x8)"), "{}", out.text);
    let v: serde_json::Value = serde_json::from_str(&out.json).unwrap();
    assert_eq!(v["state"], "unhealthy");
    assert_eq!(v["gpus"][1]["verdict"]["action"], "reboot_node");
    assert_eq!(v["gpus"][1]["reading"]["xids"][0]["xid"], 79);
}

#[test]
fn read_failure_exits_2() {
    let probe = FakeProbe::new();
    probe.push_error(ProbeError::NotAvailable("no driver".into()));
    let out = check(&probe, &PolicyConfig::default());
    assert_eq!(out.exit_code, 2);
    assert!(
        out.text.contains("NVML not available: no driver"),
        "{}",
        out.text
    );
    let v: serde_json::Value = serde_json::from_str(&out.json).unwrap();
    assert_eq!(v["error"], "NVML not available: no driver");
    assert_eq!(v["exit_code"], 2);

    let none = FakeProbe::with_readings([node_reading("n1", 1, vec![])]);
    assert_eq!(check(&none, &PolicyConfig::default()).exit_code, 2);
}

#[test]
fn degraded_exits_0() {
    let mut g = healthy_gpu(0);
    g.temperature_c = Some(88);
    let probe = FakeProbe::with_readings([node_reading("n1", 1, vec![g])]);
    let out = check(&probe, &PolicyConfig::default());
    assert_eq!(out.exit_code, 0);
    assert!(out.text.contains("DEGRADED"), "{}", out.text);
}
