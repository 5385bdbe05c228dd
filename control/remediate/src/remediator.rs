//! [`Remediator`]: turns this node's GPU verdicts into actions, under the safety rules.
//!
//! - **Marks first.** The `GpuHealthy` condition and the taint follow the verdicts at once:
//!   they are cheap, reversible, and what schedulers and gateways read.
//! - **Disruptive steps are gated.** Restarting a pod, draining, and asking for a reset or a
//!   reboot start only when the fault has lasted `breaker.settle_time`, the node is out of its
//!   `cooldown`, the fleet breaker is closed, and one of the K remediation leases is ours.
//! - **Ladder.** restart pod → drain (+ GPU reset request) → reboot request. The policy's
//!   action picks the first rung; a rung whose timeout passes with the GPU still unhealthy
//!   gives way to the next; past the top the remediation is exhausted (a human is needed).
//! - **Recovery** (no GPU unhealthy, no action asked): condition `True`, taint removed, host
//!   request withdrawn, uncordon if remediation cordoned, lease released, cooldown starts.
//!
//! Every action is recorded as an event. All timing uses tokio's clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use infergate_gpu::health::{Action, Severity};
use tokio::time::Instant;

use crate::actions::{ActionError, LockTicket, NodeActions, RemediationLock};
use crate::config::RemediationConfig;
use crate::dry_run::DryRun;
use crate::kube::KubeActions;
use crate::local::{LocalActions, LocalLeases};
use crate::metrics::RemediationMetrics;
use crate::outcome::{Outcome, Rung, State, Step, Suppressed};
use crate::types::{
    join_gpus, Cause, Cordon, EventKind, FleetHealth, GpuCondition, GpuVerdict, HostRequest,
    NodeEvent, NodeTaint,
};

/// The remediation of one node. Call [`observe`](Remediator::observe) with every new set of
/// verdicts (at least every third of `lease_duration` while remediating); run it in a task of
/// its own, since a drain waits up to `eviction.deadline`.
pub struct Remediator {
    config: RemediationConfig,
    node: String,
    actions: Arc<dyn NodeActions>,
    lock: Arc<dyn RemediationLock>,
    metrics: RemediationMetrics,

    restored: bool,
    /// Found at start: a reboot was requested and has happened (if the GPUs are still
    /// unhealthy, it did not help, and the ladder is spent).
    rebooted: bool,
    /// Last condition written: (healthy, unhealthy GPUs).
    condition: Option<(bool, Vec<u32>)>,
    /// Condition status on the node, to know when it transitions.
    condition_status: Option<bool>,
    /// Taint value on the node (`Some(None)`: known to be absent).
    taint: Option<Option<String>>,
    fault_since: Option<Instant>,
    episode: Option<Episode>,
    cooldown_until: Option<Instant>,
    cordoned_by_us: bool,
    request_pending: bool,
    breaker_open: bool,
    /// The last read of the fleet (or its error), reused for `recheck_interval`.
    fleet: Option<(Instant, Result<Option<FleetHealth>, String>)>,
    /// No lease was free: do not ask again before this.
    lease_retry_at: Option<Instant>,
    /// The last suppression reported by an event, so that each is reported once.
    last_suppressed: Option<std::mem::Discriminant<Suppressed>>,
}

#[derive(Debug)]
struct Episode {
    rung: Rung,
    rung_started: Instant,
    /// The rung's work is complete (an eviction held by a PDB leaves it incomplete).
    rung_done: bool,
    last_attempt: Instant,
    lease: Option<LockTicket>,
    lease_renewed: Instant,
    exhausted: bool,
    started: Instant,
}

/// A summary of one set of verdicts.
struct Verdicts {
    unhealthy: Vec<u32>,
    action: Action,
    cause: Cause,
    message: String,
}

