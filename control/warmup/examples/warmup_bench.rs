//! A small driver for `benches/warmup.sh`: writes a manifest, or runs one warmup and prints
//! its report (JSON) and, on stderr, the effective `max_connections` (`max_connections N`,
//! before the run) and peak RSS.
//!
//! ```text
//! warmup_bench manifest DIR
//! warmup_bench fetch --source URL|DIR --dest DIR [--parallel-files N] [--parallel-ranges N]
//!                    [--max-connections N] [--chunk-size BYTES] [--bandwidth-cap BYTES_PER_SEC] [--preread] [--progress]
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use infergate_warmup::{run, write_manifest, CancelToken, Progress, Source, Tuning, WarmupJob};

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn usage() -> ExitCode {
    eprintln!("usage: warmup_bench manifest DIR | warmup_bench fetch --source URL|DIR --dest DIR [--parallel-files N] [--parallel-ranges N] [--max-connections N] [--chunk-size BYTES] [--bandwidth-cap BPS] [--preread] [--progress]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("manifest") if args.len() == 2 => {
            match write_manifest(std::path::Path::new(&args[1])) {
                Ok(m) => {
                    println!("{} files, {} bytes", m.files.len(), m.total_size());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("fetch") => fetch(&args[1..]),
        _ => usage(),
    }
}

fn fetch(args: &[String]) -> ExitCode {
    let mut source = None;
    let mut dest = None;
    let mut tuning = Tuning::default();
    let mut show_progress = false;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        let ok = match flag.as_str() {
            "--source" => {
                source = value().parse::<Source>().ok();
                true
            }
            "--dest" => {
                dest = Some(value());
                true
            }
            "--parallel-files" => value().parse().map(|v| tuning.parallel_files = v).is_ok(),
            "--parallel-ranges" => value().parse().map(|v| tuning.parallel_ranges = v).is_ok(),
            "--max-connections" => value().parse().map(|v| tuning.max_connections = v).is_ok(),
            "--chunk-size" => value().parse().map(|v| tuning.chunk_size = v).is_ok(),
            "--bandwidth-cap" => value()
                .parse()
                .map(|v| tuning.bandwidth_cap = Some(v))
                .is_ok(),
            "--preread" => {
                tuning.preread = true;
                true
            }
            "--progress" => {
                show_progress = true;
                true
            }
            _ => false,
        };
        if !ok {
            return usage();
        }
    }
    let (Some(source), Some(dest)) = (source, dest) else {
        return usage();
    };
    // The connection budget the run uses (the default follows the CPUs this process may use,
    // cgroup quota included): the script labels its rows with it.
    eprintln!("max_connections {}", tuning.max_connections);
    let job = WarmupJob {
        model: "bench".into(),
        version: "1".into(),
        source,
        dest: dest.into(),
        ca_file: None,
        tuning,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let progress = Arc::new(Progress::new());
    let result = runtime.block_on(async {
        if show_progress {
            let p = progress.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Ok(line) = serde_json::to_string(&p.snapshot()) {
                        eprintln!("{line}");
                    }
                }
            });
        }
        run(job, progress.clone(), CancelToken::new()).await
    });
    match result {
        Ok(report) => {
            match serde_json::to_string(&report) {
                Ok(json) => println!("{json}"),
                Err(e) => eprintln!("error: {e}"),
            }
            eprintln!("peak_rss_kib {}", vm_hwm_kib().unwrap_or(0));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
