//! `infergate-control gpu-check [--json]`: read every GPU once, apply the policy, report.
//!
//! Exit codes: 0 every GPU healthy or degraded, 1 at least one GPU unhealthy, 2 the GPUs
//! could not be read (no NVML, no GPUs, or the read failed).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::health::{GpuReading, NodeReading, Severity};
use crate::policy::{by_index, GpuVerdict, Policy, PolicyConfig};
use crate::probe::{GpuProbe, ProbeError};

/// Exit code: every GPU healthy or degraded.
pub const EXIT_HEALTHY: i32 = 0;
/// Exit code: at least one GPU unhealthy.
pub const EXIT_UNHEALTHY: i32 = 1;
/// Exit code: the GPUs could not be read.
pub const EXIT_CANNOT_READ: i32 = 2;

/// The result of a check, ready to print.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOutcome {
    /// For people: one block per GPU.
    pub text: String,
    /// A [`CheckReport`] as pretty JSON.
    pub json: String,
    pub exit_code: i32,
}

/// The JSON form of a check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub node: String,
    pub driver_version: Option<String>,
    pub read_at_ms: u64,
    /// `healthy`, `degraded` or `unhealthy`: the worst GPU state; absent when nothing was read.
    pub state: Option<Severity>,
    pub exit_code: i32,
    /// Why the GPUs could not be read.
    pub error: Option<String>,
    pub gpus: Vec<CheckedGpu>,
}

/// One GPU's reading and verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckedGpu {
    pub reading: GpuReading,
    pub verdict: Option<GpuVerdict>,
}

/// Reads once through `probe` and applies a fresh policy built from `policy` (no history: no
/// hysteresis, no replay rate, only the XIDs that arrive during the read).
pub fn check(probe: &dyn GpuProbe, policy: &PolicyConfig) -> CheckOutcome {
    check_reading(probe.read(), policy)
}

/// [`check`] for a reading already made.
pub fn check_reading(
    reading: Result<NodeReading, ProbeError>,
    policy: &PolicyConfig,
) -> CheckOutcome {
    let reading = match reading {
        Ok(r) => r,
        Err(e) => return cannot_read(None, &e.to_string()),
    };
    if reading.gpus.is_empty() {
        return cannot_read(Some(&reading), "the driver reports no GPUs");
    }
    let verdicts = Policy::new(policy.clone()).evaluate(&reading);
    let worst = verdicts
        .iter()
        .map(|v| v.state)
        .max()
        .unwrap_or(Severity::Healthy);
    let exit_code = if worst == Severity::Unhealthy {
        EXIT_UNHEALTHY
    } else {
        EXIT_HEALTHY
    };
    let report = report(&reading, &verdicts, Some(worst), exit_code, None);
    CheckOutcome {
        text: render_text(&reading, &verdicts),
        json: to_json(&report),
        exit_code,
    }
}

fn cannot_read(reading: Option<&NodeReading>, error: &str) -> CheckOutcome {
    let empty = NodeReading::default();
    let r = reading.unwrap_or(&empty);
    let report = report(r, &[], None, EXIT_CANNOT_READ, Some(error.to_string()));
    let mut text = String::new();
    if reading.is_some() {
        text.push_str(&header(r));
    }
    let _ = writeln!(text, "cannot read the GPUs: {error}");
    CheckOutcome {
        text,
        json: to_json(&report),
        exit_code: EXIT_CANNOT_READ,
    }
}

fn report(
    reading: &NodeReading,
    verdicts: &[GpuVerdict],
    state: Option<Severity>,
    exit_code: i32,
    error: Option<String>,
) -> CheckReport {
    let by = by_index(verdicts);
    CheckReport {
        node: reading.node.clone(),
        driver_version: reading.driver_version.clone(),
        read_at_ms: reading.read_at_ms,
        state,
        exit_code,
        error,
        gpus: reading
            .gpus
            .iter()
            .map(|g| CheckedGpu {
                reading: g.clone(),
                verdict: by.get(&g.index).map(|v| (*v).clone()),
            })
            .collect(),
    }
}

fn to_json(report: &CheckReport) -> String {
    serde_json::to_string_pretty(report)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the report: {e}\"}}"))
}