impl Verdicts {
    fn new(verdicts: &[GpuVerdict]) -> Self {
        let mut unhealthy = Vec::new();
        let mut gpus = Vec::new();
        let mut action = Action::None;
        let mut codes: Vec<String> = Vec::new();
        let mut reasons = Vec::new();
        let mut messages = Vec::new();
        for v in verdicts {
            let bad = v.severity == Severity::Unhealthy;
            if bad {
                unhealthy.push(v.gpu);
            }
            if bad || v.action > Action::None {
                gpus.push(v.gpu);
                action = action.max(v.action);
                for c in &v.codes {
                    if !codes.contains(c) {
                        codes.push(c.clone());
                    }
                }
                reasons.extend(v.reasons.iter().map(|r| format!("GPU {}: {r}", v.gpu)));
                if bad {
                    messages.push(format!("GPU {}: {}", v.gpu, v.reasons.join("; ")));
                }
            }
        }
        unhealthy.sort_unstable();
        unhealthy.dedup();
        gpus.sort_unstable();
        gpus.dedup();
        let message = if unhealthy.is_empty() {
            "all GPUs healthy".to_owned()
        } else {
            messages.join("; ")
        };
        Verdicts {
            unhealthy,
            action,
            cause: Cause {
                gpus,
                code: codes.join(","),
                reason: reasons.join("; "),
            },
            message,
        }
    }

    fn recovered(&self) -> bool {
        self.unhealthy.is_empty() && self.action == Action::None
    }
}

/// The taint value: GPU indices joined by `-` (a label value: at most 63 characters).
fn taint_value(gpus: &[u32]) -> String {
    let value = join_gpus(gpus, "-");
    if value.len() > 63 {
        "many".into()
    } else {
        value
    }
}

impl Remediator {
    /// From any implementations (fakes in tests).
    pub fn new(
        config: RemediationConfig,
        node: impl Into<String>,
        actions: Arc<dyn NodeActions>,
        lock: Arc<dyn RemediationLock>,
    ) -> Self {
        Remediator {
            config,
            node: node.into(),
            actions,
            lock,
            metrics: RemediationMetrics::default(),
            restored: false,
            rebooted: false,
            condition: None,
            condition_status: None,
            taint: None,
            fault_since: None,
            episode: None,
            cooldown_until: None,
            cordoned_by_us: false,
            request_pending: false,
            breaker_open: false,
            fleet: None,
            lease_retry_at: None,
            last_suppressed: None,
        }
    }

    /// Through the Kubernetes API (leases in `config.namespace`), wrapped in [`DryRun`] when
    /// `config.dry_run`.
    pub fn kubernetes(config: RemediationConfig, kube: KubeActions) -> Self {
        let node = kube.node().to_owned();
        if config.dry_run {
            let a = Arc::new(DryRun::new(kube));
            Self::new(config, node, a.clone(), a)
        } else {
            let a = Arc::new(kube);
            Self::new(config, node, a.clone(), a)
        }
    }

    /// Without a cluster: [`LocalActions`] with `config.hook`, in-process leases, wrapped in
    /// [`DryRun`] when `config.dry_run`.
    pub fn local(config: RemediationConfig, node: impl Into<String>) -> Self {
        let node = node.into();
        let actions = LocalActions::new(node.clone(), config.hook.clone());
        let lock = LocalLeases::new(config.max_concurrent_nodes, config.lease_duration.get())
            .lock_for(node.clone());
        if config.dry_run {
            Self::new(
                config,
                node,
                Arc::new(DryRun::new(actions)),
                Arc::new(DryRun::new(lock)),
            )
        } else {
            Self::new(config, node, Arc::new(actions), Arc::new(lock))
        }
    }

    /// Counters to export.
    pub fn metrics(&self) -> RemediationMetrics {
        self.metrics.clone()
    }

    /// Where the node stands.
    pub fn state(&self) -> State {
        match &self.episode {
            Some(e) if e.exhausted => State::Exhausted,
            Some(e) => State::Remediating(e.rung),
            None if self.fault_since.is_some() => State::Faulty,
            None => State::Healthy,
        }
    }

    /// Takes one set of verdicts for this node's GPUs (a GPU left out counts as healthy) and
    /// does what the rules allow. Failed actions are in the outcome and retried next time.
    pub async fn observe(&mut self, verdicts: &[GpuVerdict]) -> Outcome {
        let now = Instant::now();
        let mut out = Outcome::default();
        if !self.restored {
            self.restore(now, &mut out).await;
        }
        let v = Verdicts::new(verdicts);
        self.mark(&v, &mut out).await;
        if v.recovered() {
            self.fault_since = None;
            self.recover(now, &mut out).await;
        } else {
            let since = *self.fault_since.get_or_insert(now);
            match self.episode.take() {
                Some(ep) => self.continue_episode(ep, &v, now, &mut out).await,
                None => {
                    if let Some(rung) = Rung::for_action(v.action) {
                        self.start(rung, &v, since, now, &mut out).await;
                    }
                }
            }
        }
        out.state = self.state();
        out
    }

