//! infergate's configuration.
//!
//! A YAML file is parsed strictly (unknown fields are errors, with their path), then validated
//! as a whole: [`validate`] reports every problem it finds, each with its path and a reason,
//! e.g. `models[1].backend: unknown backend "llama-v3" (known: llama-v1, llama-v2)`.
//! The gateway compiles a valid [`Config`] into its routing table; this crate knows nothing of
//! the data path.

mod admission;
mod balancer;
mod discovery;
pub mod env;
mod error;
mod incremental;
mod labels;
mod model;
mod observability;
mod protocols;
pub mod units;
mod validate;

use std::path::Path;

pub use admission::{Admission, Limit, Priority, PriorityClass, RateKey, RateLimits};
pub use balancer::{
    Balancer, Engine, EngineState, MetricNames, Policy, PrefixAffinity, ScoreWeights,
};
pub use discovery::{
    selector_text, Discovery, FeedDiscovery, KubernetesDiscovery, ObjectRef, PortRef,
};
pub use error::{ConfigError, ConfigErrors, LoadError};
pub use incremental::{Incremental, Reuse};
pub use labels::Labels;
pub use model::*;
pub use observability::{AccessLog, Otlp, Tracing};
pub use protocols::{under_prefix, PathKind, PathRoute, COMFYUI_PATHS, RESERVED_PREFIXES};
pub use units::{ByteSize, Dur};
pub use validate::validate;

impl Config {
    /// Parses and validates a YAML document, expanding environment variables in its values
    /// (see [`env`]) from the process's environment.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        Config::from_yaml_env(text, &env::process_env)
    }

    /// [`Config::from_yaml`] with the environment given by `lookup`.
    pub fn from_yaml_env(text: &str, lookup: env::Lookup<'_>) -> Result<Config, ConfigErrors> {
        let cfg: Config = env::from_yaml(text, lookup)?;
        validate(&cfg)?;
        Ok(cfg)
    }

    /// Reads, parses and validates a YAML file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::from_yaml(&text).map_err(|errors| LoadError::Invalid {
            path: shown,
            errors,
        })
    }
}

/// The JSON Schema of the config file, for editors (`infergate config-schema`).
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Config);
    schema.to_value()
}
