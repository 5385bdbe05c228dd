//! The configuration schema. Every struct rejects unknown fields; every optional field has a
//! default documented here and in `docs/config.md`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, Dur};

/// The whole gateway configuration.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The data (client traffic) and admin (metrics, health, admin API) listeners.
    pub listeners: Listeners,
    /// Limits on what a client controls.
    #[serde(default)]
    pub limits: Limits,
    /// Pools of model-server endpoints. Each backend is referenced by name from `models`.
    pub backends: Vec<Backend>,
    /// Models served by the gateway, matched against the `model` field of request bodies.
    pub models: Vec<Model>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// The OpenAI-compatible API that clients call.
    pub data: Listener,
    /// Metrics, health checks and the admin API. Keep it on loopback or a private network.
    pub admin: Listener,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `IP:PORT` to bind, e.g. `127.0.0.1:9100` or `0.0.0.0:8080`. Port 0 picks a free port.
    pub address: String,
}

/// Limits applied on the data listener.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted; larger bodies get 413. Default `8MiB`.
    pub max_body_bytes: ByteSize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: ByteSize::mib(8),
        }
    }
}

/// A pool of model-server endpoints that serve the same model(s).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Unique name, referenced by `models[].backend`.
    pub name: String,
    /// The model servers of this backend. At least one.
    pub endpoints: Vec<Endpoint>,
    /// Upstream timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Per-endpoint limits.
    #[serde(default)]
    pub limits: BackendLimits,
}

/// One model server.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Base URL, `http://host:port` (an optional path prefix is kept; `https://` needs TLS
    /// support and is rejected for now).
    pub url: String,
    /// Free-form labels such as `node`, `gpus`, `version`. Used by health feeds and routing.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Upstream timeouts of a backend. A timeout before anything was sent to the client answers 504.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// Establishing the TCP connection to an endpoint. Default `5s`.
    pub connect: Dur,
    /// From sending the request to the first response body frame (for streams, the first
    /// event). Default `60s`.
    pub first_token: Dur,
    /// Longest gap between two response body frames once the response started. Default `30s`.
    pub idle: Dur,
    /// Whole request, from arrival to the end of the response. Default `15m`.
    pub total: Dur,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Dur::secs(5),
            first_token: Dur::secs(60),
            idle: Dur::secs(30),
            total: Dur::secs(15 * 60),
        }
    }
}

/// Limits per endpoint of a backend.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackendLimits {
    /// Most requests in flight on one endpoint; when every endpoint is full the gateway answers
    /// 503. Default: unlimited.
    pub max_in_flight_per_endpoint: Option<u32>,
}

/// A model name clients use, and where its traffic goes.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The name in the request body's `model` field, and in `GET /v1/models`.
    pub name: String,
    /// The backend that serves it.
    pub backend: String,
}
