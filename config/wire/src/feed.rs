//! The health-feed document: what `infergate-control` serves on `GET /v1/health` and the
//! gateway reads, one type for both sides.
//!
//! ```json
//! {"version":3,"node":"node-a","read_at_ms":1700000000000,
//!  "gpus":[{"index":0,"uuid":"GPU-0","state":"unhealthy","reasons":["XID 79"],"read_at_ms":1700000000000}],
//!  "models":[{"name":"llama","version":"v1","state":"warm"}]}
//! ```
//!
//! `pods` (present only when the control process reads the kubelet's PodResources API) says
//! which pod and container holds which GPU:
//! `"pods":[{"namespace":"models","name":"llama-0","container":"vllm","gpus":[{"uuid":"GPU-0","index":0}]}]`.
//!
//! The writer fills every field; a reader needs only `version`, `node`, each GPU's `index` and
//! `state`, and each model's `name` and `state`: every other field has a serde default, and a
//! GPU state this version does not know reads as [`GpuHealth::Unknown`] instead of failing the
//! document.

use serde::{Deserialize, Serialize};

/// The document on the feed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedDoc {
    /// Grows by one on every change of `gpus`, `models`, `pods` or `releases`.
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
    /// Which pods hold which GPUs, from the kubelet's PodResources API (empty when not read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<FeedPod>,
    /// The weights of the releases the control process runs (or has run): gateways apply them
    /// to the model's split over the config's weights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<FeedRelease>,
}

/// A release's weights for one model, as gateways apply them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRelease {
    /// The release's name.
    pub name: String,
    pub model: String,
    /// Grows with every change of this release's weights; of two documents about the same
    /// release, the higher generation wins.
    pub generation: u64,
    /// Variant name -> weight, for the variants the release moves (stable and canary). A rule
    /// whose split names all of them gets these weights; other rules keep theirs.
    pub weights: std::collections::BTreeMap<String, u32>,
    /// The release's state (`running`, `promoted`, `rolled_back`, ...), for display.
    #[serde(default)]
    pub state: String,
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

/// A container that holds GPUs, from the kubelet's PodResources API.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FeedPod {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub container: String,
    #[serde(default)]
    pub gpus: Vec<FeedPodGpu>,
}

/// A GPU a container holds: the device ID the device plugin gave it (a GPU UUID `GPU-...`, or
/// `MIG-...`) and the GPU's index on the node when the UUID is one the node's GPUs reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FeedPodGpu {
    #[serde(default)]
    pub uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
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
    fn pods_are_written_only_when_present_and_read_with_defaults() {
        let mut doc: FeedDoc = serde_json::from_str(SERVED).unwrap();
        assert!(doc.pods.is_empty());
        doc.pods = vec![FeedPod {
            namespace: "models".into(),
            name: "llama-0".into(),
            container: "vllm".into(),
            gpus: vec![
                FeedPodGpu {
                    uuid: "GPU-1".into(),
                    index: Some(1),
                },
                FeedPodGpu {
                    uuid: "MIG-x".into(),
                    index: None,
                },
            ],
        }];
        let text = serde_json::to_string(&doc).unwrap();
        assert!(
            text.ends_with(concat!(
                r#""pods":[{"namespace":"models","name":"llama-0","container":"vllm","#,
                r#""gpus":[{"uuid":"GPU-1","index":1},{"uuid":"MIG-x"}]}]}"#
            )),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<FeedDoc>(&text).unwrap(), doc);
        let bare: FeedDoc = serde_json::from_str(
            r#"{"version":1,"node":"n","pods":[{"namespace":"a","name":"b","gpus":[{}]}]}"#,
        )
        .unwrap();
        assert_eq!(bare.pods[0].container, "");
        assert_eq!(bare.pods[0].gpus[0], FeedPodGpu::default());
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
