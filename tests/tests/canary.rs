//! Canary release through the real gateway: split accuracy, stickiness and monotonicity across
//! a reload, header, cookie and label rules, pinning, label-selected variants, shadow traffic,
//! `explain` and `/admin/routes`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use http::{Method, StatusCode};
use infergate_e2e::*;

const BODY: &str = r#"{"model":"demo","prompt":"hi","max_tokens":1}"#;
const STREAM: &str =
    r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"stream":true}"#;

/// Two simulators that say which version answered, one backend with version labels.
async fn versions() -> (Sim, Sim) {
    let v1 = Sim::start(&["--ttft-ms", "0", "--itl-ms", "0", "--served-version", "v1"]).await;
    let v2 = Sim::start(&["--ttft-ms", "0", "--itl-ms", "0", "--served-version", "v2"]).await;
    (v1, v2)
}

fn canary_config(
    v1: &Sim,
    v2: &Sim,
    stable: u32,
    canary: u32,
    extra_route: &str,
    extra_top: &str,
) -> String {
    [
        "listeners:".to_owned(),
        "  data: { address: \"127.0.0.1:0\" }".to_owned(),
        "  admin: { address: \"127.0.0.1:0\" }".to_owned(),
        extra_top.to_owned(),
        "backends:".to_owned(),
        "  - name: pool".to_owned(),
        "    endpoints:".to_owned(),
        format!("      - {{ url: \"{}\", labels: {{ version: v1 }} }}", v1.url()),
        format!("      - {{ url: \"{}\", labels: {{ version: v2 }} }}", v2.url()),
        "models:".to_owned(),
        "  - name: demo".to_owned(),
        "    variants:".to_owned(),
        "      - { name: stable, backend: pool, selector: { version: v1 } }".to_owned(),
        "      - { name: canary, backend: pool, selector: { version: v2 } }".to_owned(),
        "    routes:".to_owned(),
        extra_route.trim_end_matches('\n').to_owned(),
        "      - name: default".to_owned(),
        format!("        split: [{{ variant: stable, weight: {stable} }}, {{ variant: canary, weight: {canary} }}]"),
        "        sticky: { header: x-user-id }".to_owned(),
        "        allow_pin: true".to_owned(),
    ]
    .into_iter()
    .filter(|l| !l.is_empty())
    .collect::<Vec<_>>()
    .join("\n")
        + "\n"
}

/// Sends `n` requests with the given headers (per request) at concurrency 16; returns
/// (variant header, served version) of each.
async fn send_many(
    addr: std::net::SocketAddr,
    headers: Vec<Vec<(String, String)>>,
) -> Vec<(String, String)> {
    use std::sync::{Arc, Mutex};
    let queue = Arc::new(Mutex::new(
        headers.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for _ in 0..16 {
        let (queue, out) = (queue.clone(), out.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let Some((i, h)) = queue.lock().unwrap().pop() else {
                    break;
                };
                let refs: Vec<(&str, &str)> =
                    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let r = post_with(addr, "/v1/completions", BODY, &refs).await;
                assert_eq!(r.status, StatusCode::OK);
                let variant = r.headers["x-infergate-variant"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let served = r.headers["x-served-version"].to_str().unwrap().to_owned();
                out.lock().unwrap().push((i, (variant, served)));
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let mut v = Arc::try_unwrap(out).unwrap().into_inner().unwrap();
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, x)| x).collect()
}

#[tokio::test]
async fn weighted_split_over_10000_requests_passes_chi_square() {
    let (v1, v2) = versions().await;
    let gw = Gateway::start(&canary_config(&v1, &v2, 90, 10, "", "")).await;
    let results = send_many(gw.data, vec![Vec::new(); 10_000]).await;
    let canary = results.iter().filter(|(v, _)| v == "canary").count() as f64;
    let stable = results.len() as f64 - canary;
    // The variant header matches the version that actually answered.
    for (variant, served) in &results {
        assert_eq!(served, if variant == "canary" { "v2" } else { "v1" });
    }
    let chi2 = (stable - 9000.0).powi(2) / 9000.0 + (canary - 1000.0).powi(2) / 1000.0;
    println!("split 90/10 over 10000 requests: stable {stable}, canary {canary}, chi-square {chi2:.3} (critical 10.828 at p=0.001, 1 dof)");
    assert!(chi2 < 10.828, "chi-square {chi2}");
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("variant", "canary"), ("outcome", "success")]
        ),
        canary
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_requests_total",
            &[("variant", "stable"), ("outcome", "success")]
        ),
        stable
    );
}

