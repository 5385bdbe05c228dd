//! The routing table: an immutable snapshot compiled from a valid config. Requests load it once
//! and keep what they need (`Arc<ModelRoute>`) for the life of their stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use infergate_config::{Config, ConfigError, ConfigErrors};
use prometheus::IntGauge;
use rand::Rng;

use crate::endpoint::{EndpointRegistry, EndpointState, InFlight};
use crate::metrics::{Metrics, RouteMetrics};

/// The pooled HTTP client used to reach model servers.
pub type UpstreamClient = Client<HttpConnector, Full<Bytes>>;

/// The compiled routing table.
pub struct Table {
    models: HashMap<Box<str>, Arc<ModelRoute>>,
    /// `GET /v1/models`, rendered once.
    pub models_json: Bytes,
    pub max_body_bytes: u64,
    backends: Vec<Arc<BackendRt>>,
}

impl Table {
    pub fn route(&self, model: &str) -> Option<&Arc<ModelRoute>> {
        self.models.get(model)
    }

    pub fn backends(&self) -> &[Arc<BackendRt>] {
        &self.backends
    }
}

/// Where one model's traffic goes.
pub struct ModelRoute {
    pub name: Box<str>,
    pub variant: Box<str>,
    pub backend: Arc<BackendRt>,
    /// One set per endpoint of `backend`, in the same order.
    pub metrics: Vec<RouteMetrics>,
    /// For outcomes with no endpoint (every endpoint full or unhealthy).
    pub unrouted: RouteMetrics,
}

/// Upstream timeouts of a backend.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_token: Duration,
    pub idle: Duration,
    pub total: Duration,
}

/// A backend as the data path uses it.
pub struct BackendRt {
    pub name: Box<str>,
    pub endpoints: Vec<EndpointRt>,
    pub timeouts: Timeouts,
    pub max_in_flight: Option<u32>,
    pub client: UpstreamClient,
}

/// One upstream endpoint: its address split for building request URIs, and its shared state.
pub struct EndpointRt {
    pub state: Arc<EndpointState>,
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix without a trailing slash; empty for none.
    pub prefix: Box<str>,
    pub in_flight_gauge: IntGauge,
}

impl BackendRt {
    /// Power of two choices on in-flight requests: two distinct endpoints at random, the less
    /// loaded wins. An endpoint at its in-flight limit is passed over; `None` when all are full.
    pub fn pick(&self) -> Option<(usize, InFlight)> {
        let n = self.endpoints.len();
        let limit = self.max_in_flight;
        let try_take = |i: usize| self.endpoints[i].state.try_acquire(limit).map(|g| (i, g));
        match n {
            0 => None,
            1 => try_take(0),
            _ => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                let mut b = rng.random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let load = |i: usize| self.endpoints[i].state.in_flight();
                let (first, second) = if load(b) < load(a) { (b, a) } else { (a, b) };
                try_take(first).or_else(|| try_take(second)).or_else(|| {
                    let mut order: Vec<usize> = (0..n).collect();
                    order.sort_by_key(|&i| load(i));
                    order.into_iter().find_map(try_take)
                })
            }
        }
    }
}

/// Compiles configs into tables. Keeps what must outlive one snapshot: endpoint state and the
/// upstream clients (with their connection pools).
pub struct Compiler {
    metrics: Arc<Metrics>,
    endpoints: EndpointRegistry,
    clients: Mutex<HashMap<Duration, UpstreamClient>>,
}