    // === start-up ===

    async fn restore(&mut self, now: Instant, out: &mut Outcome) {
        match self.actions.node_state().await {
            Ok(state) => {
                self.restored = true;
                self.cordoned_by_us = state.cordoned_by_us;
                self.request_pending = state.requested_action.is_some();
                self.rebooted = state.rebooted_since_request();
                self.condition_status = state.condition_healthy;
                self.taint = Some(state.taint_value);
                if let Some(at) = state.requested_at {
                    let ago = SystemTime::now().duration_since(at).unwrap_or_default();
                    let cooldown = self.config.cooldown.get();
                    if ago < cooldown {
                        self.cooldown_until = Some(now + (cooldown - ago));
                    }
                }
            }
            Err(e) => out.errors.push(format!("read node state: {e}")),
        }
    }

    // === condition and taint ===

    async fn mark(&mut self, v: &Verdicts, out: &mut Outcome) {
        let healthy = v.unhealthy.is_empty();
        let key = (healthy, v.unhealthy.clone());
        if self.condition.as_ref() != Some(&key) {
            let transition = self.condition_status != Some(healthy);
            let condition = GpuCondition {
                healthy,
                reason: if healthy {
                    "GpusHealthy"
                } else {
                    "GpuUnhealthy"
                }
                .into(),
                message: v.message.clone(),
                transition,
            };
            let result = self.actions.set_condition(&condition, &v.cause).await;
            if self.done("set condition", result, out).is_some() {
                self.condition = Some(key);
                self.condition_status = Some(healthy);
                out.steps.push(Step::SetCondition { healthy });
                if transition || !healthy {
                    let (kind, what) = if healthy {
                        (EventKind::Normal, "GPU condition True".to_owned())
                    } else {
                        (
                            EventKind::Warning,
                            format!("GPU condition False: {}", v.message),
                        )
                    };
                    self.event(kind, &condition.reason, "SetCondition", what)
                        .await;
                }
            }
        }

        let desired = (!healthy).then(|| taint_value(&v.unhealthy));
        if self.taint.as_ref() != Some(&desired) {
            let result = match &desired {
                Some(value) => {
                    let taint = NodeTaint {
                        key: self.config.taint_key.clone(),
                        value: value.clone(),
                        effect: self.config.taint_effect,
                    };
                    self.actions.add_taint(&taint, &v.cause).await
                }
                None => {
                    self.actions
                        .remove_taint(&self.config.taint_key, &v.cause)
                        .await
                }
            };
            if let Some(changed) = self.done("taint", result, out) {
                self.taint = Some(desired.clone());
                if changed {
                    let (step, reason, message) = match desired {
                        Some(value) => (
                            Step::AddTaint {
                                value: value.clone(),
                            },
                            "GpuTaintAdded",
                            format!(
                                "tainted {}={value}:{}",
                                self.config.taint_key,
                                self.config.taint_effect.as_str()
                            ),
                        ),
                        None => (
                            Step::RemoveTaint,
                            "GpuTaintRemoved",
                            format!("removed taint {}", self.config.taint_key),
                        ),
                    };
                    out.steps.push(step);
                    self.event(EventKind::Normal, reason, "Taint", message)
                        .await;
                }
            }
        }
    }

    // === the ladder ===

    async fn start(
        &mut self,
        rung: Rung,
        v: &Verdicts,
        since: Instant,
        now: Instant,
        out: &mut Outcome,
    ) {
        if let Some(until) = self.cooldown_until.filter(|u| *u > now) {
            self.metrics.suppressed_cooldown();
            return self
                .suppress(
                    Suppressed::Cooldown {
                        remaining: until - now,
                    },
                    out,
                )
                .await;
        }
        let settle = self.config.breaker.settle_time.get();
        if now.duration_since(since) < settle {
            out.suppressed = Some(Suppressed::Settling {
                remaining: settle - now.duration_since(since),
            });
            return;
        }
        if self.rebooted {
            // A reboot was asked for before this process started, it happened, and the GPUs
            // are still unhealthy: the reboot did not help, the ladder is spent. (A reboot
            // still pending leaves the cooldown, restored from its request time, in force.)
            self.rebooted = false;
            self.exhaust(
                Episode::new(Rung::Reboot, now, None),
                "still unhealthy after the requested reboot",
            )
            .await;
            return;
        }
        if !self.breaker_allows(now, out).await {
            return;
        }
        let Some(ticket) = self.acquire(now, out).await else {
            return;
        };
        self.last_suppressed = None;
        self.metrics.episode_started();
        out.steps.push(Step::AcquireLease {
            slot: ticket.slot.clone(),
        });
        self.event(
            EventKind::Warning,
            "RemediationStarted",
            "AcquireLease",
            format!(
                "remediating GPUs [{}] from rung {} (lease {}): {}",
                v.cause.gpu_list(),
                rung.as_str(),
                ticket.slot,
                v.cause.reason
            ),
        )
        .await;
        let mut ep = Episode::new(rung, now, Some(ticket));
        self.run_rung(&mut ep, v, now, out).await;
        self.episode = Some(ep);
    }

