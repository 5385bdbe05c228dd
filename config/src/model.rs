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
    /// Labels derived from each request, usable in `models[].routes[].match.labels`, e.g.
    /// `tenant: { header: x-tenant-id }`.
    #[serde(default)]
    pub request_labels: BTreeMap<String, LabelSource>,
    /// The request header that pins a variant on routes with `allow_pin`. Default
    /// `x-infergate-variant`.
    #[serde(default = "default_pin_header")]
    pub pin_header: String,
    /// Health feeds of `infergate-control` processes: endpoints on GPUs (by their `node` and
    /// `gpus` labels) that a feed reports unhealthy get no traffic.
    #[serde(default)]
    pub health_feeds: Vec<HealthFeed>,
    /// What the metrics page carries beyond the default (bounded) series.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// One JSON line per request. Off by default.
    #[serde(default)]
    pub access_log: crate::AccessLog,
    /// OpenTelemetry traces over OTLP/HTTP. Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<crate::Tracing>,
    /// Priority classes with bounded queues, and token rate limits per tenant
    /// (docs/admission.md). Off by default.
    #[serde(default)]
    pub admission: crate::admission::Admission,
    /// Pools of model-server endpoints. Each backend is referenced by name from `models`.
    pub backends: Vec<Backend>,
    /// Models served by the gateway, matched against the `model` field of request bodies.
    pub models: Vec<Model>,
    /// Routes by path: paths whose requests go to a model named here rather than by the body's
    /// `model` (Stable Diffusion WebUI, ComfyUI, any prefix). See docs/protocols.md.
    #[serde(default)]
    pub path_routes: Vec<crate::protocols::PathRoute>,
}

/// Metric series beyond the default ones. By default TTFT, TPOT and duration histograms carry
/// `model`, `backend` and `variant` labels, and per-endpoint series are counters and gauges.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Also export TTFT, TPOT and duration histograms per endpoint
    /// (`infergate_endpoint_*_seconds`, labels `model`, `backend`, `variant`, `endpoint`).
    /// Each endpoint of each variant adds about 110 series. Default `false`.
    #[serde(default)]
    pub endpoint_histograms: bool,
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

/// A control process's health feed.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthFeed {
    /// `http://host:port/v1/health` of an `infergate-control`. Either this or `kubernetes`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The control pods chosen by a selector: the feed of each node that hosts an endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<crate::FeedDiscovery>,
    /// When the feed cannot be read for this long, its last state is dropped and its endpoints
    /// fall back to passive health only (fail open). Default `30s`.
    #[serde(default = "default_stale_after")]
    pub stale_after: Dur,
    /// An endpoint whose GPU recovered gets traffic again only after this. Default `10s`.
    #[serde(default = "default_hold_down")]
    pub hold_down: Dur,
}

fn default_stale_after() -> Dur {
    Dur::secs(30)
}

fn default_hold_down() -> Dur {
    Dur::secs(10)
}

fn default_pin_header() -> String {
    "x-infergate-variant".into()
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
    /// Time a client has to send the whole request body, from the end of its head; past it the
    /// request gets 408 and the connection is closed. Default `30s`.
    pub body_read_timeout: Dur,
    /// An idle keep-alive connection (no request in flight) is closed after this. Default `60s`.
    pub keepalive_timeout: Dur,
    /// Most open client connections; further connections are answered 503 and closed.
    /// Default `10000`.
    pub max_connections: u32,
    /// Most requests in flight on the data listener; further requests get 503 with
    /// `Retry-After`. Default `4096`.
    pub max_in_flight: u32,
    /// Limits of HTTP/2 connections (h2c and ALPN `h2`).
    pub http2: Http2Limits,
}

