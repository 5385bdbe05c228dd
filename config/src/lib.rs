//! infergate's configuration.
//!
//! A YAML file is parsed strictly (unknown fields are errors, with their path), then validated
//! as a whole: [`validate`] reports every problem it finds, each with its path and a reason,
//! e.g. `models[1].backend: unknown backend "llama-v3" (known: llama-v1, llama-v2)`.
//! The gateway compiles a valid [`Config`] into its routing table; this crate knows nothing of
//! the data path.

mod discovery;
mod error;
mod labels;
mod model;
pub mod units;
mod validate;

use std::path::Path;

pub use discovery::{
    selector_text, Discovery, FeedDiscovery, KubernetesDiscovery, ObjectRef, PortRef,
};
pub use error::{ConfigError, ConfigErrors, LoadError};
pub use labels::Labels;
pub use model::*;
pub use units::{ByteSize, Dur};
pub use validate::validate;

impl Config {
    /// Parses and validates a YAML document.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigErrors> {
        // Tracking the path of every value costs a third of the parse; it is needed only to
        // report an error, so a document that fails is parsed again with it.
        if let Ok(cfg) = serde_yaml_ng::from_str::<Config>(text) {
            validate(&cfg)?;
            return Ok(cfg);
        }
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let mut reason = inner.to_string();
            // serde_yaml_ng may lead with the path itself; it is shown once, in front.
            if let Some((head, rest)) = reason.split_once(": ") {
                if !head.is_empty() && !head.contains(' ') && path.starts_with(head) {
                    reason = rest.to_string();
                }
            }
            if let Some(loc) = inner.location() {
                // serde_yaml_ng appends its own location; keep one, in a fixed form.
                if let Some(cut) = reason.find(" at line ") {
                    reason.truncate(cut);
                }
                reason = format!("{reason} (line {}, column {})", loc.line(), loc.column());
            }
            ConfigErrors(vec![ConfigError { path, reason }])
        })?;
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
