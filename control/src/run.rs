//! The control loop: read the GPUs, apply the policy, publish the health feed, remediate.

use std::sync::Arc;
use std::time::Duration;

use infergate_gpu::policy::Policy;
use infergate_gpu::probe::{unix_ms, GpuProbe};
use infergate_remediate::{GpuVerdict as RemedyVerdict, Remediator};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use tokio::sync::Notify;

use crate::feed::Feed;

/// Metrics of the control loop.
pub struct LoopMetrics {
    gpu_state: IntGaugeVec,
    findings: IntCounterVec,
    reads: IntCounterVec,
}

impl LoopMetrics {
    pub fn new(r: &Registry) -> prometheus::Result<Self> {
        let gpu_state = IntGaugeVec::new(
            Opts::new(
                "infergate_control_gpu_state",
                "GPU state: 0 healthy, 1 degraded, 2 unhealthy.",
            ),
            &["node", "gpu", "uuid"],
        )?;
        let findings = IntCounterVec::new(
            Opts::new(
                "infergate_control_findings_total",
                "New findings by code (an XID, a threshold, a probe error).",
            ),
            &["node", "gpu", "code"],
        )?;
        let reads = IntCounterVec::new(
            Opts::new("infergate_control_reads_total", "GPU readings by result."),
            &["result"],
        )?;
        r.register(Box::new(gpu_state.clone()))?;
        r.register(Box::new(findings.clone()))?;
        r.register(Box::new(reads.clone()))?;
        Ok(LoopMetrics {
            gpu_state,
            findings,
            reads,
        })
    }
}

/// Runs the loop until the task is aborted.
pub async fn run(
    probe: Arc<dyn GpuProbe>,
    mut policy: Policy,
    feed: Feed,
    mut remediator: Option<Remediator>,
    interval: Duration,
    metrics: LoopMetrics,
) {
    let node = feed.current().node;
    // XID events wake the loop at once instead of waiting for the next interval.
    let wake = Arc::new(Notify::new());
    if let Some(rx) = probe.xid_events() {
        let wake = wake.clone();
        std::thread::Builder::new()
            .name("xid-forward".into())
            .spawn(move || {
                // The events themselves also come with the next reading; this only wakes it.
                while rx.recv().is_ok() {
                    wake.notify_one();
                }
            })
            .ok();
    }
    loop {
        let p = probe.clone();
        let read = tokio::task::spawn_blocking(move || p.read()).await;
        let read_at = unix_ms();
        let verdicts = match read {
            Ok(Ok(reading)) => {
                metrics.reads.with_label_values(&["ok"]).inc();
                policy.evaluate(&reading)
            }
            Ok(Err(e)) => {
                metrics.reads.with_label_values(&["error"]).inc();
                tracing::warn!(error = %e, "cannot read the GPUs");
                policy.evaluate_failure(&e, read_at)
            }
            Err(e) => {
                metrics.reads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "GPU read task failed");
                Vec::new()
            }
        };
        for v in &verdicts {
            let gpu = v.index.to_string();
            let level = match v.state {
                infergate_gpu::health::Severity::Healthy => 0,
                infergate_gpu::health::Severity::Degraded => 1,
                infergate_gpu::health::Severity::Unhealthy => 2,
            };
            metrics
                .gpu_state
                .with_label_values(&[&node, &gpu, &v.uuid])
                .set(level);
            for code in &v.new_findings {
                metrics
                    .findings
                    .with_label_values(&[&node, &gpu, code])
                    .inc();
                tracing::warn!(gpu = v.index, uuid = %v.uuid, code = %code, state = ?v.state, "GPU finding");
            }
        }
        feed.publish_gpus(
            verdicts.iter().map(|v| v.to_gpu_state(read_at)).collect(),
            read_at,
        );
        if let Some(r) = remediator.as_mut() {
            let input: Vec<RemedyVerdict> = verdicts.iter().map(RemedyVerdict::from).collect();
            let outcome = r.observe(&input).await;
            tracing::debug!(?outcome, "remediation");
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
    }
}