/// Limits of the data listener's HTTP/2 connections; docs/security.md ("HTTP/2") gives the
/// attack each one stops.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Limits {
    /// Most streams (requests) open at once on one connection, announced as
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`; a stream over it is refused (`REFUSED_STREAM`).
    /// 1 to 10000. Default `200`.
    pub max_concurrent_streams: u32,
    /// Most streams the client opened and reset before the gateway took them up; one more and
    /// the connection is closed with GOAWAY `ENHANCE_YOUR_CALM` (the rapid-reset attack,
    /// CVE-2023-44487). 1 to 10000. Default `20`.
    pub max_pending_accept_reset_streams: u32,
    /// Flow-control window of each stream: how much of a request body the client may send
    /// before the gateway reads it. 64KiB to 16MiB. Default `1MiB`.
    pub initial_stream_window: ByteSize,
    /// Flow-control window of a whole connection, shared by its streams. 64KiB to 64MiB.
    /// Default `1MiB`.
    pub initial_connection_window: ByteSize,
    /// Interval of keep-alive PINGs on a connection; a PING not answered within
    /// `keepalive_ping_timeout` closes the connection. Unset (the default): no PINGs.
    pub keepalive_ping_interval: Option<Dur>,
    /// Time to answer a keep-alive PING. Default `20s`.
    pub keepalive_ping_timeout: Dur,
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_concurrent_streams: 200,
            max_pending_accept_reset_streams: 20,
            initial_stream_window: ByteSize::mib(1),
            initial_connection_window: ByteSize::mib(1),
            keepalive_ping_interval: None,
            keepalive_ping_timeout: Dur::secs(20),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: ByteSize::mib(8),
            max_header_bytes: ByteSize::kib(64),
            max_headers: 100,
            header_read_timeout: Dur::secs(30),
            body_read_timeout: Dur::secs(30),
            keepalive_timeout: Dur::secs(60),
            max_connections: 10_000,
            max_in_flight: 4096,
            http2: Http2Limits::default(),
        }
    }
}

/// A pool of model-server endpoints that serve the same model(s).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Unique name, referenced by `models[].backend`.
    pub name: String,
    /// The model servers of this backend: at least one, unless `discovery` finds them.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Take the endpoints from the cluster instead (`discovery: { kubernetes: {...} }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<crate::Discovery>,
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
    /// Endpoint choice: policy, prefix affinity, engine state (`docs/scheduling.md`).
    /// Default: power of two choices on in-flight requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<crate::Balancer>,
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
    pub labels: crate::Labels,
    /// Send traffic only once the health feed of the endpoint's `node` reports its model warm
    /// (the `model` label, and the `version` label when present). Default `false`.
    #[serde(default)]
    pub require_warm: bool,
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

/// A model name clients use, and where its traffic goes: either one `backend`, or named
/// `variants` (versions) chosen by ordered `routes`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The name in the request body's `model` field, and in `GET /v1/models`.
    pub name: String,
    /// The backend that serves it (the simple form: one variant named after the backend).
    #[serde(default)]
    pub backend: Option<String>,
    /// Versions of the model. Each is a backend, optionally narrowed to the endpoints whose
    /// labels match `selector`.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Ordered rules; the first whose `match` holds decides the split. Required with
    /// `variants`; the last rule usually has no `match` (it always holds).
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One version of a model.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Unique within the model; the `variant` metric label and the `x-infergate-variant`
    /// response header.
    pub name: String,
    /// The backend whose endpoints serve it.
    pub backend: String,
    /// Only the backend's endpoints whose labels include all of these, e.g. `{version: v2}`,
    /// so one pool of model servers can carry two versions. Default: all endpoints.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
}

/// A routing rule.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A name for logs, `explain` and `/admin/routes`. Default: `routes[N]`.
    #[serde(default)]
    pub name: Option<String>,
    /// Conditions that must all hold. Default: none (always holds).
    #[serde(default, rename = "match")]
    pub matches: RouteMatch,
    /// Variants and their weights (any positive scale; shares are weight / sum).
    pub split: Vec<SplitEntry>,
    /// Assign by a key (header or cookie) instead of at random: the same key always gets the
    /// same variant, and raising a variant's weight only moves keys to it.
    #[serde(default)]
    pub sticky: Option<StickyKey>,
    /// Let the pin header (`pin_header`, default `x-infergate-variant`) choose the variant.
    #[serde(default)]
    pub allow_pin: bool,
    /// Mirror a share of this rule's requests to another variant; the copy's response is read,
    /// measured and thrown away.
    #[serde(default)]
    pub shadow: Option<Shadow>,
}

/// Conditions on a request.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RouteMatch {
    /// Request headers (names are case-insensitive).
    pub headers: Vec<ValueMatch>,
    /// Cookies from the `Cookie` header.
    pub cookies: Vec<ValueMatch>,
    /// Labels derived from the request (see `request_labels`).
    pub labels: Vec<ValueMatch>,
}

/// A named value and how it must look. Exactly one of `exact`, `prefix`, `regex`, or `present`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValueMatch {
    pub name: String,
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    /// A regular expression that must match the whole value.
    #[serde(default)]
    pub regex: Option<String>,
    /// `true`: the value must be there (any value); `false`: it must be absent.
    #[serde(default)]
    pub present: Option<bool>,
}

/// A variant and its weight in a split.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SplitEntry {
    pub variant: String,
    /// 0 to 1000000; 0 keeps the variant in the rule without traffic.
    pub weight: u32,
}

/// Where a sticky key comes from. Exactly one of `header` or `cookie`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StickyKey {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
}

/// Shadow traffic.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Shadow {
    /// The variant that receives the copies.
    pub variant: String,
    /// Share of the rule's requests copied, 0 to 100 (fractions allowed).
    pub percent: f64,
    /// Most shadow requests in flight at once; past it, copies are skipped. Default `16`.
    #[serde(default = "default_shadow_concurrency")]
    pub max_concurrency: u32,
}

fn default_shadow_concurrency() -> u32 {
    16
}

/// Where a request label comes from. Exactly one of `header` or `cookie`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabelSource {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
}
