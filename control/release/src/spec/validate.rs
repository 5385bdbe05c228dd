//! Checks of a parsed release spec, each problem with its field's path.

use std::time::Duration;

use super::{OnRollback, ReleaseSpec};

/// Every problem with `spec`, e.g. `gates.ttft_p95_ratio: 0: must be > 0`.
pub fn validate(spec: &ReleaseSpec) -> Result<(), Vec<String>> {
    let mut out = Vec::new();
    name(&mut out, "name", &spec.name);
    if spec.name.len() > 63 {
        out.push(format!("name: {:?}: at most 63 characters", spec.name));
    }
    for (path, v) in [
        ("model", &spec.model),
        ("stable", &spec.stable),
        ("canary", &spec.canary),
    ] {
        if v.trim().is_empty() {
            out.push(format!("{path}: must not be empty"));
        }
    }
    if !spec.stable.is_empty() && spec.stable == spec.canary {
        out.push(format!(
            "canary: {:?}: must differ from stable",
            spec.canary
        ));
    }
    steps(&mut out, &spec.steps);
    if spec.step_interval.get() < Duration::from_millis(100) {
        out.push(format!(
            "step_interval: {}: must be at least 100ms",
            spec.step_interval
        ));
    }
    let g = &spec.gates;
    for (path, v) in [
        ("gates.ttft_p95_ratio", g.ttft_p95_ratio),
        ("gates.tpot_p95_ratio", g.tpot_p95_ratio),
    ] {
        if !(v.is_finite() && v > 0.0) {
            out.push(format!("{path}: {v}: must be > 0"));
        }
    }
    if !(g.error_rate_delta.is_finite() && (0.0..=1.0).contains(&g.error_rate_delta)) {
        out.push(format!(
            "gates.error_rate_delta: {}: must be between 0 and 1",
            g.error_rate_delta
        ));
    }
    if let Some(slo) = &g.slo {
        for (path, v) in [
            ("gates.slo.ttft_p95_s", slo.ttft_p95_s),
            ("gates.slo.tpot_p95_s", slo.tpot_p95_s),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                out.push(format!("{path}: {v}: must be > 0"));
            }
        }
        if let Some(v) = slo
            .error_rate
            .filter(|v| !(v.is_finite() && (0.0..=1.0).contains(v)))
        {
            out.push(format!(
                "gates.slo.error_rate: {v}: must be between 0 and 1"
            ));
        }
    }
    let src = &spec.source;
    if src.gateways.is_empty() && src.prometheus.is_none() {
        out.push("source: name the gateways' admin URLs or a prometheus URL".into());
    }
    for (i, u) in src.gateways.iter().enumerate() {
        url(&mut out, &format!("source.gateways[{i}]"), u);
    }
    if let Some(p) = &src.prometheus {
        url(&mut out, "source.prometheus.url", &p.url);
    }
    if src.timeout.get().is_zero() {
        out.push(format!("source.timeout: {}: must be positive", src.timeout));
    }
    if g.gpu_healthy && src.gateways.is_empty() {
        out.push(
            "gates.gpu_healthy: needs source.gateways (their /admin/routes say which canary \
             endpoints are ejected for a GPU); list them or set gpu_healthy: false"
                .into(),
        );
    }
    if let Some(w) = spec.warmup.as_ref().filter(|w| w.required) {
        if src.gateways.is_empty() {
            out.push(
                "warmup.required: needs source.gateways (their /admin/routes say which canary \
                 endpoints are warm)"
                    .into(),
            );
        }
        if w.timeout.get().is_zero() {
            out.push(format!("warmup.timeout: {}: must be positive", w.timeout));
        }
    }
    if let OnRollback::Retry { pause, .. } = &spec.on_rollback {
        if pause.get().is_zero() {
            out.push(format!("on_rollback.pause: {pause}: must be positive"));
        }
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

fn name(out: &mut Vec<String>, path: &str, v: &str) {
    let ok = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !v.starts_with('.');
    if !ok {
        out.push(format!(
            "{path}: {v:?}: use letters, digits, '-', '_' and '.' (not first)"
        ));
    }
}

fn steps(out: &mut Vec<String>, steps: &[u32]) {
    if steps.is_empty() {
        out.push("steps: must list at least one weight (e.g. [5, 25, 50, 100])".into());
        return;
    }
    for (i, w) in steps.iter().enumerate() {
        if !(1..=100).contains(w) {
            out.push(format!("steps[{i}]: {w}: must be between 1 and 100"));
        }
        if i > 0 && *w <= steps[i - 1] {
            out.push(format!(
                "steps[{i}]: {w}: must be above the step before ({})",
                steps[i - 1]
            ));
        }
    }
    if let Some(last) = steps.last().filter(|l| **l != 100) {
        out.push(format!(
            "steps[{}]: {last}: the last step must be 100",
            steps.len() - 1
        ));
    }
}

fn url(out: &mut Vec<String>, path: &str, u: &str) {
    let rest = u.strip_prefix("http://");
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => {}
        _ => out.push(format!(
            "{path}: {u:?}: must be an http:// URL with a host (e.g. http://127.0.0.1:9190)"
        )),
    }
}
