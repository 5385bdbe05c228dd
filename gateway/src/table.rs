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
use rand::Rng;
use tokio::time::Instant;

use crate::endpoint::{
    EjectReason, EndpointRegistry, EndpointState, Failure, InFlight, OutlierPolicy,
};
use crate::metrics::{EndpointMetrics, Metrics, RouteMetrics};
use crate::retry::RetryBudget;
use crate::route::{
    Cond, LabelSources, Matcher, ModelRoute, Rule, ShadowRt, Source, SplitRt, Variant,
};
use http::{HeaderName, HeaderValue};
use tokio::sync::Semaphore;

/// The pooled HTTP client used to reach model servers (`http://` and `https://`).
pub type UpstreamClient = Client<crate::tls::UpstreamConnector, Full<Bytes>>;

/// The compiled routing table.
pub struct Table {
    models: HashMap<Box<str>, Arc<ModelRoute>>,
    /// `GET /v1/models`, rendered once.
    pub models_json: Bytes,
    pub limits: Limits,
    pub retry_budget: Arc<RetryBudget>,
    /// Bearer token for `/admin/*`, resolved from `token` or `token_env`.
    pub admin_token: Option<Box<str>>,
    /// `request_labels`, in order.
    pub labels: LabelSources,
    pub pin_header: HeaderName,
    backends: Vec<Arc<BackendRt>>,
}

/// Limits of the data listener, as the data path uses them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_in_flight: u32,
}

impl Table {
    pub fn route(&self, model: &str) -> Option<&Arc<ModelRoute>> {
        self.models.get(model)
    }

    /// Every model's route.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<ModelRoute>> {
        self.models.values()
    }

    pub fn backends(&self) -> &[Arc<BackendRt>] {
        &self.backends
    }
}

/// Upstream timeouts of a backend.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_token: Duration,
    pub idle: Duration,
    pub total: Duration,
}

/// When to try another endpoint.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub on_status: Vec<u16>,
}

impl RetryPolicy {
    pub fn retries_status(&self, status: http::StatusCode) -> bool {
        self.on_status.contains(&status.as_u16())
    }
}

/// A backend as the data path uses it.
pub struct BackendRt {
    pub name: Box<str>,
    pub endpoints: Vec<EndpointRt>,
    pub timeouts: Timeouts,
    pub max_in_flight: Option<u32>,
    pub retry: RetryPolicy,
    pub outlier: OutlierPolicy,
    pub client: UpstreamClient,
}

/// One upstream endpoint: its address split for building request URIs, and its shared state.
pub struct EndpointRt {
    pub state: Arc<EndpointState>,
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix without a trailing slash; empty for none.
    pub prefix: Box<str>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub metrics: EndpointMetrics,
}

