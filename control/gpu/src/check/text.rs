//! The text report: one block per GPU.

use std::fmt::Write as _;

use super::words::{action_word, gib, header, opt, state_word, yes_no};
use crate::health::{Action, NodeReading};
use crate::policy::{by_index, GpuVerdict};

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
                let verdict = if v.action == Action::None {
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
