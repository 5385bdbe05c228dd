//! Progressive canary releases end to end: the real `infergate-control` runs a release, the
//! real gateway follows its feed and moves traffic, simulators play stable and canary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "release_harness.rs"]
mod harness;

use std::time::Duration;

use harness::*;
use infergate_e2e::*;

const HEALTHY: &str = "devices: [{}, {}]\n";

#[tokio::test]
async fn a_good_canary_is_promoted_through_every_step_with_no_failed_request() {
    let s = stack(&[], HEALTHY).await;
    let load = Load::start(s.gateway.data, 8);
    let spec = s.spec("good", "[10, 50, 100]", "");
    let (code, out) = s
        .cli(
            &["run", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(90),
        )
        .await;
    let stats = load.stop().await;
    assert_eq!(code, 0, "{out}");
    for step in [
        "step 1/3 canary 10%: PASS",
        "step 2/3 canary 50%: PASS",
        "step 3/3 canary 100%: PASS",
    ] {
        assert!(out.contains(step), "{step} not in:\n{out}");
    }
    assert!(out.contains("promoted"), "{out}");
    assert!(
        out.contains("weight: 100"),
        "the final split is printed:\n{out}"
    );
    assert_eq!(stats.1, 0, "failed requests: {stats:?}");
    let r = s.release("good").await;
    assert_eq!(r["state"], "promoted");
    let weights: Vec<u64> = r["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["canary"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, vec![0, 10, 50, 100]);
    // The gateway applied the weights: the canary served at each step, in proportion.
    let steps = r["steps"].as_array().unwrap();
    let share = |i: usize| {
        let c = steps[i]["canary"]["requests"].as_f64().unwrap();
        let st = steps[i]["stable"]["requests"].as_f64().unwrap();
        c / (c + st)
    };
    assert!(
        share(0) > 0.02 && share(0) < 0.3,
        "step 1 canary share {}",
        share(0)
    );
    assert!(
        share(1) > 0.3 && share(1) < 0.7,
        "step 2 canary share {}",
        share(1)
    );
    assert!(share(2) > 0.97, "step 3 canary share {}", share(2));
    let feed = get(s.control_addr, "/v1/health").await.json();
    assert_eq!(feed["releases"][0]["weights"]["canary"], 100);
    assert_eq!(feed["releases"][0]["state"], "promoted");
    let metrics = metrics_at(s.control_addr).await;
    assert_eq!(
        metric_sum(
            &metrics,
            "infergate_control_release_state",
            &[("release", "good"), ("state", "promoted")]
        ),
        1.0
    );
    assert!(
        metrics.contains("infergate_control_release_gate{"),
        "{metrics}"
    );
    let report = get(s.control_addr, "/v1/releases/good/report.html").await;
    assert_eq!(report.status, http::StatusCode::OK);
    assert!(String::from_utf8_lossy(&report.body()).contains("<svg"));
    let report = get(s.control_addr, "/v1/releases/good/report.json").await;
    assert_eq!(report.json()["state"], "promoted");
    // Deleted: the weights leave the feed.
    let d = request(
        s.control_addr,
        http::Method::DELETE,
        "/v1/releases/good",
        &[],
    )
    .await;
    assert_eq!(d.status, http::StatusCode::OK);
    assert!(get(s.control_addr, "/v1/health").await.json()["releases"].is_null());
}

#[tokio::test]
async fn a_canary_with_twice_the_ttft_is_rolled_back_at_the_first_judged_step() {
    let s = stack(&["--ttft-ms", "80"], HEALTHY).await;
    let load = Load::start(s.gateway.data, 8);
    let spec = s.spec("slow", "[25, 50, 100]", "");
    let (code, out) = s
        .cli(
            &["run", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(60),
        )
        .await;
    load.stop().await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("step 1/3 canary 25%: FAIL"), "{out}");
    assert!(out.contains("ttft_p95 FAIL"), "{out}");
    assert!(out.contains("rolled_back"), "{out}");
    let r = s.release("slow").await;
    assert_eq!(r["steps"].as_array().unwrap().len(), 1);
    assert_eq!(r["canary_weight"], 0);
    let feed = get(s.control_addr, "/v1/health").await.json();
    assert_eq!(feed["releases"][0]["weights"]["canary"], 0);
}

#[tokio::test]
async fn a_canary_with_five_percent_errors_is_rolled_back() {
    let s = stack(&["--fault", "status=500@0.05", "--seed", "7"], HEALTHY).await;
    let load = Load::start(s.gateway.data, 8);
    // Enough canary requests that 5 % shows above the 2-point delta.
    let spec = s.spec("errors", "[50, 100]", "");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("min_requests: 20", "min_requests: 200");
    std::fs::write(&spec, text).unwrap();
    let (code, out) = s
        .cli(
            &["run", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(90),
        )
        .await;
    load.stop().await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("error_rate FAIL"), "{out}");
    let r = s.release("errors").await;
    let rate = r["steps"][0]["canary"]["error_rate"].as_f64().unwrap();
    assert!(rate > 0.02 && rate < 0.12, "canary error rate {rate}");
}

#[tokio::test]
async fn a_canary_whose_gpu_fails_mid_release_is_rolled_back() {
    // GPU 1 (the canary's) falls off the bus 6 s in: during the first or second step.
    let s = stack(
        &[],
        "devices: [{}, {}]\ntimeline:\n  - { at: 6s, gpu: 1, xid: 79 }\n",
    )
    .await;
    let load = Load::start(s.gateway.data, 4);
    let spec = s.spec("gpu", "[10, 20, 50, 100]", "");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("step_interval: 2s", "step_interval: 3s");
    std::fs::write(&spec, text).unwrap();
    let (code, out) = s
        .cli(
            &["run", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(60),
        )
        .await;
    load.stop().await;
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("gpu_healthy FAIL"), "{out}");
    let r = s.release("gpu").await;
    assert!(r["reason"].as_str().unwrap().contains("gpu_healthy"), "{r}");
    assert_eq!(r["canary_weight"], 0);
}

#[tokio::test]
async fn abort_and_manual_promote_end_a_release_at_once() {
    let s = stack(&[], HEALTHY).await;
    let spec = s.spec("abort-me", "[10, 100]", "");
    let (code, out) = s
        .cli(
            &["start", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = s.cli(&["abort", "abort-me"], Duration::from_secs(10)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("aborted"), "{out}");
    let r = s.release("abort-me").await;
    assert_eq!(
        (
            r["state"].as_str(),
            r["reason"].as_str(),
            r["canary_weight"].as_u64()
        ),
        (Some("aborted"), Some("aborted"), Some(0))
    );
    let (code, out) = s.cli(&["abort", "abort-me"], Duration::from_secs(10)).await;
    assert_eq!(code, 1, "an ended release cannot be aborted again: {out}");
    // Another release on the same model may start once the first has ended.
    let spec = s.spec("promote-me", "[10, 100]", "");
    let (code, out) = s
        .cli(
            &["start", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = s
        .cli(
            &["start", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("409") && out.contains("exists"), "{out}");
    // The ended release's weights leave the feed: only the new one's count.
    let feed = get(s.control_addr, "/v1/health").await.json();
    let names: Vec<&str> = feed["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["promote-me"]);
    assert_eq!(s.release("abort-me").await["superseded_by"], "promote-me");
    let asked = tokio::time::Instant::now();
    let (code, out) = s
        .cli(&["promote", "promote-me"], Duration::from_secs(10))
        .await;
    assert_eq!(code, 0, "{out}");
    // The new weights reach the gateway within a second of the step (from the CLI's start).
    wait_until(
        "the gateway applies the promotion",
        Duration::from_secs(1),
        || async {
            let w = metric_at(
                s.gateway.admin,
                "infergate_release_weight",
                &[("release", "promote-me"), ("variant", "canary")],
            )
            .await;
            w == 100.0
        },
    )
    .await;
    eprintln!(
        "promote asked -> gateway weights applied: {} ms",
        asked.elapsed().as_millis()
    );
    let r = s.release("promote-me").await;
    assert_eq!(
        (r["state"].as_str(), r["canary_weight"].as_u64()),
        (Some("promoted"), Some(100))
    );
    // The gateway sends everything to the canary within a second or two.
    wait_until(
        "requests served by the canary",
        Duration::from_secs(5),
        || async {
            let r = post(s.gateway.data, "/v1/chat/completions", STREAM).await;
            r.headers.get("x-served-version").is_some_and(|v| v == "v2")
        },
    )
    .await;
    let (code, out) = s.cli(&["status"], Duration::from_secs(10)).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("abort-me") && out.contains("promote-me"),
        "{out}"
    );
    let bad = s.dir.join("bad.yaml");
    std::fs::write(&bad, "name: x\nmodel: demo\n").unwrap();
    let (code, out) = s
        .cli(
            &["start", "--spec", bad.to_str().unwrap()],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(code, 1);
    assert!(
        out.contains("bad.yaml") && out.contains("missing field"),
        "{out}"
    );
}

#[tokio::test]
async fn a_sticky_user_on_the_canary_never_goes_back_during_the_ramp() {
    let s = stack(&[], HEALTHY).await;
    let spec = s.spec("sticky", "[10, 30, 60, 100]", "");
    let addr = s.gateway.data;
    // 60 users ask in turn, each with its own key, until the release ends.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let users = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut seen: Vec<Vec<String>> = vec![Vec::new(); 60];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (u, history) in seen.iter_mut().enumerate() {
                    let key = format!("user-{u}");
                    let body = STREAM.replace("\"max_tokens\":20", "\"max_tokens\":2");
                    let r = post_with(addr, "/v1/chat/completions", &body, &[("x-user-id", &key)])
                        .await;
                    let variant = r.headers["x-infergate-variant"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    if history.last() != Some(&variant) {
                        history.push(variant);
                    }
                }
            }
            seen
        }
    });
    let (code, out) = s
        .cli(
            &["run", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(90),
        )
        .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = users.await.unwrap();
    assert_eq!(code, 0, "{out}");
    // Each user's variants over time: stable first, then canary, never back.
    let moved = seen.iter().filter(|h| h.len() > 1).count();
    for (u, h) in seen.iter().enumerate() {
        assert!(
            h.as_slice() == ["canary"]
                || h.as_slice() == ["stable"]
                || h.as_slice() == ["stable", "canary"],
            "user-{u} went {h:?}"
        );
    }
    assert!(moved > 20, "only {moved} of 60 users moved to the canary");
}