    async fn continue_episode(
        &mut self,
        mut ep: Episode,
        v: &Verdicts,
        now: Instant,
        out: &mut Outcome,
    ) {
        if ep.exhausted {
            self.episode = Some(ep);
            return;
        }
        if !self.hold_lease(&mut ep, now, out).await {
            self.episode = Some(ep);
            return;
        }
        // What is due: a higher rung the policy now asks for, the next rung after a timeout,
        // or a retry of incomplete work.
        let asked = Rung::for_action(v.action).filter(|r| *r > ep.rung);
        let timed_out = now.duration_since(ep.rung_started) >= ep.rung.timeout(&self.config.ladder);
        let retry = !ep.rung_done
            && now.duration_since(ep.last_attempt) >= self.config.ladder.retry_interval.get();
        let due = match (asked, timed_out) {
            (Some(r), _) => Some(Due::Escalate(r)),
            (None, true) => Some(ep.rung.next().map_or(Due::Exhaust, Due::Escalate)),
            (None, false) if retry => Some(Due::Retry),
            (None, false) => None,
        };
        let due = match due {
            Some(Due::Exhaust) => {
                let why = format!(
                    "GPUs [{}] still unhealthy {:?} after the {} rung",
                    v.cause.gpu_list(),
                    now.duration_since(ep.rung_started),
                    ep.rung.as_str()
                );
                self.exhaust(ep, &why).await;
                return;
            }
            Some(due) if self.breaker_allows(now, out).await => Some(due),
            _ => None,
        };
        match due {
            Some(Due::Escalate(next)) => {
                let from = ep.rung;
                ep.rung = next;
                ep.rung_started = now;
                ep.rung_done = false;
                out.steps.push(Step::Escalate { from, to: next });
                self.event(
                    EventKind::Warning,
                    "RemediationEscalated",
                    "Escalate",
                    format!(
                        "{} → {}: GPUs [{}] still unhealthy: {}",
                        from.as_str(),
                        next.as_str(),
                        v.cause.gpu_list(),
                        v.cause.reason
                    ),
                )
                .await;
                self.run_rung(&mut ep, v, now, out).await;
            }
            Some(Due::Retry) => self.run_rung(&mut ep, v, now, out).await,
            Some(Due::Exhaust) | None => {}
        }
        self.episode = Some(ep);
    }

    /// Renews the lease when due, or takes one again if it was lost. `false`: none held.
    async fn hold_lease(&mut self, ep: &mut Episode, now: Instant, out: &mut Outcome) -> bool {
        let every = self.config.lease_duration.get() / 3;
        if let Some(ticket) = ep.lease.as_mut() {
            if now.duration_since(ep.lease_renewed) < every {
                return true;
            }
            match self.lock.renew(ticket).await {
                Ok(true) => {
                    ep.lease_renewed = now;
                    return true;
                }
                Ok(false) => {
                    tracing::warn!(node = %self.node, lease = %ticket.slot, "remediation lease lost");
                    ep.lease = None;
                }
                Err(e) => {
                    // Still ours until it expires; try again next time.
                    out.errors.push(format!("renew lease: {e}"));
                    return true;
                }
            }
        }
        match self.acquire(now, out).await {
            Some(ticket) => {
                out.steps.push(Step::AcquireLease {
                    slot: ticket.slot.clone(),
                });
                ep.lease = Some(ticket);
                ep.lease_renewed = now;
                true
            }
            None => false,
        }
    }

