//! The `remediation:` section of `control.yaml`: every knob of the remediation and its safety
//! policy, with the defaults documented on each field (and in `docs/remediation.md`).

use std::time::Duration;

use infergate_config::{ConfigError, Dur};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Remediation settings. Every field has a default, so `remediation: {}` is a valid section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RemediationConfig {
    /// Log every action instead of taking it (`--dry-run`). Default `false`.
    pub dry_run: bool,
    /// Namespace of the control DaemonSet, where the remediation leases live.
    /// Default `infergate-system`.
    pub namespace: String,
    /// K: at most this many nodes under (disruptive) remediation at once across the cluster.
    /// One `coordination.k8s.io/v1` Lease per slot. Default `1`.
    pub max_concurrent_nodes: u32,
    /// Lease names are `<lease_prefix>-0` .. `<lease_prefix>-(K-1)`.
    /// Default `infergate-remediation`.
    pub lease_prefix: String,
    /// A lease not renewed for this long is free for another node to take. Renewed every third
    /// of it while held, so `observe` must be called at least that often. Default `60s`.
    pub lease_duration: Dur,
    /// No new remediation on a node for this long after its previous one ended. Default `30m`.
    pub cooldown: Dur,
    /// While a step is held back by the breaker or for want of a lease, the fleet and the
    /// leases are read again at most this often (not at every observation). Default `15s`.
    pub recheck_interval: Dur,
    /// The escalation ladder: restart pod → drain → reboot request.
    pub ladder: LadderConfig,
    /// The circuit breaker over the whole GPU fleet.
    pub breaker: BreakerConfig,
    /// Label selector of the GPU nodes, counted by the breaker.
    /// Default `nvidia.com/gpu.present=true` (set by NVIDIA GPU feature discovery).
    pub gpu_node_selector: String,
    /// Label selector of the model-server pods that remediation restarts and evicts.
    /// Default `app.kubernetes.io/component=model-server`.
    pub model_server_selector: String,
    /// Namespace of the model-server pods; `None` (default) means every namespace.
    pub pod_namespace: Option<String>,
    /// Pod annotation naming the GPU indices a model-server pod runs on: `"3"`, `"0,1"`, or
    /// `"all"`. Default `infergate.io/gpus`.
    pub gpu_annotation: String,
    /// Type of the node condition kept by remediation. Default `GpuHealthy`.
    pub condition_type: String,
    /// Key of the taint put on a node with unhealthy GPUs; its value lists the GPU indices
    /// joined by `-`. Default `infergate.io/gpu-unhealthy`.
    pub taint_key: String,
    /// Effect of that taint. Default `NoSchedule`.
    pub taint_effect: TaintEffect,
    /// How pods are evicted.
    pub eviction: EvictionConfig,
    /// After a drain, also ask for a reset of the unhealthy GPUs (node annotation). Default `true`.
    pub reset_gpu_on_drain: bool,
    /// Local mode only: the command run for every action, with the finding in its environment.
    /// Default none (actions are only logged).
    pub hook: Option<HookConfig>,
}

impl Default for RemediationConfig {
    fn default() -> Self {
        RemediationConfig {
            dry_run: false,
            namespace: "infergate-system".into(),
            max_concurrent_nodes: 1,
            lease_prefix: "infergate-remediation".into(),
            lease_duration: Dur::secs(60),
            cooldown: Dur::secs(30 * 60),
            recheck_interval: Dur::secs(15),
            ladder: LadderConfig::default(),
            breaker: BreakerConfig::default(),
            gpu_node_selector: "nvidia.com/gpu.present=true".into(),
            model_server_selector: "app.kubernetes.io/component=model-server".into(),
            pod_namespace: None,
            gpu_annotation: "infergate.io/gpus".into(),
            condition_type: "GpuHealthy".into(),
            taint_key: "infergate.io/gpu-unhealthy".into(),
            taint_effect: TaintEffect::NoSchedule,
            eviction: EvictionConfig::default(),
            reset_gpu_on_drain: true,
            hook: None,
        }
    }
}

/// How long each rung of the ladder may take before the next one is tried.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LadderConfig {
    /// After restarting the model-server pod(s) on the GPU. Default `5m`.
    pub restart_pod_timeout: Dur,
    /// After cordoning, evicting and (optionally) requesting a GPU reset. Default `15m`.
    pub drain_timeout: Dur,
    /// After requesting a reboot; then the ladder is exhausted and a human is needed.
    /// Default `30m`.
    pub reboot_timeout: Dur,
    /// A rung whose work is incomplete (an eviction held by a PodDisruptionBudget) is retried
    /// this often. Default `1m`.
    pub retry_interval: Dur,
}

