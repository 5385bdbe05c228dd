#![allow(clippy::unwrap_used)]

use crate::record::{
    GateResult, Quantiles, ReleaseRecord, StepRecord, VariantWindow, WeightChange,
};

use super::{html, json};

const T0: u64 = 1_767_225_600_000; // 2026-01-01 00:00:00 UTC

fn window(requests: u64, errors: u64, ttft_p95: f64, tpot_p95: f64) -> VariantWindow {
    VariantWindow {
        requests,
        errors,
        error_rate: errors as f64 / requests as f64,
        ttft_s: Quantiles {
            p50: Some(ttft_p95 * 0.8),
            p95: Some(ttft_p95),
            p99: Some(ttft_p95 * 1.1),
        },
        tpot_s: Quantiles {
            p50: Some(tpot_p95 * 0.9),
            p95: Some(tpot_p95),
            p99: Some(tpot_p95 * 1.05),
        },
    }
}

fn gate(name: &str, value: f64, limit: f64) -> GateResult {
    GateResult {
        name: name.into(),
        value: Some(value),
        limit: Some(limit),
        pass: value <= limit,
        detail: format!("canary {value} <= {limit}"),
    }
}

fn step(index: usize, weight: u32, canary_ttft: f64) -> StepRecord {
    let stable = window(200, 1, 0.200, 0.020);
    let canary = window(40, 0, canary_ttft, 0.021);
    let gates = vec![
        gate("ttft_p95", canary_ttft, 1.5 * 0.200),
        gate("tpot_p95", 0.021, 1.5 * 0.020),
        gate("error_rate", 0.0, 0.005 + 0.02),
    ];
    let verdict = if gates.iter().all(|g| g.pass) {
        "pass"
    } else {
        "fail"
    };
    let start = T0 + 3_000 * index as u64;
    StepRecord {
        index,
        canary_weight: weight,
        started_at_ms: start,
        judged_at_ms: Some(start + 3_000),
        window_s: 3.0,
        stable,
        canary,
        gates,
        verdict: verdict.into(),
    }
}

fn weights(list: &[(u64, u32)]) -> Vec<WeightChange> {
    list.iter()
        .map(|(at, c)| WeightChange {
            at_ms: T0 + at,
            stable: 100 - c,
            canary: *c,
        })
        .collect()
}

fn promoted() -> ReleaseRecord {
    ReleaseRecord {
        name: "demo-v2".into(),
        model: "demo".into(),
        stable: "stable".into(),
        canary: "canary".into(),
        state: "promoted".into(),
        reason: Some("every step passed".into()),
        started_at_ms: T0,
        ended_at_ms: Some(T0 + 9_000),
        current_step: None,
        steps: vec![step(0, 10, 0.190), step(1, 50, 0.195), step(2, 100, 0.205)],
        weights: weights(&[(0, 10), (3_000, 50), (6_000, 100)]),
    }
}

fn rolled_back() -> ReleaseRecord {
    ReleaseRecord {
        name: "demo-v3".into(),
        state: "rolled_back".into(),
        reason: Some("ttft_p95: canary 0.400 s > 1.5 x stable 0.200 s = 0.300 s".into()),
        ended_at_ms: Some(T0 + 3_100),
        steps: vec![step(0, 10, 0.400)],
        weights: weights(&[(0, 10), (3_100, 0)]),
        ..promoted()
    }
}