fn header(reading: &NodeReading) -> String {
    format!(
        "node {}  driver {}\n",
        if reading.node.is_empty() {
            "-"
        } else {
            &reading.node
        },
        reading.driver_version.as_deref().unwrap_or("unknown")
    )
}

fn opt<T: std::fmt::Display>(v: Option<T>, unit: &str) -> String {
    match v {
        Some(v) => format!("{v}{unit}"),
        None => "not supported".to_string(),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn state_word(s: Severity) -> &'static str {
    match s {
        Severity::Healthy => "HEALTHY",
        Severity::Degraded => "DEGRADED",
        Severity::Unhealthy => "UNHEALTHY",
    }
}

fn action_word(a: crate::health::Action) -> &'static str {
    use crate::health::Action;
    match a {
        Action::None => "none",
        Action::RestartPod => "restart the pod",
        Action::ResetGpu => "reset the GPU",
        Action::RebootNode => "reboot the node",
    }
}

/// One block per GPU: identity, readings, XIDs, throttling, errors and the verdict with its
/// reasons.
pub fn render_text(reading: &NodeReading, verdicts: &[GpuVerdict]) -> String {
    let by = by_index(verdicts);
    let mut t = header(reading);
    for g in &reading.gpus {
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "GPU {}  {}  {}",
            g.index,
            if g.uuid.is_empty() {
                "(uuid unknown)"
            } else {
                &g.uuid
            },
            g.name
        );
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<28}{v}");
        };
        row("temperature", opt(g.temperature_c, " °C"));
        row("power", opt(g.power_w.map(|w| format!("{w:.1}")), " W"));
        row(
            "memory",
            match (g.memory_used_bytes, g.memory_total_bytes) {
                (Some(u), Some(tot)) => format!("{} / {} used", gib(u), gib(tot)),
                _ => "not supported".into(),
            },
        );
        row(
            "ECC volatile uncorrected",
            opt(g.ecc_volatile_uncorrected, ""),
        );
        row(
            "retired pages",
            match &g.retired_pages {
                Some(p) => format!(
                    "single-bit {}, double-bit {}, pending {}",
                    p.single_bit,
                    p.double_bit,
                    yes_no(p.pending)
                ),
                None => "not supported".into(),
            },
        );
        row(
            "row remapping",
            match &g.remapped_rows {
                Some(r) => format!(
                    "correctable {}, uncorrectable {}, pending {}, failure {}",
                    r.correctable,
                    r.uncorrectable,
                    yes_no(r.pending),
                    yes_no(r.failure)
                ),
                None => "not supported".into(),
            },
        );
        row(
            "recent XIDs",
            if g.xids.is_empty() {
                "none seen".into()
            } else {
                g.xids
                    .iter()
                    .map(|x| x.xid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        row(
            "throttle reasons",
            match g.throttle_reasons {
                Some(0) => "none".into(),
                Some(bits) => format!("{} (0x{bits:x})", g.throttle_names.join(", ")),
                None => "not supported".into(),
            },
        );
        row("PCIe replays", opt(g.pcie_replay_count, ""));
        row(
            "driver recovery action",
            match g.recovery_action {
                Some(a) => serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{a:?}")),
                None => "not reported".into(),
            },
        );
        for e in &g.errors {
            row("error", e.clone());
        }
        match by.get(&g.index) {
            Some(v) => {
                let verdict = if v.action == crate::health::Action::None {
                    state_word(v.state).to_string()
                } else {
                    format!("{} ({})", state_word(v.state), action_word(v.action))
                };
                row("verdict", verdict);
                for f in &v.findings {
                    let _ = writeln!(t, "    - {}: {}", f.code, f.reason);
                }
            }
            None => row("verdict", "none".into()),
        }
    }
    // GPUs in the verdicts but not in the reading (missing).
    for v in verdicts {
        if !reading.gpus.iter().any(|g| g.index == v.index) {
            let _ = writeln!(t);
            let _ = writeln!(t, "GPU {}  {}  (not reported)", v.index, v.uuid);
            let _ = writeln!(t, "  {:<28}{}", "verdict", state_word(v.state));
            for f in &v.findings {
                let _ = writeln!(t, "    - {}: {}", f.code, f.reason);
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{healthy_gpu, node_reading, FakeProbe};
    use crate::health::XidEvent;

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
}
