//! Warmup over HTTP against a real (test) server on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use infergate_warmup::testing::{run_with_hooks, Hooks};
use infergate_warmup::{run, CancelToken, Progress, Source, Tuning, WarmupError, WarmupState};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn model() -> std::collections::BTreeMap<String, Bytes> {
    model_files(&[
        ("model-00001-of-00002.safetensors", 3 * MIB + 12345),
        ("model-00002-of-00002.safetensors", 2 * MIB),
        ("config.json", 200),
        ("tokenizer/tokenizer.json", 100 * KIB),
        ("empty.bin", 0),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_verifies_and_places_every_file_then_skips_them() {
    let files = model();
    let server = TestServer::start(files.clone()).await;
    let dest = TempDir::new("http-ok");
    let progress = Arc::new(Progress::new());
    let report = run(
        job(server.source(), dest.path(), tuning()),
        progress.clone(),
        CancelToken::new(),
    )
    .await
    .unwrap();
    assert_dest_matches(dest.path(), &files);
    let total: u64 = files.values().map(|d| d.len() as u64).sum();
    assert_eq!(report.bytes_total, total);
    assert_eq!(report.bytes_transferred, total);
    assert_eq!(report.files_fetched, 5);
    assert_eq!(report.retries, 0);
    let snap = progress.snapshot();
    assert!(snap.is_warm());
    assert_eq!((snap.bytes_done, snap.bytes_total), (total, total));
    assert_eq!((snap.files_done, snap.files_total), (5, 5));
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(json["state"], "warm");
    assert_eq!(json["model"], "test-model");

    // Every 256 KiB range asked for exactly once.
    let big = "model-00001-of-00002.safetensors";
    let size = files[big].len() as u64;
    let chunk = 256 * 1024u64;
    for c in 0..size.div_ceil(chunk) {
        let (first, last) = (c * chunk, ((c + 1) * chunk).min(size) - 1);
        assert_eq!(server.state.range_count(big, first, last), 1, "chunk {c}");
    }
    assert!(server.state.requests_for("empty.bin").is_empty());

    // Second run: everything is in place and trusted through the verified record.
    server.state.clear_requests();
    let report = run_ok(server.source(), dest.path(), tuning()).await.0;
    assert_eq!(server.state.file_requests(), 0);
    assert_eq!((report.files_skipped, report.bytes_transferred), (5, 0));

    // Without the record the files are hashed, and still not fetched.
    std::fs::remove_file(dest.path().join(".infergate-verified.json")).unwrap();
    let report = run_ok(server.source(), dest.path(), tuning()).await.0;
    assert_eq!(server.state.file_requests(), 0);
    assert_eq!(report.files_skipped, 5);

    // A file changed in place (same size) is replaced.
    let target = dest.path().join("model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&target).unwrap();
    bytes[1000] ^= 1;
    // Rewritten until its mtime differs from the one recorded (timestamps are coarse).
    let mtime = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let recorded = mtime(&target);
    wait_until("a new mtime", Duration::from_secs(5), || {
        std::fs::write(&target, &bytes).unwrap();
        mtime(&target) != recorded
    })
    .await;
    let report = run_ok(server.source(), dest.path(), tuning()).await.0;
    assert_eq!(report.files_fetched, 1);
    assert_dest_matches(dest.path(), &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_stay_within_max_connections() {
    let files = model_files(&[
        ("a.bin", MIB),
        ("b.bin", MIB),
        ("c.bin", MIB),
        ("d.bin", MIB),
        ("e.bin", MIB),
    ]);
    let server = TestServer::start(files.clone()).await;
    server.faults().frame_delay = Some(Duration::from_millis(2));
    for (max_connections, parallel_ranges) in [(6, 8), (2, 8), (16, 2)] {
        let dest = TempDir::new("http-conns");
        server.state.max_in_flight.store(0, Ordering::SeqCst);
        let tuning = Tuning {
            parallel_files: 3,
            parallel_ranges,
            max_connections,
            chunk_size: 128 << 10,
            ..tuning()
        };
        run_ok(server.source(), dest.path(), tuning).await;
        assert_dest_matches(dest.path(), &files);
        let cap = max_connections.min(3 * parallel_ranges) as u64;
        let max = server.state.max_in_flight.load(Ordering::SeqCst);
        assert!(
            (2..=cap).contains(&max),
            "max_connections {max_connections}, parallel_ranges {parallel_ranges}: {max} bodies in flight at once (cap {cap})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_without_range_support_is_streamed_whole() {
    let files = model();
    let server = TestServer::start(files.clone()).await;
    server.faults().no_ranges = true;
    let dest = TempDir::new("http-norange");
    let t = Tuning {
        parallel_files: 1,
        ..tuning()
    };
    let report = run_ok(server.source(), dest.path(), t).await.0;
    assert_dest_matches(dest.path(), &files);
    assert_eq!(report.retries, 0);
    for path in files.keys().filter(|p| *p != "empty.bin") {
        assert_eq!(server.state.requests_for(path).len(), 1, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_source_fails_naming_the_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dest = TempDir::new("http-unreachable");
    let progress = Arc::new(Progress::new());
    let url = format!("http://127.0.0.1:{port}/models/m");
    let err = run(
        job(Source::Http(url.clone()), dest.path(), tuning()),
        progress.clone(),
        CancelToken::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WarmupError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("{url}/manifest.json")), "{msg}");
    assert!(msg.contains("after 4 attempts"), "{msg}");
    match progress.state() {
        WarmupState::Failed { reason } => assert!(reason.contains(&url), "{reason}"),
        s => panic!("{s:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_file_fails_naming_it() {
    let files = model();
    let server = TestServer::start(files.clone()).await;
    server
        .faults()
        .not_found
        .insert("model-00002-of-00002.safetensors".into());
    let dest = TempDir::new("http-404");
    let err = run_err(server.source(), dest.path(), tuning()).await.0;
    assert!(matches!(err, WarmupError::NotFound { .. }), "{err:?}");
    assert_eq!(err.code(), "not_found");
    assert!(
        err.to_string().contains("model-00002-of-00002.safetensors"),
        "{err}"
    );
    // A 404 is not retried (ranges already in flight may each see it once), and nothing is
    // left under the final name.
    let reqs = server
        .state
        .requests_for("model-00002-of-00002.safetensors");
    let distinct: BTreeSet<_> = reqs.iter().collect();
    assert_eq!(distinct.len(), reqs.len(), "{reqs:?}");
    assert!(reqs.len() <= 4, "{reqs:?}");
    assert!(!dest
        .path()
        .join("model-00002-of-00002.safetensors")
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_resets_are_retried() {
    let files = model();
    let server = TestServer::start(files.clone()).await;
    server
        .faults()
        .status_500
        .insert("model-00001-of-00002.safetensors".into(), 3);
    server
        .faults()
        .reset
        .insert("model-00002-of-00002.safetensors".into(), 3);
    server.faults().reset.insert("config.json".into(), 1);
    let dest = TempDir::new("http-retry");
    let report = run_ok(server.source(), dest.path(), tuning()).await.0;
    assert_dest_matches(dest.path(), &files);
    assert!(report.retries >= 7, "{report:?}");
    // A reset range is continued, not started over: the retry asks for the second half only.
    let reqs = server
        .state
        .requests_for("model-00002-of-00002.safetensors");
    assert!(
        reqs.iter()
            .any(|r| matches!(r, Some((first, _)) if first % (256 * 1024) != 0)),
        "{reqs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_bytes_are_fetched_again() {
    let files = model();
    let server = TestServer::start(files.clone()).await;
    server
        .faults()
        .corrupt
        .insert("model-00001-of-00002.safetensors".into(), 1);
    let dest = TempDir::new("http-corrupt-once");
    let report = run_ok(server.source(), dest.path(), tuning()).await.0;
    assert_dest_matches(dest.path(), &files);
    assert_eq!(report.retries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_corruption_fails_and_never_exposes_the_file() {
    let files = model_files(&[("weights.safetensors", 2 * MIB)]);
    let server = TestServer::start(files.clone()).await;
    server
        .faults()
        .corrupt
        .insert("weights.safetensors".into(), u32::MAX);
    let dest = TempDir::new("http-corrupt");
    let final_path = dest.path().join("weights.safetensors");

    // Watch the final name for the whole run.
    let seen = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (seen, stop, final_path) = (seen.clone(), stop.clone(), final_path.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if final_path.exists() {
                    seen.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let t = Tuning {
        retries: 2,
        ..tuning()
    };
    let err = run_err(server.source(), dest.path(), t).await.0;
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    match &err {
        WarmupError::ChecksumMismatch {
            path,
            attempts,
            expected,
            ..
        } => {
            assert_eq!(path, "weights.safetensors");
            assert_eq!(*attempts, 3);
            assert_eq!(expected, &sha256_hex(&files["weights.safetensors"]));
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("weights.safetensors"));
    assert!(
        !seen.load(Ordering::Relaxed),
        "the corrupt file appeared under its final name"
    );
    assert!(!final_path.exists());
    assert!(!dest.path().join("weights.safetensors.partial").exists());
    // Every range of the file was asked for three times (three whole attempts).
    assert_eq!(
        server.state.requests_for("weights.safetensors").len(),
        3 * 8
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_space_is_detected_before_fetching() {
    let files = model();
    let server = TestServer::start(files).await;
    let manifest = format!(
        r#"{{"files":[{{"path":"huge.safetensors","size":{},"sha256":"{}"}}]}}"#,
        1u64 << 55,
        "0".repeat(64)
    );
    server.faults().manifest_override = Some(Bytes::from(manifest));
    let dest = TempDir::new("http-space");
    let err = run_err(server.source(), dest.path(), tuning()).await.0;
    assert!(
        matches!(err, WarmupError::InsufficientSpace { needed, .. } if needed == 1 << 55),
        "{err:?}"
    );
    assert!(err.to_string().contains(&dest.path().display().to_string()));
    assert_eq!(server.state.file_requests(), 0);
    assert!(!dest.path().join("huge.safetensors.partial").exists());
}

fn finished_chunks(state: &std::path::Path) -> BTreeSet<u64> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    v["finished"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_mid_job_keeps_partial_and_resumes() {
    let files = model_files(&[("a.safetensors", 4 * MIB), ("b.safetensors", MIB)]);
    let server = TestServer::start(files.clone()).await;
    let dest = TempDir::new("http-enospc");
    // ENOSPC for any write past 2 MiB into a.safetensors.
    let hooks = Hooks {
        before_write: Some(Arc::new(|path: &str, offset: u64, len: usize| {
            if path == "a.safetensors" && offset + len as u64 > 2 * MIB as u64 {
                Err(std::io::Error::from_raw_os_error(28))
            } else {
                Ok(())
            }
        })),
    };
    let t = Tuning {
        parallel_files: 1,
        parallel_ranges: 2,
        ..tuning()
    };
    let err = run_with_hooks(
        job(server.source(), dest.path(), t.clone()),
        Arc::new(Progress::new()),
        CancelToken::new(),
        hooks,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WarmupError::NoSpace { .. }), "{err:?}");
    assert_eq!(err.code(), "no_space");
    let msg = err.to_string();
    assert!(
        msg.contains("a.safetensors") && msg.contains("resume"),
        "{msg}"
    );
    let partial = dest.path().join("a.safetensors.partial");
    let state = dest.path().join("a.safetensors.partial.state");
    assert!(partial.exists() && state.exists());
    assert!(!dest.path().join("a.safetensors").exists());
    let finished = finished_chunks(&state);
    assert!(finished.len() >= 6, "{finished:?}");

    // The disk has room again: the next run resumes and fetches only the rest.
    let report = run_ok(server.source(), dest.path(), t).await.0;
    assert_dest_matches(dest.path(), &files);
    let chunk = 256 * 1024u64;
    for &c in &finished {
        assert_eq!(
            server
                .state
                .range_count("a.safetensors", c * chunk, (c + 1) * chunk - 1),
            1,
            "finished chunk {c} fetched again"
        );
    }
    assert_eq!(report.bytes_resumed, finished.len() as u64 * chunk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_leaves_resumable_state_and_a_second_run_finishes() {
    let files = model_files(&[("w.safetensors", 4 * MIB)]);
    let server = TestServer::start(files.clone()).await;
    server.faults().frame_delay = Some(Duration::from_millis(15));
    let dest = TempDir::new("http-cancel");
    let t = Tuning {
        parallel_ranges: 2,
        ..tuning()
    };
    let cancel = CancelToken::new();
    let progress = Arc::new(Progress::new());
    let task = tokio::spawn(run(
        job(server.source(), dest.path(), t.clone()),
        progress.clone(),
        cancel.clone(),
    ));
    let state = dest.path().join("w.safetensors.partial.state");
    let mut max_rate = 0;
    wait_until("4 finished chunks", Duration::from_secs(20), || {
        max_rate = max_rate.max(progress.snapshot().rate_bytes_per_sec);
        state.exists() && finished_chunks(&state).len() >= 4
    })
    .await;
    assert_eq!(progress.state(), WarmupState::Fetching);
    let cancelled_at = Instant::now();
    cancel.cancel();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, WarmupError::Cancelled), "{err:?}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "slow to stop"
    );
    assert!(max_rate > 0, "rate never reported");
    assert!(
        matches!(progress.state(), WarmupState::Failed { reason } if reason.contains("cancelled"))
    );
    let finished = finished_chunks(&state);
    assert!(finished.len() >= 4 && finished.len() < 16, "{finished:?}");
    assert!(!dest.path().join("w.safetensors").exists());

    server.faults().frame_delay = None;
    let report = run_ok(server.source(), dest.path(), t).await.0;
    assert_dest_matches(dest.path(), &files);
    let chunk = 256 * 1024u64;
    for c in 0..16u64 {
        let n = server
            .state
            .range_count("w.safetensors", c * chunk, (c + 1) * chunk - 1);
        if finished.contains(&c) {
            assert_eq!(n, 1, "finished chunk {c} fetched again");
        } else {
            assert!(n <= 2, "chunk {c} fetched {n} times");
        }
    }
    assert_eq!(report.bytes_resumed, finished.len() as u64 * chunk);
    assert_eq!(
        report.bytes_transferred + report.bytes_resumed,
        4 * MIB as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_on_the_same_dest_is_refused() {
    let files = model_files(&[("w.safetensors", MIB)]);
    let server = TestServer::start(files.clone()).await;
    server.faults().frame_delay = Some(Duration::from_millis(20));
    let dest = TempDir::new("http-busy");
    let first = tokio::spawn(run(
        job(server.source(), dest.path(), tuning()),
        Arc::new(Progress::new()),
        CancelToken::new(),
    ));
    wait_until(
        "the first job's first request",
        Duration::from_secs(10),
        || server.state.file_requests() > 0,
    )
    .await;
    let err = run_err(server.source(), dest.path(), tuning()).await.0;
    assert!(matches!(err, WarmupError::Busy { .. }), "{err:?}");
    first.await.unwrap().unwrap();
    assert_dest_matches(dest.path(), &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_resume_state_is_discarded() {
    let files = model_files(&[("w.bin", MIB)]);
    let server = TestServer::start(files.clone()).await;
    let dest = TempDir::new("http-stale");
    // State left by another version of the file: every chunk claimed finished.
    std::fs::write(dest.path().join("w.bin.partial"), vec![7u8; MIB]).unwrap();
    std::fs::write(
        dest.path().join("w.bin.partial.state"),
        format!(
            r#"{{"size":{MIB},"sha256":"{}","chunk_size":262144,"finished":[0,1,2,3]}}"#,
            "1".repeat(64)
        ),
    )
    .unwrap();
    let report = run_ok(server.source(), dest.path(), tuning()).await.0;
    assert_dest_matches(dest.path(), &files);
    assert_eq!(report.bytes_resumed, 0);
    assert_eq!(report.bytes_transferred, MIB as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_holds() {
    let files = model_files(&[("w.bin", 2 * MIB)]);
    let server = TestServer::start(files.clone()).await;
    let dest = TempDir::new("http-cap");
    let t = Tuning {
        bandwidth_cap: Some(4 * MIB as u64),
        ..tuning()
    };
    let started = Instant::now();
    run_ok(server.source(), dest.path(), t).await;
    let secs = started.elapsed().as_secs_f64();
    // 2 MiB at 4 MiB/s with a 0.1 s burst: at least ~0.4 s.
    assert!(secs >= 0.38, "{secs}");
    assert!(secs < 5.0, "{secs}");
    assert_dest_matches(dest.path(), &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preread_reads_every_byte() {
    let files = model();
    let server = TestServer::start(files.clone()).await;
    let dest = TempDir::new("http-preread");
    let t = Tuning {
        preread: true,
        ..tuning()
    };
    let (report, progress) = run_ok(server.source(), dest.path(), t).await;
    assert_eq!(report.preread_bytes, report.bytes_total);
    // Just read: all of it in the page cache (where the file system can tell).
    match report.resident_bytes {
        Some(resident) => assert_eq!(resident, report.bytes_total),
        None => eprintln!("RWF_NOWAIT reads not supported here; residency not reported"),
    }
    let snap = serde_json::to_value(progress.snapshot()).unwrap();
    assert_eq!(
        snap.get("resident_bytes").and_then(|v| v.as_u64()),
        report.resident_bytes
    );
    // Without a pre-read, nothing is claimed.
    let dest = TempDir::new("http-no-preread");
    let (report, progress) = run_ok(server.source(), dest.path(), tuning()).await;
    assert_eq!(report.resident_bytes, None);
    assert!(serde_json::to_value(progress.snapshot())
        .unwrap()
        .get("resident_bytes")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_manifest_entry_is_named() {
    let server = TestServer::start(model()).await;
    server.faults().manifest_override = Some(Bytes::from(format!(
        r#"{{"files":[{{"path":"ok.bin","size":1,"sha256":"{0}"}},{{"path":"../escape.bin","size":1,"sha256":"{0}"}}]}}"#,
        "a".repeat(64)
    )));
    let dest = TempDir::new("http-badmanifest");
    let err = run_err(server.source(), dest.path(), tuning()).await.0;
    let msg = err.to_string();
    assert!(
        matches!(err, WarmupError::InvalidManifest { .. }),
        "{err:?}"
    );
    assert!(
        msg.contains("\"../escape.bin\"") && msg.contains("entry 1"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{}/manifest.json", server.url())),
        "{msg}"
    );
    assert_eq!(server.state.file_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_source_is_verified_against_the_ca_file() {
    let files = model();
    let (ca_pem, tls) = test_tls();
    let server = TestServer::start_tls(files.clone(), tls).await;
    assert!(server.url().starts_with("https://"));
    let dir = TempDir::new("https");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let dest = dir.path().join("dest");
    let mut with_ca = job(server.source(), &dest, tuning());
    with_ca.ca_file = Some(ca);
    let report = run(with_ca, Arc::new(Progress::new()), CancelToken::new())
        .await
        .unwrap();
    assert_dest_matches(&dest, &files);
    assert_eq!(report.files_fetched, 5);
    assert!(server.state.file_requests() > 0);

    // Against the system's roots the test CA is unknown: the job fails at once (a certificate
    // does not verify on a retry either), naming the URL and the reason; nothing is served.
    server.state.clear_requests();
    let started = Instant::now();
    let strict = Tuning {
        retry_backoff_ms: 1000,
        ..tuning()
    };
    let err = run_err(server.source(), &dir.path().join("dest2"), strict)
        .await
        .0;
    let msg = err.to_string();
    assert_eq!(err.code(), "unreachable", "{msg}");
    assert!(
        msg.contains(&server.url()) && msg.contains("certificate"),
        "{msg}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "retried: {msg}");
    assert!(server.state.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_tuning_is_rejected() {
    let dest = TempDir::new("http-reject");
    let err = run_err(
        Source::Http("http://127.0.0.1:9/m".into()),
        dest.path(),
        Tuning {
            parallel_ranges: 0,
            ..tuning()
        },
    )
    .await
    .0;
    assert_eq!(err.code(), "invalid_job");
}