    /// Takes a lease, asking at most every `recheck_interval` while none is free.
    async fn acquire(&mut self, now: Instant, out: &mut Outcome) -> Option<LockTicket> {
        let result = match self.lease_retry_at {
            Some(at) if now < at => Ok(None),
            _ => self.lock.try_acquire().await,
        };
        match result {
            Ok(Some(ticket)) => {
                self.lease_retry_at = None;
                Some(ticket)
            }
            Ok(None) => {
                if self.lease_retry_at.is_none_or(|at| now >= at) {
                    self.lease_retry_at = Some(now + self.config.recheck_interval.get());
                }
                self.metrics.suppressed_lease();
                self.suppress(Suppressed::NoLease, out).await;
                None
            }
            Err(e) => {
                self.lease_retry_at = Some(now + self.config.recheck_interval.get());
                out.errors.push(format!("acquire lease: {e}"));
                None
            }
        }
    }

    /// Does the work of the episode's rung.
    async fn run_rung(&mut self, ep: &mut Episode, v: &Verdicts, now: Instant, out: &mut Outcome) {
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
    async fn drain(&mut self, ep: &mut Episode, cause: &Cause, out: &mut Outcome) -> bool {
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

    async fn exhaust(&mut self, mut ep: Episode, why: &str) {
        ep.exhausted = true;
        if let Some(ticket) = ep.lease.take() {
            if let Err(e) = self.lock.release(ticket).await {
                tracing::warn!(node = %self.node, "release lease: {e}");
            }
        }
        self.metrics.episode_exhausted();
        tracing::error!(node = %self.node, "remediation exhausted: {why}; a human is needed");
        self.event(
            EventKind::Warning,
            "RemediationExhausted",
            "None",
            format!("{why}; the node stays cordoned and tainted: a human is needed"),
        )
        .await;
        self.episode = Some(ep);
    }

    // === recovery ===

    async fn recover(&mut self, now: Instant, out: &mut Outcome) {
        let cause = Cause {
            reason: "GPUs recovered".into(),
            ..Cause::default()
        };
        self.last_suppressed = None;
        self.rebooted = false;
        if self.request_pending {
            let result = self.actions.clear_host_request(&cause).await;
            if self.done("clear host request", result, out).is_some() {
                self.request_pending = false;
                out.steps.push(Step::ClearRequest);
                self.event(
                    EventKind::Normal,
                    "HostRequestWithdrawn",
                    "ClearRequest",
                    "GPUs recovered: host request withdrawn".into(),
                )
                .await;
            }
        }
        if self.cordoned_by_us {
            let result = self.actions.uncordon(&cause).await;
            if self.done("uncordon", result, out).is_some() {
                self.cordoned_by_us = false;
                out.steps.push(Step::Uncordon);
                self.event(
                    EventKind::Normal,
                    "NodeUncordoned",
                    "Uncordon",
                    "GPUs recovered: uncordoned".into(),
                )
                .await;
            }
        }
        if let Some(mut ep) = self.episode.take() {
            if let Some(ticket) = ep.lease.take() {
                let slot = ticket.slot.clone();
                match self.lock.release(ticket).await {
                    Ok(()) => out.steps.push(Step::ReleaseLease { slot }),
                    Err(e) => out.errors.push(format!("release lease {slot}: {e}")),
                }
            }
            self.cooldown_until = Some(now + self.config.cooldown.get());
            if !ep.exhausted {
                self.metrics.episode_recovered();
            }
            self.event(
                EventKind::Normal,
                "RemediationRecovered",
                "None",
                format!(
                    "GPUs recovered after {:?} (last rung {}); no new remediation for {}",
                    now.duration_since(ep.started),
                    ep.rung.as_str(),
                    self.config.cooldown
                ),
            )
            .await;
        }
    }

    // === the breaker ===

    /// Reads the fleet (at most every `recheck_interval`); `false` (and an alert when it
    /// opens) while too much of it is unhealthy.
    async fn breaker_allows(&mut self, now: Instant, out: &mut Outcome) -> bool {
        let recheck = self.config.recheck_interval.get();
        let fleet = match &self.fleet {
            Some((at, fleet)) if now.duration_since(*at) < recheck => fleet.clone(),
            _ => {
                let fleet = self.actions.fleet_health().await.map_err(|e| e.to_string());
                self.fleet = Some((now, fleet.clone()));
                fleet
            }
        };
        let health = match fleet {
            Ok(Some(health)) => health,
            Ok(None) => return true,
            Err(e) => {
                out.errors.push(format!("read fleet health: {e}"));
                self.metrics.suppressed_breaker();
                self.suppress(Suppressed::FleetUnknown, out).await;
                return false;
            }
        };
        let b = &self.config.breaker;
        let open =
            health.unhealthy >= b.min_unhealthy_nodes && health.share() > b.max_unhealthy_share;
        let tripped = open && !self.breaker_open;
        self.metrics.breaker(open, tripped);
        if tripped {
            tracing::error!(
                node = %self.node,
                "remediation circuit open: {health} (threshold {:.0}%); acting on no node",
                b.max_unhealthy_share * 100.0
            );
            self.event(
                EventKind::Warning,
                "RemediationCircuitOpen",
                "None",
                format!(
                    "{health}, above {:.0}%: a fleet-wide fault is rarely the GPUs; no disruptive remediation until it drops",
                    b.max_unhealthy_share * 100.0
                ),
            )
            .await;
        } else if !open && self.breaker_open {
            tracing::warn!(node = %self.node, "remediation circuit closed: {health}");
            self.event(
                EventKind::Normal,
                "RemediationCircuitClosed",
                "None",
                format!("{health}: remediation resumes"),
            )
            .await;
        }
        self.breaker_open = open;
        if open {
            self.metrics.suppressed_breaker();
            out.suppressed = Some(Suppressed::CircuitOpen(health));
        }
        !open
    }

    // === helpers ===

    /// Records a held-back step; an event the first time in a row.
    async fn suppress(&mut self, why: Suppressed, out: &mut Outcome) {
        let kind = std::mem::discriminant(&why);
        if self.last_suppressed != Some(kind) {
            self.last_suppressed = Some(kind);
            let message = match &why {
                Suppressed::Cooldown { remaining } => {
                    format!("in cooldown for another {remaining:?}")
                }
                Suppressed::NoLease => format!(
                    "all {} remediation leases are held by other nodes",
                    self.config.max_concurrent_nodes
                ),
                Suppressed::FleetUnknown => "cannot read the fleet's health".into(),
                Suppressed::Settling { .. } | Suppressed::CircuitOpen(_) => String::new(),
            };
            if !message.is_empty() {
                self.event(
                    EventKind::Normal,
                    "RemediationDeferred",
                    "None",
                    format!("remediation deferred: {message}"),
                )
                .await;
            }
        }
        out.suppressed = Some(why);
    }

    /// Counts an action's result; an error goes to the outcome, the log and an event.
    fn done<T>(&self, what: &str, result: Result<T, ActionError>, out: &mut Outcome) -> Option<T> {
        self.metrics.action(result.is_ok());
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::warn!(node = %self.node, "{what} failed: {e}");
                out.errors.push(format!("{what}: {e}"));
                None
            }
        }
    }

