//! Environment variables in config values: `${VAR}`, `${VAR:-default}` and `$${` for a literal
//! `${`.
//!
//! Expansion happens while the YAML is deserialized, scalar by scalar, and only in values: keys
//! are read as written, and comments never reach it. A scalar is expanded as a whole and then
//! given to the field that reads it: a string field gets the text; a number or boolean field
//! (and a field that takes several types, such as a byte size or a port number or name) reads
//! the text as a decimal integer, a float, or `true`/`false` when it is one. So `port: ${PORT}`
//! with `PORT=8000` is the number 8000, and `url: http://${POD_IP}:8000` is a string.
//!
//! The environment is a lookup function, so tests and other callers need not touch the
//! process's environment; [`process_env`] reads the real one.

mod de;
mod expand;
#[cfg(test)]
mod tests;

use serde::de::DeserializeOwned;

pub use expand::{expand, process_env, ExpandError, Lookup};

use crate::error::{ConfigError, ConfigErrors};

/// Deserializes a YAML document into `T`, expanding environment variables in its values
/// ([`expand`]) with `lookup`. A document with no `${` is parsed as it is, without the
/// expansion's wrapper. An error carries the path of the value, e.g.
/// `backends[0].endpoints[0].url: environment variable POD_IP is not set (line 7, column 14)`.
pub fn from_yaml<T: DeserializeOwned>(text: &str, lookup: Lookup<'_>) -> Result<T, ConfigErrors> {
    let expands = text.contains("${");
    // Tracking the path of every value costs a third of the parse; it is needed only to
    // report an error, so a document that fails is parsed again with it.
    let first = if expands {
        T::deserialize(de::Expanding::new(
            serde_yaml_ng::Deserializer::from_str(text),
            lookup,
        ))
    } else {
        serde_yaml_ng::from_str::<T>(text)
    };
    if let Ok(v) = first {
        return Ok(v);
    }
    let yaml = serde_yaml_ng::Deserializer::from_str(text);
    let tracked = if expands {
        serde_path_to_error::deserialize(de::Expanding::new(yaml, lookup))
    } else {
        serde_path_to_error::deserialize(yaml)
    };
    tracked.map_err(|e| {
        let path = e.path().to_string();
        ConfigErrors(vec![ConfigError::from_yaml(path, &e.into_inner())])
    })
}