#[test]
fn json_is_the_record() {
    let r = rolled_back();
    let text = json(&r);
    assert!(
        text.contains("\n  \"name\": \"demo-v3\""),
        "not pretty: {text}"
    );
    let back: ReleaseRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_promoted_release() {
    let page = html(&promoted());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(
        page.contains("<title>Release demo-v2: Promoted</title>"),
        "{page}"
    );
    assert!(page.contains("<span class=\"state promoted\">Promoted</span>"));
    assert!(page.contains("now takes all traffic"));
    assert!(page.contains("Reason: every step passed"));
    // Three steps, each with a passing verdict and three passing gates; no failure anywhere.
    assert_eq!(page.matches("<tr class=\"step pass\">").count(), 3);
    assert_eq!(page.matches("<li class=\"gate pass\">").count(), 9);
    assert!(!page.contains("class=\"gate fail\""));
    assert!(
        page.contains("<td class=\"n\">200 ms</td>"),
        "stable TTFT p95"
    );
    assert!(
        page.contains("<td class=\"n\">190 ms</td>"),
        "canary TTFT p95"
    );
}

#[test]
fn a_rolled_back_release() {
    let page = html(&rolled_back());
    assert!(page.contains("<span class=\"state rolled_back\">Rolled back</span>"));
    assert!(
        page.contains("failed step 1 at 10 % and was taken back to 0 %"),
        "{page}"
    );
    assert!(page.contains("Reason: ttft_p95: canary 0.400 s &gt; 1.5 x stable"));
    assert!(page.contains("<td rowspan=\"2\" class=\"verdict fail\">fail</td>"));
    assert!(page.contains(
        "<li class=\"gate fail\"><b>ttft_p95</b> 400 ms <span class=\"limit\">limit 300 ms</span>"
    ));
    assert_eq!(page.matches("<li class=\"gate pass\">").count(), 2);
}

#[test]
fn charts_are_inline_svg() {
    let page = html(&rolled_back());
    for title in [
        "TTFT p95 per step",
        "TPOT p95 per step",
        "Error rate per step",
        "Weights over time",
    ] {
        assert!(page.contains(&format!("<title>{title}</title>")), "{title}");
    }
    assert_eq!(page.matches("<svg ").count(), 4);
    // Per step two bars for TTFT and two for TPOT; the error chart has a stable bar only
    // (the canary had no errors: a zero-height bar).
    assert_eq!(page.matches("<rect class=\"bar\"").count(), 6);
    assert_eq!(page.matches("class=\"limit\" x1").count(), 3);
    // The weights go 10 -> 0: the canary's step line ends at 0 after the rollback.
    assert_eq!(page.matches("<polyline class=\"weights\"").count(), 2);
    assert!(
        page.contains("<title>canary 0 % from 3.1 s</title>"),
        "{page}"
    );
    // Self-contained: nothing fetched from elsewhere.
    assert!(!page.contains("<script"));
    assert!(!page.contains("<link"));
    assert!(!page.contains("src="));
    assert!(!page.contains("@import"));
}

#[test]
fn every_string_from_the_record_is_escaped() {
    let evil = "<script>alert('x')</script>&\"";
    let mut r = rolled_back();
    r.name = evil.into();
    r.model = evil.into();
    r.stable = evil.into();
    r.canary = evil.into();
    r.state = evil.into();
    r.reason = Some(evil.into());
    for s in &mut r.steps {
        s.verdict = evil.into();
        for g in &mut s.gates {
            g.name = evil.into();
            g.detail = evil.into();
        }
    }
    let page = html(&r);
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("alert('x')"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
}

#[test]
fn missing_figures_show_a_dash() {
    let mut r = ReleaseRecord {
        name: "empty".into(),
        model: "demo".into(),
        stable: "stable".into(),
        canary: "canary".into(),
        state: "running".into(),
        started_at_ms: T0,
        current_step: Some(0),
        ..ReleaseRecord::default()
    };
    let page = html(&r);
    assert!(page.contains("No step has started yet."));
    assert!(page.contains("no weights sent yet"));
    assert!(page.contains("no samples in any step yet"));

    // A step under way: zero requests on the canary, no quantiles anywhere, no gates.
    r.steps.push(StepRecord {
        index: 0,
        canary_weight: 10,
        started_at_ms: T0,
        verdict: "pending".into(),
        ..StepRecord::default()
    });
    r.weights = weights(&[(0, 10)]);
    let page = html(&r);
    assert!(
        page.contains("Step 1 of the canary <b>canary</b> at 10 %."),
        "{page}"
    );
    assert!(page.contains("<td rowspan=\"2\" class=\"verdict pending\">pending</td>"));
    // 6 quantiles per variant, errors per variant, the window and the gates: all "–".
    assert_eq!(page.matches("<td class=\"n\">–</td>").count(), 14, "{page}");
    assert!(
        page.contains("title=\"started 2026-01-01 00:00:00 UTC; judged: not judged yet\">–</td>")
    );
    assert!(page.contains("<td rowspan=\"2\" class=\"gates\">–</td>"));
    assert!(!page.contains("NaN"));
    assert!(!page.replace("infergate", "").contains("inf"));
    assert!(page.contains("no samples in any step yet"));
    assert_eq!(page.matches("<polyline class=\"weights\"").count(), 2);
}

#[test]
fn non_finite_figures_do_not_break_the_page() {
    let mut r = promoted();
    r.steps[0].canary.ttft_s.p95 = Some(f64::NAN);
    r.steps[0].canary.error_rate = f64::INFINITY;
    r.steps[0].gates[0].value = Some(f64::INFINITY);
    let page = html(&r);
    assert!(!page.contains("NaN"));
    assert!(!page.replace("infergate", "").contains("inf"));
    assert!(page.contains("<title>Release demo-v2: Promoted</title>"));
}