impl BackendRt {
    /// Power of two choices on in-flight requests: two distinct endpoints at random among those
    /// that take traffic (not ejected, not in `exclude`), the less loaded wins. An endpoint at
    /// its in-flight limit is passed over. When no endpoint takes traffic, the one whose ejection
    /// ends first is used: traffic still flows to the least bad. `None` when every endpoint not
    /// excluded is full.
    ///
    /// `members` are the endpoint indices to choose from (a variant's endpoints); `exclude` and
    /// the returned index are positions in `members`.
    pub fn pick(
        &self,
        members: &[usize],
        exclude: &[usize],
        now: Instant,
    ) -> Option<(usize, InFlight)> {
        let n = members.len();
        let limit = self.max_in_flight;
        let ep = |i: usize| &self.endpoints[members[i]];
        let try_take = |i: usize| ep(i).state.try_acquire(limit).map(|g| (i, g));
        let load = |i: usize| ep(i).state.in_flight();
        let usable = |i: usize| !exclude.contains(&i) && !ep(i).state.is_ejected(now);
        let better = |a: usize, b: usize| if load(b) < load(a) { (b, a) } else { (a, b) };

        if n >= 2 {
            // Fast path: two distinct random endpoints, both usable.
            let mut rng = rand::rng();
            let a = rng.random_range(0..n);
            let mut b = rng.random_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            if usable(a) && usable(b) {
                let (first, second) = better(a, b);
                if let Some(t) = try_take(first).or_else(|| try_take(second)) {
                    return Some(t);
                }
            }
        }
        let candidates: Vec<usize> = (0..n).filter(|&i| usable(i)).collect();
        match candidates.len() {
            0 => {}
            1 => {
                if let Some(t) = try_take(candidates[0]) {
                    return Some(t);
                }
            }
            k => {
                let mut rng = rand::rng();
                let a = rng.random_range(0..k);
                let mut b = rng.random_range(0..k - 1);
                if b >= a {
                    b += 1;
                }
                let (first, second) = better(candidates[a], candidates[b]);
                if let Some(t) = try_take(first).or_else(|| try_take(second)) {
                    return Some(t);
                }
                let mut by_load = candidates.clone();
                by_load.sort_by_key(|&i| load(i));
                if let Some(t) = by_load.into_iter().find_map(try_take) {
                    return Some(t);
                }
            }
        }
        if !candidates.is_empty() {
            return None;
        }
        // Nothing usable: the outlier-ejected endpoint that comes back first, if not excluded.
        // An endpoint on an unhealthy GPU never gets traffic this way.
        let mut ejected: Vec<(Instant, usize)> = (0..n)
            .filter(|&i| !exclude.contains(&i) && !ep(i).state.feed_blocked(now))
            .map(|i| {
                let until = ep(i).state.ejection(now).map_or(now, |e| e.0);
                (until, i)
            })
            .collect();
        ejected.sort_unstable();
        ejected.into_iter().find_map(|(_, i)| try_take(i))
    }

    /// Records a failed attempt on endpoint `i`; ejects it when its failure streak reached the
    /// threshold and the backend's ejection cap allows. Returns the ejection's end.
    pub fn on_failure(&self, i: usize, failure: Failure, now: Instant) -> Option<Instant> {
        let ep = self.endpoints.get(i)?;
        ep.metrics.failure(failure);
        if !ep.state.record_failure(&self.outlier) {
            return None;
        }
        let n = self.endpoints.len();
        let cap = (n * self.outlier.max_ejected_percent as usize / 100).min(n - 1);
        let ejected = self
            .endpoints
            .iter()
            .filter(|e| e.state.outlier_ejected(now))
            .count();
        if ejected >= cap {
            return None;
        }
        let until = ep
            .state
            .eject(EjectReason::ConsecutiveFailures, &self.outlier, now)?;
        ep.metrics.ejections.inc();
        tracing::warn!(
            backend = %self.name,
            endpoint = %ep.state.url,
            reason = EjectReason::ConsecutiveFailures.as_str(),
            seconds = (until - now).as_secs_f64(),
            "endpoint ejected"
        );
        Some(until)
    }
}

/// The settings a retry budget was made with (ratio as bits, floor).
type BudgetKey = (u64, u32);

/// Compiles configs into tables. Keeps what must outlive one snapshot: endpoint state and the
/// upstream clients (with their connection pools).
pub struct Compiler {
    metrics: Arc<Metrics>,
    endpoints: EndpointRegistry,
    clients: Mutex<HashMap<String, UpstreamClient>>,
    retry_budget: Mutex<Option<(BudgetKey, Arc<RetryBudget>)>>,
}