#[tokio::test]
async fn sticky_users_keep_their_variant_and_only_move_to_the_canary() {
    let (v1, v2) = versions().await;
    let gw = Gateway::start(&canary_config(&v1, &v2, 90, 10, "", "")).await;
    let users: Vec<String> = (0..400).map(|i| format!("user-{i}")).collect();
    let hdrs = |users: &[String]| -> Vec<Vec<(String, String)>> {
        users
            .iter()
            .flat_map(|u| std::iter::repeat_n(vec![("x-user-id".to_owned(), u.clone())], 3))
            .collect()
    };
    let before = send_many(gw.data, hdrs(&users)).await;
    let mut assigned: HashMap<&str, &str> = HashMap::new();
    for (u, r) in users
        .iter()
        .flat_map(|u| std::iter::repeat_n(u, 3))
        .zip(&before)
    {
        let prev = assigned.insert(u, &r.0);
        assert!(
            prev.is_none() || prev == Some(r.0.as_str()),
            "{u} changed variant"
        );
    }
    let canary_before = assigned.values().filter(|v| **v == "canary").count();
    // Shift weight with a reload: 50/50.
    gw.write_config(&canary_config(&v1, &v2, 50, 50, "", ""));
    let r = request(gw.admin, Method::POST, "/admin/reload", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let after = send_many(gw.data, hdrs(&users)).await;
    let mut moved = 0;
    for (u, r) in users
        .iter()
        .flat_map(|u| std::iter::repeat_n(u, 3))
        .zip(&after)
    {
        let was = assigned[u.as_str()];
        if was == "canary" {
            assert_eq!(r.0, "canary", "{u} moved back from canary to stable");
        } else if r.0 == "canary" {
            moved += 1;
        }
    }
    let canary_after = canary_before + moved / 3;
    println!("sticky: {canary_before}/400 users on canary at 90/10, {canary_after}/400 at 50/50, none moved back");
    assert!((20..=65).contains(&canary_before), "{canary_before}");
    assert!((160..=240).contains(&canary_after), "{canary_after}");
}

#[tokio::test]
async fn header_cookie_and_label_rules_and_pinning() {
    let (v1, v2) = versions().await;
    let rules = [
        "      - name: testers",
        "        match: { labels: [{ name: tenant, exact: internal }] }",
        "        split: [{ variant: canary, weight: 1 }]",
        "      - name: beta-cookie",
        "        match: { cookies: [{ name: beta, exact: \"1\" }] }",
        "        split: [{ variant: canary, weight: 1 }]",
        "      - name: eu-clients",
        "        match: { headers: [{ name: x-region, regex: \"eu-(west|north)\" }] }",
        "        split: [{ variant: canary, weight: 1 }]",
    ]
    .join("\n");
    let rules = rules.as_str();
    let top = "request_labels:\n  tenant: { header: x-tenant-id }";
    // Stable gets everything by default.
    let gw = Gateway::start(&canary_config(&v1, &v2, 1, 0, rules, top)).await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "stable"),
        (vec![("x-tenant-id", "internal")], "canary"),
        (vec![("x-tenant-id", "acme")], "stable"),
        (vec![("cookie", "a=b; beta=1")], "canary"),
        (vec![("cookie", "beta=0")], "stable"),
        (vec![("x-region", "eu-west")], "canary"),
        (vec![("x-region", "eu-west-2")], "stable"),
        (vec![("x-infergate-variant", "canary")], "canary"),
        (vec![("x-infergate-variant", "nonexistent")], "stable"),
    ];
    for (headers, want) in cases {
        let r = post_with(gw.data, "/v1/completions", BODY, &headers).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.headers["x-infergate-variant"], want, "{headers:?}");
        assert_eq!(
            r.headers["x-served-version"],
            if want == "canary" { "v2" } else { "v1" }
        );
    }
    // Without allow_pin the pin header does nothing.
    let no_pin =
        canary_config(&v1, &v2, 1, 0, "", "").replace("allow_pin: true", "allow_pin: false");
    let gw = Gateway::start(&no_pin).await;
    let r = post_with(
        gw.data,
        "/v1/completions",
        BODY,
        &[("x-infergate-variant", "canary")],
    )
    .await;
    assert_eq!(r.headers["x-infergate-variant"], "stable");
    // /admin/routes shows the live rules and weights.
    let routes = get(gw.admin, "/admin/routes").await.json();
    let rule = &routes["models"][0]["rules"][0];
    assert_eq!(rule["name"], "default");
    assert_eq!(rule["split"][0]["variant"], "stable");
    assert_eq!(rule["split"][0]["percent"], 100.0);
    assert_eq!(
        routes["models"][0]["variants"][1]["selector"]["version"],
        "v2"
    );
}

