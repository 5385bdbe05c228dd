//! `control.yaml`: what the control process watches and how it reacts.

use std::path::PathBuf;

use infergate_config::Dur;
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
    pub fn load(path: &std::path::Path) -> anyhow::Result<ControlConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let de = serde_yaml_ng::Deserializer::from_str(&text);
        let cfg: ControlConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
        if let Err(errors) = cfg.remediation.config.validate() {
            let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}: {}", path.display(), list.join("; "));
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
}
