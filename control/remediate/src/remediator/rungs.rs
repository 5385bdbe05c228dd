//! Running one rung of the ladder: restart the pod, drain (and ask for a GPU reset), ask for a reboot.

use infergate_gpu::health::Action;
use tokio::time::Instant;

use super::episode::{with_renewal, Episode};
use super::verdicts::Verdicts;
use super::Remediator;
use crate::outcome::{Outcome, Rung, Step};
use crate::types::{Cause, Cordon, EventKind, HostRequest};

impl Remediator {
    /// Does the work of the episode's rung.
    pub(super) async fn run_rung(
        &mut self,
        ep: &mut Episode,
        v: &Verdicts,
        now: Instant,
        out: &mut Outcome,
    ) {
        ep.last_attempt = now;
        let cause = &v.cause;
        match ep.rung {
            Rung::RestartPod => {
                let result = self.actions.restart_pods(&cause.gpus, cause).await;
                if let Some(pods) = self.done("restart pods", result, out) {
                    let message = if pods.is_empty() {
                        format!(
                            "no model-server pod found on GPUs [{}] (annotation {})",
                            cause.gpu_list(),
                            self.config.gpu_annotation
                        )
                    } else {
                        format!(
                            "deleted {} to restart it: {}",
                            pods.join(", "),
                            cause.reason
                        )
                    };
                    out.steps.push(Step::RestartPods { pods });
                    self.event(EventKind::Warning, "PodRestarted", "RestartPod", message)
                        .await;
                    ep.rung_done = true;
                }
            }
            Rung::Drain | Rung::Reboot => {
                if !self.drain(ep, cause, out).await {
                    return;
                }
                let request = if ep.rung == Rung::Reboot {
                    Some(HostRequest::Reboot)
                } else if self.config.reset_gpu_on_drain || v.action >= Action::ResetGpu {
                    Some(HostRequest::ResetGpu {
                        gpus: cause.gpus.clone(),
                    })
                } else {
                    None
                };
                if let Some(request) = request {
                    let result = self.actions.request_host_action(&request, cause).await;
                    if self.done("request host action", result, out).is_none() {
                        return;
                    }
                    self.request_pending = true;
                    let (reason, action) = match request {
                        HostRequest::Reboot => ("RebootRequested", "RequestReboot"),
                        HostRequest::ResetGpu { .. } => ("GpuResetRequested", "RequestGpuReset"),
                    };
                    self.event(
                        EventKind::Warning,
                        reason,
                        action,
                        format!("requested {}: {}", request.annotation_value(), cause.reason),
                    )
                    .await;
                    out.steps.push(Step::Request(request));
                }
                ep.rung_done = true;
            }
        }
    }

    /// Cordon, then evict (renewing the lease meanwhile). `true` when the node is empty.
    pub(super) async fn drain(
        &mut self,
        ep: &mut Episode,
        cause: &Cause,
        out: &mut Outcome,
    ) -> bool {
        let result = self.actions.cordon(cause).await;
        match self.done("cordon", result, out) {
            Some(Cordon::Cordoned) => {
                self.cordoned_by_us = true;
                out.steps.push(Step::Cordon);
                self.event(
                    EventKind::Warning,
                    "NodeCordoned",
                    "Cordon",
                    format!("cordoned for GPUs [{}]: {}", cause.gpu_list(), cause.reason),
                )
                .await;
            }
            Some(Cordon::AlreadyOurs) => self.cordoned_by_us = true,
            Some(Cordon::AlreadyCordoned) => {}
            None => return false,
        }
        let every = self.config.lease_duration.get() / 3;
        let lock = self.lock.clone();
        let evict = self.actions.evict_pods(cause);
        let result = with_renewal(
            lock.as_ref(),
            ep.lease.as_mut(),
            &mut ep.lease_renewed,
            every,
            evict,
        )
        .await;
        let Some(report) = self.done("evict pods", result, out) else {
            return false;
        };
        let complete = report.complete();
        let (kind, reason, message) = if complete {
            (
                EventKind::Warning,
                "PodsEvicted",
                format!(
                    "evicted {} model-server pod(s): {}",
                    report.evicted.len(),
                    report.evicted.join(", ")
                ),
            )
        } else {
            let failed: Vec<String> = report
                .failed
                .iter()
                .map(|(p, e)| format!("{p} ({e})"))
                .collect();
            (
                EventKind::Warning,
                "EvictionIncomplete",
                format!(
                    "evicted [{}]; still refused by a PodDisruptionBudget: [{}]; failed: [{}]; retrying in {:?}",
                    report.evicted.join(", "),
                    report.blocked.join(", "),
                    failed.join(", "),
                    self.config.ladder.retry_interval.get()
                ),
            )
        };
        out.steps.push(Step::Evict(report));
        self.event(kind, reason, "Evict", message).await;
        complete
    }
}