impl Default for LadderConfig {
    fn default() -> Self {
        LadderConfig {
            restart_pod_timeout: Dur::secs(5 * 60),
            drain_timeout: Dur::secs(15 * 60),
            reboot_timeout: Dur::secs(30 * 60),
            retry_interval: Dur::secs(60),
        }
    }
}

/// The fleet-wide circuit breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Act on no node while more than this share of the GPU nodes has `GpuHealthy=False`.
    /// Default `0.3`.
    pub max_unhealthy_share: f64,
    /// …and at least this many nodes are unhealthy (so that one bad node in a small cluster does
    /// not trip it). Default `2`.
    pub min_unhealthy_nodes: u32,
    /// A fault must last this long before the first disruptive step, so that a fleet-wide event
    /// shows in the other nodes' conditions before any node acts on it. Default `30s`.
    pub settle_time: Dur,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            max_unhealthy_share: 0.3,
            min_unhealthy_nodes: 2,
            settle_time: Dur::secs(30),
        }
    }
}

/// Eviction through the Eviction API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EvictionConfig {
    /// Give up retrying an eviction refused by a PodDisruptionBudget (429) after this long; the
    /// ladder retries the drain later. Never falls back to a delete. Default `5m`.
    pub deadline: Dur,
    /// First wait after a 429; doubles up to `max_backoff`, with jitter. Default `1s`.
    pub initial_backoff: Dur,
    /// Default `30s`.
    pub max_backoff: Dur,
    /// `deleteOptions.gracePeriodSeconds` of the eviction; default none (the pod's own).
    pub grace_period: Option<Dur>,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            deadline: Dur::secs(5 * 60),
            initial_backoff: Dur::secs(1),
            max_backoff: Dur::secs(30),
            grace_period: None,
        }
    }
}

/// A local hook command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Program and arguments (no shell), e.g. `["/usr/local/bin/gpu-remediate", "--quiet"]`.
    pub command: Vec<String>,
    /// Killed after this long. Default `60s`.
    #[serde(default = "default_hook_timeout")]
    pub timeout: Dur,
}

fn default_hook_timeout() -> Dur {
    Dur::secs(60)
}

/// A taint effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::PreferNoSchedule => "PreferNoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        }
    }
}

impl RemediationConfig {
    /// Checks what serde cannot: ranges and non-empty names. Returns every problem found, each
    /// with the path of the field under `remediation.`.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut fail = |path: &str, reason: String| {
            errors.push(ConfigError {
                path: format!("remediation.{path}"),
                reason,
            })
        };
        if self.max_concurrent_nodes == 0 {
            fail(
                "max_concurrent_nodes",
                "must be at least 1 (set dry_run to act on none)".into(),
            );
        }
        if self.lease_duration.get() < Duration::from_secs(3) {
            fail("lease_duration", "must be at least 3s".into());
        }
        let share = self.breaker.max_unhealthy_share;
        if !(share.is_finite() && (0.0..=1.0).contains(&share)) {
            fail(
                "breaker.max_unhealthy_share",
                format!("must be between 0 and 1, not {share}"),
            );
        }
        for (path, value) in [
            ("namespace", &self.namespace),
            ("lease_prefix", &self.lease_prefix),
            ("condition_type", &self.condition_type),
            ("taint_key", &self.taint_key),
            ("gpu_annotation", &self.gpu_annotation),
            ("model_server_selector", &self.model_server_selector),
        ] {
            if value.trim().is_empty() {
                fail(path, "must not be empty".into());
            }
        }
        if self.eviction.initial_backoff.get().is_zero() {
            fail("eviction.initial_backoff", "must be more than 0".into());
        }
        if self.eviction.max_backoff < self.eviction.initial_backoff {
            fail(
                "eviction.max_backoff",
                "must not be less than initial_backoff".into(),
            );
        }
        if self.ladder.retry_interval.get().is_zero() {
            fail("ladder.retry_interval", "must be more than 0".into());
        }
        if let Some(hook) = &self.hook {
            if hook.command.first().is_none_or(|c| c.trim().is_empty()) {
                fail("hook.command", "must name a program".into());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Names of the K lease objects.
    pub fn lease_names(&self) -> Vec<String> {
        (0..self.max_concurrent_nodes)
            .map(|i| format!("{}-{i}", self.lease_prefix))
            .collect()
    }
}
