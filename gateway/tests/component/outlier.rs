//! Passive outlier detection: retries route around a dead endpoint, consecutive failures eject
//! it for `base_ejection`, it comes back exactly then, and a second ejection lasts twice as long.

use http::StatusCode;

use crate::common::*;

/// Sends requests until `dead` is ejected again (each must succeed); returns how many were sent.
async fn until_ejected(gw: &infergate_gateway::Running, dead: &str, most: usize) -> usize {
    for n in 1..=most {
        let r = post(gw.data_addr, "/v1/chat/completions", &chat_stream(5)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.events().last().unwrap().1, "[DONE]");
        if endpoint(gw.admin_addr, dead).await["state"] == "ejected" {
            return n;
        }
    }
    panic!("{dead} not ejected after {most} requests");
}

#[tokio::test(start_paused = true)]
async fn retries_route_around_a_dead_endpoint_that_is_ejected_then_returns() {
    let _clock = ManualClock::hold();
    let live = sim(0, 0).await;
    let dead = closed_port_url();
    let extra = "    outlier: { consecutive_failures: 2, base_ejection: 30s, max_ejection: 5m }\n";
    let gw = gateway(&config(&[dead.clone(), url(&live)], extra, "")).await;
    for _ in 0..20 {
        let r = post(gw.data_addr, "/v1/chat/completions", &chat_stream(5)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.events().last().unwrap().1, "[DONE]");
    }
    let m = metrics(gw.admin_addr).await;
    let retried = metric_sum(&m, "infergate_retries_total", &[("result", "retried")]);
    assert!((1.0..=2.0).contains(&retried), "retries: {retried}");
    assert_eq!(
        metric_sum(&m, "infergate_endpoint_ejected", &[("endpoint", &dead)]),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_endpoint_ejections_total",
            &[("endpoint", &dead)]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_upstream_failures_total",
            &[("endpoint", &dead), ("reason", "connect")]
        ),
        2.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_requests_total", &[("outcome", "success")]),
        20.0
    );
    let eps = get(gw.admin_addr, "/admin/endpoints").await.json();
    let list = eps["backends"][0]["endpoints"].as_array().unwrap();
    let d = list.iter().find(|e| e["url"] == dead.as_str()).unwrap();
    assert_eq!(d["state"], "ejected");
    assert_eq!(d["ejection"]["reason"], "consecutive_failures");
    // The clock has not moved since the ejection (ejection ends are kept in milliseconds).
    assert_remaining(d, 30.0);
    let l = list.iter().find(|e| e["url"] != dead.as_str()).unwrap();
    assert_eq!(l["state"], "healthy");
    assert_eq!(l["in_flight"], 0);
    assert!(l["latency_ms"].is_number(), "{l}");

    // The ejection ends after base_ejection, not before.
    advance(29_990 * MS).await;
    let d = endpoint(gw.admin_addr, &dead).await;
    assert_eq!(d["state"], "ejected", "{d}");
    advance(10 * MS).await;
    let d = endpoint(gw.admin_addr, &dead).await;
    assert_eq!(d["state"], "healthy", "{d}");
    assert_eq!(
        metric(
            gw.admin_addr,
            "infergate_endpoint_ejected",
            &[("endpoint", &dead)]
        )
        .await,
        0.0
    );

    // Back in the pool, it fails again: ejected again, for twice as long.
    until_ejected(&gw, &dead, 200).await;
    let d = endpoint(gw.admin_addr, &dead).await;
    assert_remaining(&d, 60.0);
    let m = metrics(gw.admin_addr).await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_endpoint_ejections_total",
            &[("endpoint", &dead)]
        ),
        2.0
    );
    assert_eq!(
        metric_sum(&m, "infergate_requests_total", &[("outcome", "success")]),
        metric_sum(&m, "infergate_requests_total", &[])
    );
    advance(59_990 * MS).await;
    assert_eq!(endpoint(gw.admin_addr, &dead).await["state"], "ejected");
    advance(10 * MS).await;
    assert_eq!(endpoint(gw.admin_addr, &dead).await["state"], "healthy");
}
