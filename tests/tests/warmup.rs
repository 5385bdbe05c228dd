//! Model cache warmup through the real `infergate-control`, and the gateway gating an endpoint
//! on its model being warm.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use http::StatusCode;
use infergate_e2e::*;
use tokio::process::Command;
use tokio::time::Instant;

fn model_dir(files: usize, size: usize) -> std::path::PathBuf {
    let dir = temp_path("model-src");
    std::fs::create_dir_all(&dir).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        let mut data = vec![0u8; size];
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        std::fs::write(
            dir.join(format!("model-0000{i}-of-0000{files}.safetensors")),
            data,
        )
        .unwrap();
    }
    dir
}

fn control_cmd() -> Command {
    Command::new(bin("infergate-control"))
}

/// A model directory with its `manifest.json` written by `infergate-control manifest`.
async fn model_with_manifest(files: usize, size: usize) -> std::path::PathBuf {
    let src = model_dir(files, size);
    let out = control_cmd()
        .arg("manifest")
        .arg(&src)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    src
}

/// `infergate-control warmup --source SRC --dest DEST EXTRA…`, which must succeed; its stdout.
async fn warmup_cli(src: &std::path::Path, dest: &std::path::Path, extra: &[&str]) -> String {
    let out = control_cmd()
        .args(["warmup", "--source"])
        .arg(src)
        .arg("--dest")
        .arg(dest)
        .args(extra)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A `control.yaml` for node-a with one warmup job of model `demo`.
fn control_config(
    version: &str,
    src: &std::path::Path,
    dest: &std::path::Path,
    tuning: &str,
) -> std::path::PathBuf {
    let dir = temp_path("warm-control");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("control.yaml");
    std::fs::write(
        &config,
        format!(
            "node: node-a\nlisten: 127.0.0.1:0\ngpu: {{ interval: 500ms }}\nremediation: {{ mode: off }}\n\
warmup:\n  - {{ model: demo, version: {version}, source: \"{}\", dest: \"{}\", tuning: {{ {tuning} }} }}\n",
            src.display(),
            dest.display()
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn manifest_and_one_shot_warmup_from_the_command_line() {
    let src = model_with_manifest(3, 1 << 20).await;
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["files"][0]["size"], 1 << 20);
    assert_eq!(manifest["files"][0]["sha256"].as_str().unwrap().len(), 64);
    let dest = temp_path("model-dest");
    let stdout = warmup_cli(&src, &dest, &[]).await;
    assert!(stdout.contains("warm: 3 files (3 fetched"), "{stdout}");
    assert_same_files(&src, &dest);
    // Again: everything is in place and verified; nothing is copied. The pre-read reports
    // what is resident.
    let stdout = warmup_cli(&src, &dest, &["--preread"]).await;
    assert!(
        stdout.contains("(0 fetched, 3 already in place)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pre-read 3145728 bytes; 3145728 bytes (100.0 %) resident")
            || stdout.contains("pre-read 3145728 bytes (this file system cannot tell"),
        "{stdout}"
    );
}

#[tokio::test]
async fn gateway_sends_no_traffic_to_an_endpoint_until_its_model_is_warm() {
    let src = model_with_manifest(2, 4 << 20).await;
    let dest = temp_path("cache");
    // 8 MiB at 4 MiB/s: about two seconds of cold model.
    let config = control_config("v2", &src, &dest, "bandwidth_cap: 4194304");
    let (_control, control) = start_control(&config, &[]).await;

    let old = Sim::start(&["--ttft-ms", "1", "--itl-ms", "1", "--served-version", "v1"]).await;
    let new = Sim::start(&["--ttft-ms", "1", "--itl-ms", "1", "--served-version", "v2"]).await;
    let cfg = [
        "listeners:".to_owned(),
        "  data: { address: \"127.0.0.1:0\" }".to_owned(),
        "  admin: { address: \"127.0.0.1:0\" }".to_owned(),
        format!("health_feeds: [{{ url: \"http://{control}/v1/health\", hold_down: 0s }}]"),
        "backends:".to_owned(),
        "  - name: demo".to_owned(),
        "    endpoints:".to_owned(),
        format!("      - {{ url: \"{}\", labels: {{ node: node-a, gpus: \"0\" }} }}", old.url()),
        format!("      - {{ url: \"{}\", labels: {{ node: node-a, gpus: \"1\", model: demo, version: v2 }}, require_warm: true }}", new.url()),
        "models: [{ name: demo, backend: demo }]".to_owned(),
    ]
    .join("\n");
    let gw = Gateway::start(&cfg).await;
    let body = r#"{"model":"demo","prompt":"hi","max_tokens":1}"#;
    let started = Instant::now();
    // While the model is cold: every request to the old version, and the admin API says why.
    let mut cold_requests = 0;
    let mut seen_progress = false;
    loop {
        let ep = gw.endpoint(&new.url()).await;
        if ep["state"] == "healthy" {
            break;
        }
        assert_eq!(ep["ejection"]["reason"], "model_not_warm", "{ep}");
        let detail = ep["ejection"]["detail"].as_str().unwrap().to_owned();
        if detail.contains("model demo v2 on node-a is") {
            seen_progress = true;
        }
        let r = post(gw.data, "/v1/completions", body).await;
        if r.headers["x-served-version"] != "v1" {
            // The feed said warm between the two calls: only then may v2 serve.
            let ep = gw.endpoint(&new.url()).await;
            assert_eq!(ep["state"], "healthy", "v2 served while cold: {ep}");
            break;
        }
        cold_requests += 1;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the model never became warm"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warm_after = started.elapsed();
    // The control API lists the job as warm.
    let jobs = get(control, "/v1/warmup").await.json();
    assert_eq!(jobs["jobs"][0]["state"], "warm", "{jobs}");
    assert_eq!(jobs["jobs"][0]["bytes_done"], 8 << 20);
    let feed = get(control, "/v1/health").await.json();
    assert_eq!(feed["models"][0]["state"], "warm");
    // Now the new version takes traffic too.
    let mut served_new = 0;
    for _ in 0..20 {
        if post(gw.data, "/v1/completions", body).await.headers["x-served-version"] == "v2" {
            served_new += 1;
        }
    }
    println!("cold for {warm_after:?}: {cold_requests} requests all to the old version; then {served_new}/20 to the new one");
    assert!(cold_requests >= 5, "{cold_requests}");
    assert!(
        seen_progress,
        "the admin API never said the model was warming"
    );
    assert!(served_new >= 3, "{served_new}");

    // POST /v1/warmup starts another job; a bad one is refused with a reason.
    let r = post(
        control,
        "/v1/warmup",
        &format!(
            r#"{{"model":"other","version":"v1","source":{{"local":"{}"}},"dest":"{}"}}"#,
            src.display(),
            temp_path("cache2").display()
        ),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.body())
    );
    let r = post(control, "/v1/warmup", r#"{"model":"x","source":"nowhere"}"#).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"].as_str().unwrap().contains("invalid job"));
    // A job that cannot run (a CA bundle that is not there) is refused up front, with the reason.
    let r = post(
        control,
        "/v1/warmup",
        r#"{"model":"x","version":"v1","source":{"http":"https://store.invalid/x"},"dest":"/tmp/x","ca_file":"/nonexistent/ca.pem"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let reason = r.json()["error"].as_str().unwrap().to_owned();
    assert!(reason.contains("ca_file /nonexistent/ca.pem"), "{reason}");
    let metrics = metrics_at(control).await;
    assert!(
        metric_sum(
            &metrics,
            "infergate_control_warmup_bytes_total",
            &[("model", "demo")]
        ) == (8 << 20) as f64
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "infergate_control_warmup_state",
            &[("model", "demo"), ("state", "warm")]
        ),
        1.0
    );
}

/// Chunks recorded as finished in every `*.partial.state` under `dest`.
fn finished_chunks(dest: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dest) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial.state"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|v| v["finished"].as_array().map_or(0, Vec::len))
        .sum()
}

async fn wait_for_chunks(dest: &std::path::Path, n: usize) {
    wait_until(
        &format!("fewer than {n} chunks finished"),
        Duration::from_secs(15),
        || async { finished_chunks(dest) >= n },
    )
    .await;
}

/// Every file of `src`'s manifest is in `dest`, byte for byte.
fn assert_same_files(src: &std::path::Path, dest: &std::path::Path) {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    for f in manifest["files"].as_array().unwrap() {
        let name = f["path"].as_str().unwrap();
        assert!(
            std::fs::read(dest.join(name)).unwrap() == std::fs::read(src.join(name)).unwrap(),
            "{name} differs"
        );
    }
}

/// 2 × 8 MiB, 1 MiB chunks, one range per file, 4 MiB/s: about four seconds, a chunk finished
/// every half second per file.
const SLOW: [&str; 6] = [
    "--chunk-size",
    "1048576",
    "--parallel-ranges",
    "1",
    "--bandwidth-cap",
    "4194304",
];

#[tokio::test]
async fn sigterm_stops_the_command_line_warmup_and_the_next_run_resumes() {
    let src = model_with_manifest(2, 8 << 20).await;
    let dest = temp_path("model-dest-term");
    let mut cmd = control_cmd();
    cmd.args(["warmup", "--source"])
        .arg(&src)
        .arg("--dest")
        .arg(&dest)
        .args(SLOW);
    let (mut proc, _) = Proc::spawn(cmd, &[]).await;
    wait_for_chunks(&dest, 3).await;
    proc.signal("TERM");
    let code = proc.wait_exit(Duration::from_secs(5)).await;
    let output = proc.output();
    assert_eq!(code, Some(130), "{output}");
    assert!(
        output.contains("run the same command again to resume"),
        "{output}"
    );
    // What is left: finished chunks in sidecars, nothing incomplete under a final name.
    let kept = finished_chunks(&dest);
    assert!(kept >= 3, "{kept} chunks kept");
    for i in 0..2 {
        let name = format!("model-0000{i}-of-00002.safetensors");
        let final_path = dest.join(&name);
        if final_path.exists() {
            assert_eq!(std::fs::metadata(&final_path).unwrap().len(), 8 << 20);
        } else {
            assert!(dest.join(format!("{name}.partial")).exists(), "{name}");
        }
    }

    // The next run (same chunk size, no cap) fetches only what is missing.
    let stdout = warmup_cli(&src, &dest, &SLOW[..2]).await;
    let transferred: u64 = stdout
        .split(" bytes transferred")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {stdout:?}"));
    println!("SIGTERM left {kept} finished chunks of 1 MiB; the next run transferred {transferred} of {} bytes", 16 << 20);
    assert!(
        transferred <= (16 << 20) - (kept as u64) * (1 << 20),
        "{transferred} bytes transferred after {kept} chunks were kept"
    );
    assert_same_files(&src, &dest);
    assert_eq!(finished_chunks(&dest), 0, "sidecars left behind");
}

#[tokio::test]
async fn sigterm_stops_the_control_process_jobs_and_a_restart_resumes_them() {
    let src = model_with_manifest(2, 8 << 20).await;
    let dest = temp_path("cache-term");
    let config = control_config(
        "v3",
        &src,
        &dest,
        "chunk_size: 1048576, parallel_ranges: 1, bandwidth_cap: 4194304, preread: true",
    );
    let (mut control, _) = start_control(&config, &[]).await;
    wait_for_chunks(&dest, 3).await;
    control.signal("TERM");
    let code = control.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{}", control.output());
    let kept = finished_chunks(&dest);
    assert!(kept >= 3, "{kept} chunks kept");
    println!("control stopped by SIGTERM (exit 0) with {kept} finished chunks of 1 MiB kept");

    // Restarted, the job resumes and finishes.
    let (_control, addr) = start_control(&config, &[]).await;
    wait_for(
        "not warm after a restart",
        Duration::from_secs(20),
        || async {
            let jobs = get(addr, "/v1/warmup").await.json();
            assert!(jobs["jobs"][0]["state"] != "failed", "{jobs}");
            if jobs["jobs"][0]["state"] == "warm" {
                Ok(())
            } else {
                Err(jobs.to_string())
            }
        },
    )
    .await;
    assert_same_files(&src, &dest);
    // The pre-read's residency, in the API and in metrics (where the file system can tell).
    let jobs = get(addr, "/v1/warmup").await.json();
    if let Some(resident) = jobs["jobs"][0]["resident_bytes"].as_u64() {
        assert_eq!(resident, 16 << 20, "{jobs}");
        // Metrics are published when the job ends and every 250 ms.
        wait_metric_at(
            addr,
            "infergate_control_warmup_resident_bytes",
            &[("model", "demo"), ("version", "v3")],
            (16 << 20) as f64,
            Duration::from_secs(2),
        )
        .await;
    }
}