#[tokio::test]
async fn slow_or_failing_shadow_changes_nothing_for_the_client() {
    let stable = Sim::start(&[
        "--ttft-ms",
        "100",
        "--itl-ms",
        "10",
        "--served-version",
        "v1",
        "--deterministic",
    ])
    .await;
    let slow = Sim::start(&[
        "--ttft-ms",
        "3000",
        "--itl-ms",
        "10",
        "--served-version",
        "v2",
    ])
    .await;
    let failing = Sim::start(&["--fault", "status=500", "--served-version", "v3"]).await;
    let config = |shadow_url: &str, percent: u32, max: u32| {
        [
            "listeners:".to_owned(),
            "  data: { address: \"127.0.0.1:0\" }".to_owned(),
            "  admin: { address: \"127.0.0.1:0\" }".to_owned(),
            "backends:".to_owned(),
            format!("  - {{ name: stable, endpoints: [{{ url: \"{}\" }}] }}", stable.url()),
            format!("  - {{ name: candidate, endpoints: [{{ url: \"{shadow_url}\" }}] }}"),
            "models:".to_owned(),
            "  - name: demo".to_owned(),
            "    variants:".to_owned(),
            "      - { name: stable, backend: stable }".to_owned(),
            "      - { name: candidate, backend: candidate }".to_owned(),
            "    routes:".to_owned(),
            "      - split: [{ variant: stable, weight: 1 }]".to_owned(),
            format!("        shadow: {{ variant: candidate, percent: {percent}, max_concurrency: {max} }}"),
        ]
        .join("\n")
            + "\n"
    };
    // Baseline without shadow copies.
    let base = Gateway::start(&config(&slow.url(), 0, 4)).await;
    let reference = post_with(
        base.data,
        "/v1/chat/completions",
        STREAM,
        &[("x-request-id", "same")],
    )
    .await;
    let ttft_ref = reference.frames[0].0 - reference.sent;
    for shadow in [&slow, &failing] {
        let gw = Gateway::start(&config(&shadow.url(), 100, 4)).await;
        for _ in 0..3 {
            let r = post_with(
                gw.data,
                "/v1/chat/completions",
                STREAM,
                &[("x-request-id", "same")],
            )
            .await;
            assert_eq!(r.status, StatusCode::OK);
            assert_eq!(r.body(), reference.body(), "shadow changed the body");
            assert_eq!(r.headers["x-infergate-variant"], "stable");
            let ttft = r.frames[0].0 - r.sent;
            assert!(
                ttft < ttft_ref + Duration::from_millis(30),
                "TTFT {ttft:?} with shadow vs {ttft_ref:?} without"
            );
        }
        gw.wait_metric(
            "infergate_shadow_requests_total",
            &[("result", "sent")],
            3.0,
            Duration::from_secs(5),
        )
        .await;
        if shadow.url() == failing.url() {
            gw.wait_metric(
                "infergate_requests_total",
                &[("variant", "shadow:candidate"), ("outcome", "upstream_5xx")],
                3.0,
                Duration::from_secs(5),
            )
            .await;
            let m = gw.metrics().await;
            // Shadow failures are not a health signal for the stable variant or the shadow.
            assert_eq!(metric_sum(&m, "infergate_endpoint_ejected", &[]), 0.0);
            assert_eq!(
                metric_sum(
                    &m,
                    "infergate_requests_total",
                    &[("variant", "stable"), ("outcome", "success")]
                ),
                3.0
            );
        }
    }
    // Shadow concurrency is bounded: with one permit and a 3 s shadow, copies are skipped.
    let gw = Gateway::start(&config(&slow.url(), 100, 1)).await;
    for _ in 0..5 {
        assert_eq!(stream_once(gw.data, STREAM).await, StreamResult::Complete);
    }
    let m = gw.metrics().await;
    assert_eq!(
        metric_sum(&m, "infergate_shadow_requests_total", &[("result", "sent")]),
        1.0
    );
    assert_eq!(
        metric_sum(
            &m,
            "infergate_shadow_requests_total",
            &[("result", "skipped")]
        ),
        4.0
    );
}

#[tokio::test]
async fn explain_prints_the_rule_variant_and_reason() {
    let cfg = repo_root().join("config/examples/canary.yaml");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin("infergate"))
            .arg("explain")
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let pinned = run(&["--model", "demo", "-H", "x-infergate-variant: canary"]);
    assert!(pinned.contains("variant canary"), "{pinned}");
    assert!(
        pinned.contains("pinned by header x-infergate-variant"),
        "{pinned}"
    );
    assert!(pinned.contains("http://127.0.0.1:9102"), "{pinned}");
    let sticky = run(&["--model", "demo", "-H", "x-user-id: alice"]);
    assert!(sticky.contains("sticky on header x-user-id"), "{sticky}");
    // Same key, same answer, every time.
    assert_eq!(sticky, run(&["--model", "demo", "-H", "x-user-id: alice"]));
    let random = run(&["--model", "demo"]);
    assert!(random.contains("weighted random"), "{random}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["--model", "demo", "-H", "x-user-id: bob", "--json"])).unwrap();
    assert_eq!(json["decision"]["why"]["kind"], "sticky");
    assert_eq!(json["decision"]["rule"], "default");
    let out = std::process::Command::new(bin("infergate"))
        .args(["explain", "--config"])
        .arg(&cfg)
        .args(["--model", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model \"nope\""));
}
