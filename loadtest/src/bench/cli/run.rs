//! `infergate-bench run`: a plan from the arguments, the steps run, the results written.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use infergate_wire::time::rfc3339;
use tokio::sync::watch;

use crate::bench::client::{http_client, Ctx, Live, Target};
use crate::bench::output::{render_summary, write_csv, Config, Document, Step, SCHEMA_VERSION};
use crate::bench::report;
use crate::bench::runner::{run_steps, Load, Plan, Stop};
use crate::bench::workload::{Dataset, Workload};

use super::args::RunArgs;
use super::endpoint::endpoint;
use super::redact::{redact, redact_header};

pub fn run(a: RunArgs, argv: &[String]) -> Result<ExitCode, String> {
    let uri = endpoint(&a.url, a.api)?;
    let target = Target::new(uri.clone(), a.api_key.as_deref(), &a.headers)?;
    let dataset = a.dataset.as_deref().map(Dataset::load).transpose()?;
    // A random seed stays below 2^53 so that JSON readers in any language keep it exact.
    let seed = a.seed.unwrap_or_else(|| rand::random::<u64>() >> 11);
    let ignore_eos = !a.no_ignore_eos;
    let input = a.input_tokens;
    let has_dataset = dataset.is_some();
    let workload = Workload::new(
        a.api,
        a.model.clone(),
        input,
        a.output_tokens,
        dataset,
        ignore_eos,
        seed,
    );
    let (loads, sweep): (Vec<Load>, Option<&str>) = if let Some(rate) = a.rate {
        (
            vec![Load::Rate {
                rate,
                arrival: a.arrival,
            }],
            None,
        )
    } else if !a.rates.is_empty() {
        (
            a.rates
                .iter()
                .map(|&rate| Load::Rate {
                    rate,
                    arrival: a.arrival,
                })
                .collect(),
            Some("rate"),
        )
    } else if !a.concurrencies.is_empty() {
        (
            a.concurrencies
                .iter()
                .map(|&c| Load::Concurrency { concurrency: c })
                .collect(),
            Some("concurrency"),
        )
    } else {
        (
            vec![Load::Concurrency {
                concurrency: a.concurrency.unwrap_or(1),
            }],
            None,
        )
    };
    let stop = Stop {
        requests: match (a.requests, a.duration) {
            (None, None) => Some(100),
            (r, _) => r,
        },
        duration: a.duration,
    };
    let threads = a.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        |t| t as usize,
    );
    let config = Config {
        url: a.url.clone(),
        endpoint: uri.to_string(),
        api: a.api,
        model: a.model.clone(),
        sweep: sweep.map(str::to_owned),
        loads: loads.clone(),
        requests: stop.requests,
        duration_s: stop.duration.map(|d| d.as_secs_f64()),
        warmup: a.warmup,
        connections: a.connections,
        max_concurrency: a.max_concurrency,
        input_tokens: (!has_dataset).then_some(input),
        output_tokens: workload.output,
        dataset: a.dataset.as_ref().map(|p| p.display().to_string()),
        ignore_eos,
        headers: a
            .headers
            .iter()
            .map(|h| {
                redact_header(&format!(
                    "{}: {}",
                    h.name,
                    String::from_utf8_lossy(h.value.as_bytes())
                ))
            })
            .collect(),
        api_key: a.api_key.is_some(),
        timeout_s: a.timeout.as_secs_f64(),
        seed,
        threads,
        slo: a.slo.map(Into::into),
    };
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let plan = Plan {
        workload: Arc::new(workload),
        stop,
        warmup: a.warmup,
        connections: a.connections,
        max_concurrency: a.max_concurrency,
        slo: a.slo,
        progress: !a.no_progress,
        tty: std::io::stderr().is_terminal(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let steps_total = loads.len();
    let (results, interrupted) = runtime.block_on(async {
        let ctx = Arc::new(Ctx {
            client: http_client(),
            target,
            timeout: a.timeout,
            live: Arc::new(Live::default()),
        });
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let cancel_tx = Arc::new(cancel_tx);
        let watcher = {
            let cancel_tx = cancel_tx.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!(
                        "\ninfergate-bench: interrupted; waiting for the requests in flight \
                         (Ctrl-C again to quit at once)"
                    );
                    let _ = cancel_tx.send(true);
                    if tokio::signal::ctrl_c().await.is_ok() {
                        std::process::exit(130);
                    }
                }
            })
        };
        let results = run_steps(ctx, &plan, &loads, cancel_rx.clone(), |i, step| {
            let title = if steps_total > 1 {
                format!("step {}/{steps_total}: {}", i + 1, step.load.describe())
            } else {
                step.load.describe()
            };
            println!("{}", render_summary(&title, &step.summary));
        })
        .await;
        watcher.abort();
        let interrupted = *cancel_rx.borrow();
        (results, interrupted)
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: "infergate-bench".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        command_line: redact(argv),
        started_at: rfc3339(started),
        label: a.label.clone(),
        config,
        steps: results
            .into_iter()
            .enumerate()
            .map(|(i, s)| Step {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                load: s.load,
                summary: s.summary,
                records: s.records,
            })
            .collect(),
    };
    if let Some(p) = &a.out {
        doc.write_json(p)?;
        eprintln!("results written to {}", p.display());
    }
    if let Some(p) = &a.csv {
        write_csv(&doc, p)?;
        eprintln!("records written to {}", p.display());
    }
    if let Some(p) = &a.report {
        report::write(&doc, p)?;
        eprintln!("report written to {}", p.display());
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}
