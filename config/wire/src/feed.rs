//! The health-feed document: what `infergate-control` serves on `GET /v1/health` and the
//! gateway reads, one type for both sides.
//!
//! ```json
//! {"version":3,"node":"node-a","read_at_ms":1700000000000,
//!  "gpus":[{"index":0,"uuid":"GPU-0","state":"unhealthy","reasons":["XID 79"],"read_at_ms":1700000000000}],
//!  "models":[{"name":"llama","version":"v1","state":"warm"}]}
//! ```
//!
//! The writer fills every field; a reader needs only `version`, `node`, each GPU's `index` and
//! `state`, and each model's `name` and `state`: every other field has a serde default, and a
//! GPU state this version does not know reads as [`GpuHealth::Unknown`] instead of failing the
//! document.

use serde::{Deserialize, Serialize};

/// The document on the feed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedDoc {
    /// Grows by one on every change of `gpus` or `models`.
    pub version: u64,
    /// The node the document describes.
    pub node: String,
    /// Unix time in milliseconds of the reading behind this document.
    #[serde(default)]
    pub read_at_ms: u64,
    #[serde(default)]
    pub gpus: Vec<FeedGpu>,
    /// Warm state of model caches on this node (filled by warmup jobs).
    #[serde(default)]
    pub models: Vec<FeedModel>,
}

/// One GPU's state on the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedGpu {
    pub index: u32,
    #[serde(default)]
    pub uuid: String,
    pub state: GpuHealth,
    /// The findings behind the state (empty when healthy).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Unix time in milliseconds of the reading.
    #[serde(default)]
    pub read_at_ms: u64,
}

/// A GPU's health: `"healthy"`, `"degraded"` or `"unhealthy"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuHealth {
    Healthy,
    /// Worth watching; traffic continues.
    Degraded,
    /// Take traffic off the GPU.
    Unhealthy,
    /// A state this version does not know (never written by this version).
    #[serde(other)]
    Unknown,
}

/// Whether a model's files are warm in the node's cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedModel {
    pub name: String,
    #[serde(default)]
    pub version: String,
    /// `"warm"` when the files are in the cache; anything else (the warmup job's state) when not.
    pub state: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The document as `infergate-control` has always served it (field order included).
    const SERVED: &str = concat!(
        r#"{"version":3,"node":"node-a","read_at_ms":1700000000123,"#,
        r#""gpus":[{"index":0,"uuid":"GPU-0","state":"healthy","reasons":[],"read_at_ms":1700000000123},"#,
        r#"{"index":1,"uuid":"GPU-1","state":"unhealthy","reasons":["XID 79: GPU has fallen off the bus"],"read_at_ms":1700000000123},"#,
        r#"{"index":2,"uuid":"GPU-2","state":"degraded","reasons":["temperature 91 C"],"read_at_ms":1700000000123}],"#,
        r#""models":[{"name":"llama","version":"v1","state":"warm"},{"name":"qwen","version":"","state":"failed"}]}"#,
    );

    #[test]
    fn served_document_round_trips() {
        let doc: FeedDoc = serde_json::from_str(SERVED).unwrap();
        assert_eq!(doc.version, 3);
        assert_eq!(doc.gpus[1].state, GpuHealth::Unhealthy);
        assert_eq!(doc.gpus[2].state, GpuHealth::Degraded);
        assert_eq!(doc.models[0].state, "warm");
        assert_eq!(serde_json::to_string(&doc).unwrap(), SERVED);
    }

    #[test]
    fn a_reader_needs_only_the_fields_it_uses() {
        let doc: FeedDoc = serde_json::from_str(
            r#"{"version":2,"node":"n","gpus":[{"index":1,"state":"on_fire"}],"models":[{"name":"m","state":"warm"}],"extra":1}"#,
        )
        .unwrap();
        assert_eq!(doc.read_at_ms, 0);
        assert_eq!(doc.gpus[0].state, GpuHealth::Unknown);
        assert!(doc.gpus[0].reasons.is_empty());
        assert_eq!(doc.models[0].version, "");
        let bare: FeedDoc = serde_json::from_str(r#"{"version":1,"node":"n"}"#).unwrap();
        assert_eq!(
            bare,
            FeedDoc {
                version: 1,
                node: "n".into(),
                ..FeedDoc::default()
            }
        );
    }
}