impl Compiler {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Compiler {
            metrics,
            endpoints: EndpointRegistry::default(),
            clients: Mutex::new(HashMap::new()),
            retry_budget: Mutex::new(None),
        }
    }

    /// The retry budget; kept across reloads while its settings stay the same.
    fn retry_budget(&self, ratio: f64, min_per_second: u32) -> Arc<RetryBudget> {
        let mut cur = self
            .retry_budget
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (ratio.to_bits(), min_per_second);
        match &*cur {
            Some((k, b)) if *k == key => b.clone(),
            _ => {
                let b = Arc::new(RetryBudget::new(ratio, min_per_second));
                *cur = Some((key, b.clone()));
                b
            }
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The pooled client for a connect timeout and TLS settings; kept across reloads, so that
    /// connection pools survive them.
    fn client(
        &self,
        connect_timeout: Duration,
        tls: &infergate_config::UpstreamTls,
    ) -> Result<UpstreamClient, crate::tls::TlsError> {
        let key = format!("{connect_timeout:?}|{tls:?}");
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = crate::tls::upstream_connector(tls, http)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Compiles one model's variants and rules.
    fn compile_model(
        &self,
        path: &str,
        m: &infergate_config::Model,
        backends: &HashMap<&str, Arc<BackendRt>>,
        labels: &LabelSources,
    ) -> Result<ModelRoute, Vec<ConfigError>> {
        let mut errs = Vec::new();
        let err = |path: String, reason: String| ConfigError { path, reason };
        // The simple form is one variant named after the backend, all endpoints, one rule.
        let simple;
        let (variants_cfg, routes_cfg): (
            &[infergate_config::Variant],
            Vec<infergate_config::Route>,
        ) = match &m.backend {
            Some(b) => {
                simple = [infergate_config::Variant {
                    name: b.clone(),
                    backend: b.clone(),
                    selector: Default::default(),
                }];
                let rule = infergate_config::Route {
                    name: Some("default".into()),
                    matches: Default::default(),
                    split: vec![infergate_config::SplitEntry {
                        variant: b.clone(),
                        weight: 1,
                    }],
                    sticky: None,
                    allow_pin: false,
                    shadow: None,
                };
                (&simple[..], vec![rule])
            }
            None => (&m.variants[..], m.routes.clone()),
        };
        let shadowed: Vec<&str> = routes_cfg
            .iter()
            .filter_map(|r| r.shadow.as_ref().map(|s| s.variant.as_str()))
            .collect();
        let mut variants = Vec::new();
        for (j, v) in variants_cfg.iter().enumerate() {
            let Some(backend) = backends.get(v.backend.as_str()) else {
                errs.push(err(
                    format!("{path}.variants[{j}].backend"),
                    format!("unknown backend {:?}", v.backend),
                ));
                continue;
            };
            let members: Vec<usize> = backend
                .endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| {
                    v.selector
                        .iter()
                        .all(|(k, val)| e.labels.get(k) == Some(val))
                })
                .map(|(i, _)| i)
                .collect();
            let handles = |variant: &str| -> Vec<RouteMetrics> {
                members
                    .iter()
                    .map(|&e| {
                        self.metrics.route(
                            &m.name,
                            &backend.name,
                            variant,
                            &backend.endpoints[e].state.url,
                        )
                    })
                    .collect()
            };
            let shadow_metrics = if shadowed.contains(&v.name.as_str()) {
                handles(&format!("shadow:{}", v.name))
            } else {
                Vec::new()
            };
            variants.push(Variant {
                name: v.name.as_str().into(),
                header: HeaderValue::from_str(&v.name)
                    .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
                backend: backend.clone(),
                metrics: handles(&v.name),
                shadow_metrics,
                unrouted: self.metrics.route(&m.name, &backend.name, &v.name, ""),
                members,
            });
        }
        let index = |name: &str| variants.iter().position(|v| v.name.as_ref() == name);
        let mut rules = Vec::new();
        for (r, rc) in routes_cfg.iter().enumerate() {
            let rpath = format!("{path}.routes[{r}]");
            let mut matchers = Vec::new();
            for (kind, list) in [
                ("headers", &rc.matches.headers),
                ("cookies", &rc.matches.cookies),
                ("labels", &rc.matches.labels),
            ] {
                for (k, vm) in list.iter().enumerate() {
                    let mpath = format!("{rpath}.match.{kind}[{k}]");
                    let source = match kind {
                        "headers" => match HeaderName::from_bytes(vm.name.as_bytes()) {
                            Ok(h) => Source::Header(h),
                            Err(_) => {
                                errs.push(err(mpath, "not a header name".into()));
                                continue;
                            }
                        },
                        "cookies" => Source::Cookie(vm.name.as_str().into()),
                        _ => match labels.0.iter().position(|(n, _)| n.as_ref() == vm.name) {
                            Some(i) => Source::Label(i),
                            None => {
                                errs.push(err(
                                    mpath,
                                    format!("unknown request label {:?}", vm.name),
                                ));
                                continue;
                            }
                        },
                    };
                    let cond = if let Some(x) = &vm.exact {
                        Cond::Exact(x.as_str().into())
                    } else if let Some(p) = &vm.prefix {
                        Cond::Prefix(p.as_str().into())
                    } else if let Some(re) = &vm.regex {
                        match regex_lite::Regex::new(&format!("^(?:{re})$")) {
                            Ok(re) => Cond::Regex(re),
                            Err(e) => {
                                errs.push(err(
                                    format!("{mpath}.regex"),
                                    format!("invalid regex: {e}"),
                                ));
                                continue;
                            }
                        }
                    } else {
                        Cond::Present(vm.present.unwrap_or(true))
                    };
                    matchers.push(Matcher { source, cond });
                }
            }
            let mut split = Vec::new();
            for (k, e) in rc.split.iter().enumerate() {
                match index(&e.variant) {
                    Some(v) if e.weight > 0 => split.push(SplitRt {
                        variant: v,
                        name: e.variant.as_str().into(),
                        weight: e.weight,
                    }),
                    Some(_) => {}
                    None => errs.push(err(
                        format!("{rpath}.split[{k}].variant"),
                        format!("unknown variant {:?}", e.variant),
                    )),
                }
            }
            let sticky = rc
                .sticky
                .as_ref()
                .and_then(|st| key_source(&st.header, &st.cookie));
            let shadow = rc.shadow.as_ref().and_then(|sh| {
                index(&sh.variant).map(|variant| ShadowRt {
                    variant,
                    percent: sh.percent,
                    permits: Arc::new(Semaphore::new(sh.max_concurrency as usize)),
                })
            });
            rules.push(Rule {
                name: rc
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("routes[{r}]"))
                    .into(),
                matchers,
                total: split.iter().map(|s| u64::from(s.weight)).sum(),
                split,
                sticky,
                allow_pin: rc.allow_pin,
                shadow,
            });
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(ModelRoute {
            name: m.name.as_str().into(),
            variants,
            rules,
            config: m.clone(),
        })
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
                        let state = self.endpoints.get_or_create(url);
                        state.set_require_warm(e.require_warm);
                        endpoints.push(EndpointRt {
                            state,
                            scheme,
                            authority,
                            prefix,
                            labels: e.labels.clone(),
                            metrics: self.metrics.endpoint(&b.name, url),
                        })
                    }
                    Err(reason) => errs.push(ConfigError {
                        path: format!("backends[{i}].endpoints[{j}].url"),
                        reason,
                    }),
                }
            }
            let t = &b.timeouts;
            let client = match self.client(t.connect.get(), &b.tls) {
                Ok(c) => c,
                Err(e) => {
                    errs.push(ConfigError {
                        path: format!("backends[{i}].tls"),
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
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
                retry: RetryPolicy {
                    max_attempts: b.retry.max_attempts,
                    on_status: b.retry.on_status.clone(),
                },
                outlier: OutlierPolicy {
                    consecutive_failures: b.outlier.consecutive_failures,
                    base_ejection: b.outlier.base_ejection.get(),
                    max_ejection: b.outlier.max_ejection.get(),
                    max_ejected_percent: b.outlier.max_ejected_percent,
                },
                client,
            });
            backends.insert(b.name.as_str(), rt.clone());
            ordered.push(rt);
        }

        let mut models = HashMap::new();
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut listed = Vec::new();
        let labels = LabelSources(
            cfg.request_labels
                .iter()
                .map(|(name, src)| {
                    // Validation guarantees a source; an empty cookie name never matches.
                    let source = key_source(&src.header, &src.cookie)
                        .unwrap_or_else(|| Source::Cookie("".into()));
                    (name.as_str().into(), source)
                })
                .collect(),
        );
        for (i, m) in cfg.models.iter().enumerate() {
            match self.compile_model(&format!("models[{i}]"), m, &backends, &labels) {
                Ok(route) => {
                    models.insert(m.name.as_str().into(), Arc::new(route));
                }
                Err(mut e) => {
                    errs.append(&mut e);
                    continue;
                }
            }
            listed.push(serde_json::json!({
                "id": m.name,
                "object": "model",
                "created": created,
                "owned_by": "infergate",
            }));
        }
        let admin = &cfg.listeners.admin;
        let admin_token = match (&admin.token, &admin.token_env) {
            (Some(t), _) => Some(t.0.as_str().into()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) if v.len() >= 16 => Some(v.into_boxed_str()),
                Ok(_) => {
                    errs.push(ConfigError {
                        path: "listeners.admin.token_env".into(),
                        reason: format!("the token in ${var} must be at least 16 characters"),
                    });
                    None
                }
                Err(_) => {
                    errs.push(ConfigError {
                        path: "listeners.admin.token_env".into(),
                        reason: format!("environment variable {var} is not set"),
                    });
                    None
                }
            },
            (None, None) => None,
        };
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        let models_json =
            Bytes::from(serde_json::json!({"object": "list", "data": listed}).to_string());
        Ok(Table {
            models,
            models_json,
            limits: Limits {
                max_body_bytes: cfg.limits.max_body_bytes.get(),
                max_in_flight: cfg.limits.max_in_flight,
            },
            retry_budget: self
                .retry_budget(cfg.retry_budget.ratio, cfg.retry_budget.min_per_second),
            admin_token,
            labels,
            pin_header: HeaderName::from_bytes(cfg.pin_header.as_bytes())
                .unwrap_or(HeaderName::from_static("x-infergate-variant")),
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

/// Where a key is read from: the header when one is named (and valid), else the cookie.
fn key_source(header: &Option<String>, cookie: &Option<String>) -> Option<Source> {
    match (header, cookie) {
        (Some(h), _) => HeaderName::from_bytes(h.as_bytes())
            .ok()
            .map(Source::Header),
        (None, Some(c)) => Some(Source::Cookie(c.as_str().into())),
        (None, None) => None,
    }
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

    fn all(b: &BackendRt) -> Vec<usize> {
        (0..b.endpoints.len()).collect()
    }

    #[tokio::test]
    async fn p2c_prefers_the_less_loaded_endpoint() {
        let t = table(
            "{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2/v1/'}",
            "",
        );
        let b = &t.route("m").unwrap().variants[0].backend;
        assert_eq!(b.endpoints[1].prefix.as_ref(), "/v1");
        let busy: Vec<_> = (0..5).map(|_| b.endpoints[0].state.acquire()).collect();
        for _ in 0..100 {
            let (i, _g) = b.pick(&all(b), &[], Instant::now()).unwrap();
            assert_eq!(i, 1);
        }
        drop(busy);
        let mut seen = [0i32; 2];
        let mut held = Vec::new();
        for _ in 0..100 {
            let (i, g) = b.pick(&all(b), &[], Instant::now()).unwrap();
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
        let b = &t.route("m").unwrap().variants[0].backend;
        let held: Vec<_> = (0..6)
            .map(|_| b.pick(&all(b), &[], Instant::now()).expect("capacity left"))
            .collect();
        assert!(b.endpoints.iter().all(|e| e.state.in_flight() == 2));
        assert!(b.pick(&all(b), &[], Instant::now()).is_none());
        drop(held);
        assert!(b.pick(&all(b), &[], Instant::now()).is_some());
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
