//! `control.yaml`: what the control process watches and how it reacts.

use std::path::PathBuf;
use std::time::Duration;

use infergate_config::{env, Dur};
use infergate_gpu::policy::PolicyConfig;
use infergate_remediate::RemediationConfig;
use serde::{Deserialize, Serialize};

/// The control process's configuration. Every field has a default.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// This node's name, as in the gateway endpoints' `node` label and in Kubernetes. Default:
    /// `$NODE_NAME`, else the host name.
    pub node: Option<String>,
    /// Where the health feed and metrics are served. Default `127.0.0.1:9200`.
    pub listen: Option<String>,
    pub gpu: GpuSettings,
    /// The policy: findings to severities and actions (docs/gpu-health.md).
    pub policy: PolicyConfig,
    /// How findings are acted on.
    pub remediation: RemediationSettings,
    /// Model caches to warm at start (docs/warmup.md); more can be started with
    /// `POST /v1/warmup`.
    pub warmup: Vec<WarmupJobConfig>,
    /// Which pods hold which GPUs, read from the kubelet's PodResources API and published on
    /// the health feed. Off when absent.
    pub pod_resources: Option<PodResourcesSettings>,
    /// Progressive canary releases (docs/release.md).
    pub release: ReleaseSettings,
}

/// Where releases are saved so that they resume after a restart.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseSettings {
    /// The directory of the saved releases (one JSON file each). Default
    /// `/var/lib/infergate-control/releases`; when it cannot be created, releases run in
    /// memory only and a restart forgets them.
    pub state_dir: PathBuf,
}

impl Default for ReleaseSettings {
    fn default() -> Self {
        ReleaseSettings {
            state_dir: PathBuf::from("/var/lib/infergate-control/releases"),
        }
    }
}

/// How the kubelet's PodResources API is read.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PodResourcesSettings {
    /// The kubelet's socket. Default `/var/lib/kubelet/pod-resources/kubelet.sock`.
    pub socket: PathBuf,
    /// Resource names whose devices are GPUs. Default `["nvidia.com/gpu"]`.
    pub resources: Vec<String>,
    /// Time between two `List` calls. Default `10s`.
    pub interval: Dur,
    /// Longest a `List` call may take, connecting included. Default `5s`.
    pub timeout: Dur,
}

impl Default for PodResourcesSettings {
    fn default() -> Self {
        PodResourcesSettings {
            socket: PathBuf::from(infergate_podresources::DEFAULT_SOCKET),
            resources: vec!["nvidia.com/gpu".into()],
            interval: Dur::secs(10),
            timeout: Dur::secs(5),
        }
    }
}

impl PodResourcesSettings {
    /// The problems with these settings, each with its field's path.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.socket.as_os_str().is_empty() {
            out.push("pod_resources.socket: must not be empty".to_owned());
        }
        if self.resources.is_empty() {
            out.push("pod_resources.resources: must name at least one resource".to_owned());
        }
        for (i, r) in self.resources.iter().enumerate() {
            if r.trim().is_empty() {
                out.push(format!("pod_resources.resources[{i}]: must not be empty"));
            }
        }
        if self.interval.get() < Duration::from_millis(100) {
            out.push(format!(
                "pod_resources.interval: {}: must be at least 100ms",
                self.interval
            ));
        }
        if self.timeout.get().is_zero() {
            out.push(format!(
                "pod_resources.timeout: {}: must be positive",
                self.timeout
            ));
        }
        out
    }
}

/// A warmup job in `control.yaml`: `source` is an `http(s)://` base URL or a directory.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupJobConfig {
    pub model: String,
    #[serde(default)]
    pub version: String,
    pub source: String,
    pub dest: PathBuf,
    /// PEM bundle that verifies an `https://` source (default: the system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub tuning: infergate_warmup::Tuning,
}

impl WarmupJobConfig {
    pub fn to_job(&self) -> Result<infergate_warmup::WarmupJob, String> {
        Ok(infergate_warmup::WarmupJob {
            model: self.model.clone(),
            version: self.version.clone(),
            source: self.source.parse().map_err(|e| format!("{e}"))?,
            dest: self.dest.clone(),
            ca_file: self.ca_file.clone(),
            tuning: self.tuning.clone(),
        })
    }
}

/// How GPUs are read.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpuSettings {
    /// Path of the NVML library. Default: the system's `libnvidia-ml.so.1`.
    pub library: Option<PathBuf>,
    /// Longest a single NVML call may take before it counts as hung. Default `2s`.
    pub call_timeout: Dur,
    /// Time between two readings; an XID event triggers a reading at once. Default `1s`.
    pub interval: Dur,
}

impl Default for GpuSettings {
    fn default() -> Self {
        GpuSettings {
            library: None,
            call_timeout: Dur::secs(2),
            interval: Dur::secs(1),
        }
    }
}

/// Where remediation acts.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Publish health only; take no action.
    Off,
    /// Log, or run `remediation.hook` (default).
    #[default]
    Local,
    /// Through the Kubernetes API (in-cluster service account or KUBECONFIG).
    Kubernetes,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemediationSettings {
    pub mode: Mode,
    #[serde(flatten)]
    pub config: RemediationConfig,
}