impl Compiler {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Compiler {
            metrics,
            endpoints: EndpointRegistry::default(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn client(&self, connect_timeout: Duration) -> UpstreamClient {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(connect_timeout)
            .or_insert_with(|| {
                let mut conn = HttpConnector::new();
                conn.set_nodelay(true);
                conn.set_connect_timeout(Some(connect_timeout));
                conn.set_keepalive(Some(Duration::from_secs(60)));
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build(conn)
            })
            .clone()
    }

    /// Builds a table from a config that passed validation.
    pub fn compile(&self, cfg: &Config) -> Result<Table, ConfigErrors> {
        let mut errs = Vec::new();
        let mut backends: HashMap<&str, Arc<BackendRt>> = HashMap::new();
        let mut ordered = Vec::new();
        for (i, b) in cfg.backends.iter().enumerate() {
            let mut endpoints = Vec::with_capacity(b.endpoints.len());
            for (j, e) in b.endpoints.iter().enumerate() {
                match split_url(&e.url) {
                    Ok((scheme, authority, prefix)) => {
                        let url = e.url.trim_end_matches('/');
                        endpoints.push(EndpointRt {
                            state: self.endpoints.get_or_create(url),
                            scheme,
                            authority,
                            prefix,
                            in_flight_gauge: self.metrics.in_flight_gauge(&b.name, url),
                        })
                    }
                    Err(reason) => errs.push(ConfigError {
                        path: format!("backends[{i}].endpoints[{j}].url"),
                        reason,
                    }),
                }
            }
            let t = &b.timeouts;
            let rt = Arc::new(BackendRt {
                name: b.name.as_str().into(),
                endpoints,
                timeouts: Timeouts {
                    connect: t.connect.get(),
                    first_token: t.first_token.get(),
                    idle: t.idle.get(),
                    total: t.total.get(),
                },
                max_in_flight: b.limits.max_in_flight_per_endpoint,
                client: self.client(t.connect.get()),
            });
            backends.insert(b.name.as_str(), rt.clone());
            ordered.push(rt);
        }

        let mut models = HashMap::new();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut listed = Vec::new();
        for (i, m) in cfg.models.iter().enumerate() {
            let Some(backend) = backends.get(m.backend.as_str()) else {
                errs.push(ConfigError {
                    path: format!("models[{i}].backend"),
                    reason: format!("unknown backend {:?}", m.backend),
                });
                continue;
            };
            let variant = backend.name.as_ref();
            let metrics = backend
                .endpoints
                .iter()
                .map(|e| {
                    self.metrics
                        .route(&m.name, &backend.name, variant, &e.state.url)
                })
                .collect();
            models.insert(
                m.name.as_str().into(),
                Arc::new(ModelRoute {
                    name: m.name.as_str().into(),
                    variant: variant.into(),
                    backend: backend.clone(),
                    metrics,
                    unrouted: self.metrics.route(&m.name, &backend.name, variant, ""),
                }),
            );
            listed.push(serde_json::json!({
                "id": m.name,
                "object": "model",
                "created": created,
                "owned_by": "infergate",
            }));
        }
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        let models_json =
            Bytes::from(serde_json::json!({"object": "list", "data": listed}).to_string());
        Ok(Table {
            models,
            models_json,
            max_body_bytes: cfg.limits.max_body_bytes.get(),
            backends: ordered,
        })
    }
}

/// Splits `http://host:port/prefix` into its parts.
fn split_url(url: &str) -> Result<(Scheme, Authority, Box<str>), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    let parts = uri.into_parts();
    let scheme = parts
        .scheme
        .ok_or_else(|| format!("{url:?} has no scheme"))?;
    let authority = parts
        .authority
        .ok_or_else(|| format!("{url:?} has no host"))?;
    let prefix = parts
        .path_and_query
        .map(|p| p.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    Ok((scheme, authority, prefix.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(yaml_endpoints: &str, limit: &str) -> Table {
        let yaml = format!(
            "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
             backends: [{{ name: b, endpoints: [{yaml_endpoints}] {limit} }}]\n\
             models: [{{ name: m, backend: b }}]\n"
        );
        let cfg = Config::from_yaml(&yaml).unwrap();
        Compiler::new(Arc::new(Metrics::new().unwrap()))
            .compile(&cfg)
            .unwrap()
    }

    #[tokio::test]
    async fn p2c_prefers_the_less_loaded_endpoint() {
        let t = table(
            "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2/v1/'}",
            "",
        );
        let b = &t.route("m").unwrap().backend;
        assert_eq!(b.endpoints[1].prefix.as_ref(), "/v1");
        let busy: Vec<_> = (0..5).map(|_| b.endpoints[0].state.acquire()).collect();
        for _ in 0..100 {
            let (i, _g) = b.pick().unwrap();
            assert_eq!(i, 1);
        }
        drop(busy);
        let mut seen = [0i32; 2];
        let mut held = Vec::new();
        for _ in 0..100 {
            let (i, g) = b.pick().unwrap();
            seen[i] += 1;
            held.push(g);
        }
        // Load is balanced: picking keeps the two counts within one of each other.
        assert!((seen[0] - seen[1]).abs() <= 1, "{seen:?}");
    }

    #[tokio::test]
    async fn full_endpoints_are_passed_over() {
        let t = table(
            "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2'}, {url: 'http://127.0.0.1:3'}",
            ", limits: { max_in_flight_per_endpoint: 2 }",
        );
        let b = &t.route("m").unwrap().backend;
        let held: Vec<_> = (0..6).map(|_| b.pick().expect("capacity left")).collect();
        assert!(b.endpoints.iter().all(|e| e.state.in_flight() == 2));
        assert!(b.pick().is_none());
        drop(held);
        assert!(b.pick().is_some());
    }

    #[tokio::test]
    async fn models_list_is_openai_shaped() {
        let t = table("{url: 'http://127.0.0.1:1'}", "");
        let v: serde_json::Value = serde_json::from_slice(&t.models_json).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["id"], "m");
        assert_eq!(v["data"][0]["object"], "model");
    }
}
