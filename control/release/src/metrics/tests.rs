#![allow(clippy::unwrap_used)]

use super::*;

fn hist(b: &[(f64, f64)]) -> Histogram {
    let mut h = Histogram::default();
    for &(le, c) in b {
        h.add(le, c);
    }
    h
}

#[test]
fn quantiles_interpolate_within_the_bucket_as_prometheus_does() {
    // 100 samples: 50 at or below 0.1, 90 at or below 0.2, all at or below 0.4.
    let h = hist(&[
        (0.1, 50.0),
        (0.2, 90.0),
        (0.4, 100.0),
        (f64::INFINITY, 100.0),
    ]);
    // Rank 50 is the top of the first bucket; rank 95 is 5/10 of the way through (0.2, 0.4].
    assert!((h.quantile(0.5).unwrap() - 0.1).abs() < 1e-12);
    assert!((h.quantile(0.95).unwrap() - 0.3).abs() < 1e-12);
    assert!(
        (h.quantile(0.25).unwrap() - 0.05).abs() < 1e-12,
        "lower bound 0"
    );
    // Ranks in the +Inf bucket give the largest finite bound.
    let tail = hist(&[(0.1, 10.0), (f64::INFINITY, 20.0)]);
    assert_eq!(tail.quantile(0.99), Some(0.1));
    assert_eq!(Histogram::default().quantile(0.5), None);
    assert_eq!(
        hist(&[(0.1, 0.0), (f64::INFINITY, 0.0)]).quantile(0.5),
        None
    );
}

#[test]
fn windows_are_later_minus_earlier_and_count_only_error_outcomes() {
    let mut a = Snapshot::default();
    a.add_requests("canary", "success", 10.0);
    a.variants.get_mut("canary").unwrap().ttft = hist(&[(0.1, 10.0), (f64::INFINITY, 10.0)]);
    let mut b = a.clone();
    b.add_requests("canary", "success", 90.0);
    b.add_requests("canary", "upstream_5xx", 5.0);
    b.add_requests("canary", "timeout_first_token", 1.0);
    b.add_requests("canary", "client_cancelled", 3.0);
    b.add_requests("canary", "upstream_4xx", 1.0);
    b.variants.get_mut("canary").unwrap().ttft =
        hist(&[(0.1, 10.0), (0.2, 100.0), (f64::INFINITY, 100.0)]);
    let w = b.window(&a, "canary");
    assert_eq!(w.requests, 100);
    assert_eq!(w.errors, 6);
    assert!((w.error_rate - 0.06).abs() < 1e-12);
    // Only the 90 new samples, all in (0.1, 0.2].
    let p50 = w.ttft_s.p50.unwrap();
    assert!(p50 > 0.1 && p50 < 0.2, "{p50}");
    assert_eq!(w.tpot_s.p95, None);
    assert_eq!(b.window(&a, "stable").requests, 0);
    assert!(!b.went_back(&a));
    assert!(a.went_back(&b));
    for o in [
        "no_endpoint",
        "connect_error",
        "upstream_error",
        "timeout_idle",
    ] {
        assert!(is_error(o), "{o}");
    }
    for o in [
        "success",
        "client_cancelled",
        "bad_request",
        "upstream_4xx",
        "no_route",
    ] {
        assert!(!is_error(o), "{o}");
    }
}