impl ControlConfig {
    /// Reads, parses and validates `control.yaml`, expanding environment variables in its
    /// values from the process's environment. Errors name the file and the field.
    pub fn load(path: &std::path::Path) -> anyhow::Result<ControlConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        ControlConfig::from_yaml_env(&text, &env::process_env)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses and validates the text of `control.yaml`. `${VAR}` and `${VAR:-default}` in its
    /// values are expanded with `lookup`, as in the gateway's config (`infergate_config::env`).
    /// The error names each field that is wrong, with its value and the reason.
    pub fn from_yaml_env(text: &str, lookup: env::Lookup<'_>) -> anyhow::Result<ControlConfig> {
        let cfg: ControlConfig =
            env::from_yaml(text, lookup).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut list: Vec<String> = match cfg.remediation.config.validate() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        if let Some(p) = &cfg.pod_resources {
            list.extend(p.problems());
        }
        if cfg.release.state_dir.as_os_str().is_empty() {
            list.push("release.state_dir: must not be empty".to_owned());
        }
        if !list.is_empty() {
            anyhow::bail!("{}", list.join("; "));
        }
        Ok(cfg)
    }

    pub fn node_name(&self) -> String {
        self.node
            .clone()
            .or_else(|| std::env::var("NODE_NAME").ok())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }

    pub fn listen_addr(&self) -> String {
        self.listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:9200".into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn remediation_settings_are_validated_on_load() {
        let dir =
            std::env::temp_dir().join(format!("infergate-control-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.yaml");
        std::fs::write(&path, "node: a\nremediation: { mode: off }\n").unwrap();
        assert!(ControlConfig::load(&path).is_ok());
        std::fs::write(
            &path,
            "node: a\nremediation: { mode: off, max_concurrent_nodes: 0 }\n",
        )
        .unwrap();
        let err = ControlConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("remediation.max_concurrent_nodes") && err.contains("control.yaml"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn values_expand_environment_variables_from_the_lookup() {
        let lookup = |name: &str| match name {
            "NODE_NAME" => Some("gpu-7".to_owned()),
            "POD_IP" => Some("10.0.0.9".to_owned()),
            "DRY_RUN" => Some("true".to_owned()),
            _ => None,
        };
        let cfg = ControlConfig::from_yaml_env(
            "node: ${NODE_NAME}\nlisten: \"${POD_IP}:${PORT:-9200}\"\n\
             gpu: { interval: \"${INTERVAL:-500ms}\" }\n\
             remediation: { mode: off, dry_run: \"${DRY_RUN}\", max_concurrent_nodes: \"${MAX:-2}\", \
             namespace: \"$${NS}\" }\n",
            &lookup,
        )
        .unwrap();
        assert_eq!(cfg.node.as_deref(), Some("gpu-7"));
        assert_eq!(cfg.listen.as_deref(), Some("10.0.0.9:9200"));
        assert_eq!(cfg.gpu.interval.get(), Duration::from_millis(500));
        // Flattened remediation fields: a boolean and a number from expanded text.
        assert!(cfg.remediation.config.dry_run);
        assert_eq!(cfg.remediation.config.max_concurrent_nodes, 2);
        assert_eq!(cfg.remediation.config.namespace, "${NS}");
        let err = ControlConfig::from_yaml_env("node: ${NODE}\n", &lookup)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node: environment variable NODE is not set"),
            "{err}"
        );
        let err =
            ControlConfig::from_yaml_env("gpu: { interval: \"${INTERVAL:-soon}\" }\n", &lookup)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("gpu.interval") && err.contains("soon"),
            "{err}"
        );
    }

    #[test]
    fn pod_resources_are_off_when_absent_and_validated() {
        let dir =
            std::env::temp_dir().join(format!("infergate-control-cfg-pods-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.yaml");
        std::fs::write(&path, "node: a\n").unwrap();
        assert!(ControlConfig::load(&path).unwrap().pod_resources.is_none());
        std::fs::write(&path, "node: a\npod_resources: {}\n").unwrap();
        let on = ControlConfig::load(&path).unwrap().pod_resources.unwrap();
        assert_eq!(
            on.socket,
            PathBuf::from("/var/lib/kubelet/pod-resources/kubelet.sock")
        );
        assert_eq!(on.resources, vec!["nvidia.com/gpu".to_owned()]);
        assert_eq!(on.interval.get(), Duration::from_secs(10));
        std::fs::write(
            &path,
            "node: a\npod_resources: { socket: /k.sock, resources: [\"\"], interval: 10ms, timeout: 0s }\n",
        )
        .unwrap();
        let err = ControlConfig::load(&path).unwrap_err().to_string();
        for want in [
            "control.yaml",
            "pod_resources.resources[0]: must not be empty",
            "pod_resources.interval: 10ms: must be at least 100ms",
            "pod_resources.timeout: 0s: must be positive",
        ] {
            assert!(err.contains(want), "{want} not in {err}");
        }
        std::fs::write(&path, "node: a\npod_resources: { sockets: /k.sock }\n").unwrap();
        let err = ControlConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("pod_resources") && err.contains("sockets"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
