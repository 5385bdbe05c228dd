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
    /// Graceful shutdown.
    #[serde(default)]
    pub shutdown: Shutdown,
    /// Gateway-wide cap on retries.
    #[serde(default)]
    pub retry_budget: RetryBudget,
    /// Pools of model-server endpoints. Each backend is referenced by name from `models`.
    pub backends: Vec<Backend>,
    /// Models served by the gateway, matched against the `model` field of request bodies.
    pub models: Vec<Model>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listeners {
    /// The OpenAI-compatible API that clients call.
    pub data: DataListener,
    /// Metrics, health checks and the admin API. Keep it on loopback or a private network.
    pub admin: AdminListener,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataListener {
    /// `IP:PORT` to bind, e.g. `127.0.0.1:9100` or `0.0.0.0:8080`. Port 0 picks a free port.
    pub address: String,
    /// Terminate TLS on this listener. Default: plain HTTP (HTTP/1.1 and h2c).
    #[serde(default)]
    pub tls: Option<ServerTls>,
}

#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminListener {
    /// `IP:PORT` to bind. Default in the examples: loopback.
    pub address: String,
    /// Bearer token required on every `/admin/*` call. Prefer `token_env`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Name of an environment variable that holds the bearer token.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// A secret string. Shown as `"***"` whenever the config is printed.
#[derive(Clone, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// Certificate and key for TLS termination. Both files are PEM and are re-read when they
/// change, without a restart.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// Certificate chain, leaf first (PEM).
    pub cert_file: String,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

/// TLS to `https://` endpoints of a backend.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTls {
    /// CA bundle (PEM) to verify endpoints with. Default: the system's roots.
    pub ca_file: Option<String>,
    /// Client certificate chain (PEM) for mutual TLS. Needs `key_file`.
    pub cert_file: Option<String>,
    /// Client private key (PEM) for mutual TLS. Needs `cert_file`.
    pub key_file: Option<String>,
}

/// Graceful shutdown on SIGTERM.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// After SIGTERM, how long in-flight requests may take to finish before the gateway exits
    /// anyway. Default `30s`.
    pub drain_timeout: Dur,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            drain_timeout: Dur::secs(30),
        }
    }
}

/// Retries across all backends are capped at a share of requests, so that retries cannot
/// multiply load on a failing fleet.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryBudget {
    /// Retries allowed as a fraction of requests (over the last 10 s). Default `0.2`.
    pub ratio: f64,
    /// Retries allowed per second whatever the request rate. Default `10`.
    pub min_per_second: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            ratio: 0.2,
            min_per_second: 10,
        }
    }
}

/// Limits applied on the data listener.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted; larger bodies get 413. Default `8MiB`.
    pub max_body_bytes: ByteSize,
    /// Largest request head (request line and headers); larger heads get 431. Default `64KiB`.
    pub max_header_bytes: ByteSize,
    /// Most request headers; more get 431. Default `100`.
    pub max_headers: u32,
    /// Time a client has to send a complete request head. Default `30s`.
    pub header_read_timeout: Dur,
    /// An idle keep-alive connection (no request in flight) is closed after this. Default `60s`.
    pub keepalive_timeout: Dur,
    /// Most open client connections; further connections are answered 503 and closed.
    /// Default `10000`.
    pub max_connections: u32,
    /// Most requests in flight on the data listener; further requests get 503 with
    /// `Retry-After`. Default `4096`.
    pub max_in_flight: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: ByteSize::mib(8),
            max_header_bytes: ByteSize::kib(64),
            max_headers: 100,
            header_read_timeout: Dur::secs(30),
            keepalive_timeout: Dur::secs(60),
            max_connections: 10_000,
            max_in_flight: 4096,
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
    /// Retries on another endpoint, before anything was sent to the client.
    #[serde(default)]
    pub retry: Retry,
    /// Passive outlier detection: ejection of failing endpoints.
    #[serde(default)]
    pub outlier: Outlier,
    /// TLS settings for `https://` endpoints.
    #[serde(default)]
    pub tls: UpstreamTls,
}

/// When a request is tried again on a different endpoint. Only before anything was sent to the
/// client; never after the first byte.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Most attempts per request, the first included; 1 disables retries. Default `3`.
    pub max_attempts: u32,
    /// Upstream statuses that are retried. Connect errors, resets and connect/first-token
    /// timeouts are always retryable. Default `[429, 502, 503]`.
    pub on_status: Vec<u16>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 3,
            on_status: vec![429, 502, 503],
        }
    }
}

/// Passive outlier detection.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Outlier {
    /// Consecutive failures (5xx, connect errors, resets, timeouts, stalls) that eject an
    /// endpoint; 0 disables ejection. Default `5`.
    pub consecutive_failures: u32,
    /// First ejection lasts this long; each further ejection of the same endpoint doubles it.
    /// Default `10s`.
    pub base_ejection: Dur,
    /// Longest ejection. Default `5m`.
    pub max_ejection: Dur,
    /// Most endpoints of the backend ejected at once, in percent (at least one endpoint always
    /// stays in). Default `50`.
    pub max_ejected_percent: u32,
}

impl Default for Outlier {
    fn default() -> Self {
        Outlier {
            consecutive_failures: 5,
            base_ejection: Dur::secs(10),
            max_ejection: Dur::secs(300),
            max_ejected_percent: 50,
        }
    }
}

/// One model server.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Base URL, `http://host:port` or `https://host:port` (an optional path prefix is kept).
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