const METRICS: &str = r#"# HELP infergate_requests_total Requests.
# TYPE infergate_requests_total counter
infergate_requests_total{model="demo",backend="a",variant="stable",endpoint="http://x",outcome="success"} 40
infergate_requests_total{model="demo",backend="b",variant="canary",endpoint="http://y",outcome="success"} 9
infergate_requests_total{model="demo",backend="b",variant="canary",endpoint="http://y",outcome="upstream_5xx"} 1
infergate_requests_total{model="other",backend="b",variant="canary",endpoint="http://y",outcome="success"} 1000
infergate_time_to_first_token_seconds_bucket{model="demo",backend="a",variant="stable",le="0.1"} 30
infergate_time_to_first_token_seconds_bucket{model="demo",backend="a",variant="stable",le="+Inf"} 40
infergate_time_to_first_token_seconds_sum{model="demo",backend="a",variant="stable"} 3.5
infergate_time_per_output_token_seconds_bucket{model="demo",backend="b",variant="canary",le="0.01"} 9
infergate_time_per_output_token_seconds_bucket{model="demo",backend="b",variant="canary",le="+Inf"} 10
weird_line_without_value
infergate_requests_total{model="de\"mo",variant="stable",outcome="success"} 7 1700000000000
"#;

#[test]
fn gateway_text_is_summed_per_variant() {
    let mut snap = Snapshot::default();
    add_text(&mut snap, METRICS, "demo");
    add_text(&mut snap, METRICS, "demo");
    let stable = snap.variant("stable");
    assert_eq!(stable.requests, 80.0);
    assert_eq!(
        stable.ttft.buckets,
        vec![(0.1, 60.0), (f64::INFINITY, 80.0)]
    );
    let canary = snap.variant("canary");
    assert_eq!((canary.requests, canary.errors), (20.0, 2.0));
    assert_eq!(canary.tpot.count(), 20.0);
    let mut quoted = Snapshot::default();
    add_text(&mut quoted, METRICS, "de\"mo");
    assert_eq!(quoted.variant("stable").requests, 7.0);
}

#[test]
fn prometheus_answers_give_the_same_snapshot_shape() {
    let q = queries("demo");
    assert_eq!(
        q[1].1,
        "sum by (variant, le) (infergate_time_to_first_token_seconds_bucket{model=\"demo\"})"
    );
    let body = br#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"variant":"stable","le":"0.1"},"value":[1700000000.1,"60"]},
        {"metric":{"variant":"stable","le":"+Inf"},"value":[1700000000.1,"80"]}]}}"#;
    let mut snap = Snapshot::default();
    for s in parse_vector(body, TTFT_BUCKET).unwrap() {
        direct::add_sample(&mut snap, &s);
    }
    let mut direct = Snapshot::default();
    add_text(&mut direct, METRICS, "demo");
    add_text(&mut direct, METRICS, "demo");
    assert_eq!(snap.variant("stable").ttft, direct.variant("stable").ttft);
    let err = parse_vector(br#"{"status":"error","error":"parse error"}"#, REQUESTS).unwrap_err();
    assert!(err.contains("parse error"), "{err}");
    assert!(parse_vector(b"<html>", REQUESTS).is_err());
    assert_eq!(encode("a b{\"c\"}"), "a%20b%7B%22c%22%7D");
}

#[test]
fn routes_say_which_canary_endpoints_are_ejected() {
    let doc = serde_json::json!({"models":[{"model":"demo","variants":[
        {"name":"stable","endpoints":[{"url":"http://s","ejection":null}]},
        {"name":"canary","endpoints":[
            {"url":"http://c1","ejection":{"reason":"gpu_unhealthy","detail":"GPU 0: XID 79"}},
            {"url":"http://c2","ejection":{"reason":"model_not_warm"}},
            {"url":"http://c3","ejection":null}]}]}]});
    let eps = routes::parse(&doc, "http://gw", "demo", "canary").unwrap();
    let view = routes::CanaryView { endpoints: eps };
    assert_eq!(view.endpoints.len(), 3);
    assert_eq!(view.gpu_unhealthy()[0].url, "http://c1");
    assert_eq!(
        view.gpu_unhealthy()[0].detail.as_deref(),
        Some("GPU 0: XID 79")
    );
    assert_eq!(view.cold()[0].url, "http://c2");
    let err = routes::parse(&doc, "http://gw", "demo", "canry").unwrap_err();
    assert!(err.contains("no variant \"canry\""), "{err}");
    assert!(routes::parse(&doc, "http://gw", "x", "canary").is_err());
}
