//! The gates: each compares the canary's window with the stable variant's (or an absolute
//! limit) and says pass or fail with its value, its limit and the comparison in words.

use crate::metrics::routes::CanaryView;
use crate::record::{GateResult, VariantWindow};
use crate::spec::Gates;

/// The stable figures a step is compared with: its own window when the stable variant served
/// requests in it, else those of the last step where it did (at 100 % canary the stable
/// variant serves nothing).
#[derive(Clone, Copy, Debug)]
pub struct Reference<'a> {
    pub window: &'a VariantWindow,
    /// The step the figures come from when not the step being judged.
    pub from_step: Option<usize>,
}

/// Every gate over a step's window.
pub fn evaluate(
    gates: &Gates,
    canary: &VariantWindow,
    stable: Reference<'_>,
    view: Option<&CanaryView>,
) -> Vec<GateResult> {
    let from = stable
        .from_step
        .map(|i| format!(" (stable from step {})", i + 1))
        .unwrap_or_default();
    let s = stable.window;
    let mut out = vec![
        ratio(
            "ttft_p95",
            canary.ttft_s.p95,
            s.ttft_s.p95,
            gates.ttft_p95_ratio,
            &from,
        ),
        ratio(
            "tpot_p95",
            canary.tpot_s.p95,
            s.tpot_s.p95,
            gates.tpot_p95_ratio,
            &from,
        ),
    ];
    let limit = s.error_rate + gates.error_rate_delta;
    let pass = canary.error_rate <= limit + 1e-12;
    out.push(GateResult {
        name: "error_rate".into(),
        value: Some(canary.error_rate),
        limit: Some(limit),
        pass,
        detail: format!(
            "canary {:.4} ({}/{}) <= stable {:.4} + {} = {:.4}{from}: {}",
            canary.error_rate,
            canary.errors,
            canary.requests,
            s.error_rate,
            gates.error_rate_delta,
            limit,
            verdict(pass)
        ),
    });
    if gates.gpu_healthy {
        out.push(gpu_gate(view));
    }
    if let Some(slo) = &gates.slo {
        for (name, value, limit, unit) in [
            ("slo_ttft_p95", canary.ttft_s.p95, slo.ttft_p95_s, " s"),
            ("slo_tpot_p95", canary.tpot_s.p95, slo.tpot_p95_s, " s"),
            (
                "slo_error_rate",
                Some(canary.error_rate),
                slo.error_rate,
                "",
            ),
        ] {
            let Some(limit) = limit else { continue };
            out.push(match value {
                Some(v) => {
                    let pass = v <= limit;
                    GateResult {
                        name: name.into(),
                        value: Some(v),
                        limit: Some(limit),
                        pass,
                        detail: format!("canary {v:.4}{unit} <= {limit}{unit}: {}", verdict(pass)),
                    }
                }
                None => GateResult {
                    name: name.into(),
                    value: None,
                    limit: Some(limit),
                    pass: true,
                    detail: "no canary samples in the window: pass".into(),
                },
            });
        }
    }
    out
}

/// The GPU gate: no canary endpoint ejected for an unhealthy GPU on any gateway.
pub fn gpu_gate(view: Option<&CanaryView>) -> GateResult {
    let Some(view) = view else {
        return GateResult {
            name: "gpu_healthy".into(),
            value: None,
            limit: Some(0.0),
            pass: true,
            detail: "the gateways' routes could not be read this time: pass".into(),
        };
    };
    let bad = view.gpu_unhealthy();
    let pass = bad.is_empty();
    let detail = if pass {
        format!(
            "no canary endpoint ejected for its GPU ({} seen): pass",
            view.endpoints.len()
        )
    } else {
        let list: Vec<String> = bad
            .iter()
            .map(|e| match &e.detail {
                Some(d) => format!("{} ({d})", e.url),
                None => e.url.clone(),
            })
            .collect();
        format!("canary endpoint GPU unhealthy: {}: fail", list.join(", "))
    };
    GateResult {
        name: "gpu_healthy".into(),
        value: Some(bad.len() as f64),
        limit: Some(0.0),
        pass,
        detail,
    }
}

fn ratio(
    name: &str,
    canary: Option<f64>,
    stable: Option<f64>,
    ratio: f64,
    from: &str,
) -> GateResult {
    let (Some(c), Some(s)) = (canary, stable) else {
        let why = if canary.is_none() {
            "no canary samples in the window"
        } else {
            "no stable samples to compare with"
        };
        return GateResult {
            name: name.into(),
            value: canary,
            limit: stable.map(|s| s * ratio),
            pass: true,
            detail: format!("{why}: pass"),
        };
    };
    let limit = s * ratio;
    let pass = c <= limit;
    GateResult {
        name: name.into(),
        value: Some(c),
        limit: Some(limit),
        pass,
        detail: format!(
            "canary {:.4} s <= {ratio} x stable {:.4} s = {:.4} s{from}: {}",
            c,
            s,
            limit,
            verdict(pass)
        ),
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "pass"
    } else {
        "fail"
    }
}