    async fn event(&self, kind: EventKind, reason: &str, action: &str, message: String) {
        let event = NodeEvent {
            kind,
            reason: reason.into(),
            action: action.into(),
            message,
        };
        if let Err(e) = self.actions.record_event(&event).await {
            tracing::warn!(node = %self.node, reason, "record event failed: {e}");
        }
    }
}

/// What an ongoing remediation has to do now.
enum Due {
    Escalate(Rung),
    Retry,
    Exhaust,
}

impl Episode {
    fn new(rung: Rung, now: Instant, lease: Option<LockTicket>) -> Self {
        Episode {
            rung,
            rung_started: now,
            rung_done: false,
            last_attempt: now,
            lease,
            lease_renewed: now,
            exhausted: false,
            started: now,
        }
    }
}

/// Runs `fut`, renewing the lease every `every` meanwhile (a drain may outlast the lease).
async fn with_renewal<T>(
    lock: &dyn RemediationLock,
    ticket: Option<&mut LockTicket>,
    renewed: &mut Instant,
    every: Duration,
    fut: impl std::future::Future<Output = T>,
) -> T {
    let Some(ticket) = ticket else {
        return fut.await;
    };
    tokio::pin!(fut);
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tick.tick() => match lock.renew(ticket).await {
                Ok(true) => *renewed = Instant::now(),
                Ok(false) => tracing::warn!(lease = %ticket.slot, "remediation lease lost during a drain"),
                Err(e) => tracing::warn!(lease = %ticket.slot, "renew lease: {e}"),
            },
        }
    }
}
