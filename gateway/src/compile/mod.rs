//! Builds routing tables. The compiler belongs to the writer task: it remembers what the live
//! table was built from, so that a new config or a new endpoint set rebuilds only what changed.
//!
//! - A backend whose config is unchanged keeps its `Arc<BackendRt>` (and so its endpoints).
//! - A model whose config is unchanged, whose backends were all kept, and whose request labels
//!   and metric settings are unchanged keeps its `Arc<ModelRoute>`.
//! - Endpoint state is found by URL (the endpoint registry), so an endpoint that stays keeps its
//!   in-flight count, outlier state and health whatever else is rebuilt.
//! - The metric series of models, variants and endpoints that left the table are removed.

mod backend;
mod model;
mod registry;
mod retire;
mod weights;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderName;
use infergate_config::{Config, ConfigError, ConfigErrors, LabelSource};

use crate::backend::BackendRt;
use crate::metrics::Metrics;
use crate::retry::RetryBudget;
use crate::route::{LabelSources, ModelRoute, Source};
use crate::status::unix_now;
use crate::table::{Limits, Table};

pub use model::key_source;
pub use weights::Weights;

/// The settings a retry budget was made with (ratio as bits, floor).
type BudgetKey = (u64, u32);

/// A backend of the live table: where its config is, and what was built from it.
struct BuiltBackend {
    /// Its index in the config the table was built from.
    index: usize,
    /// Its config with the endpoints given by `apply_endpoints`, when they replaced the file's.
    replaced: Option<Arc<infergate_config::Backend>>,
    rt: Arc<BackendRt>,
}

/// What the live table was built from. The config is shared with the config status, not
/// copied: an unchanged part is found by comparing the new config with it.
#[derive(Default)]
struct Built {
    config: Option<Arc<Config>>,
    backends: HashMap<Box<str>, BuiltBackend>,
    /// Name -> index in the config, and the route.
    models: HashMap<Box<str>, (usize, Arc<ModelRoute>)>,
    table: Option<Table>,
}

impl Built {
    /// The config backend `name` was last built from.
    fn backend_config(&self, name: &str) -> Option<&infergate_config::Backend> {
        let b = self.backends.get(name)?;
        match &b.replaced {
            Some(r) => Some(r),
            None => self.config.as_ref()?.backends.get(b.index),
        }
    }

    fn model_config(&self, index: usize) -> Option<&infergate_config::Model> {
        self.config.as_ref()?.models.get(index)
    }
}

/// What one build changed, reported to the writer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    pub backends: usize,
    pub models: usize,
}

pub struct Compiler {
    metrics: Arc<Metrics>,
    registry: registry::EndpointRegistry,
    clients: backend::Clients,
    retry_budget: Option<(BudgetKey, Arc<RetryBudget>)>,
    built: Built,
    /// The endpoints last given by `apply_endpoints` to each backend with `discovery`: a
    /// reload keeps them (the file has no list for such a backend).
    discovered: HashMap<Box<str>, Vec<infergate_config::Endpoint>>,
    /// Release weights by model (from the health feeds), applied over the config's splits.
    weights: HashMap<Box<str>, Arc<Weights>>,
    /// The weights each built model was compiled with.
    built_weights: HashMap<Box<str>, Arc<Weights>>,
    /// What the last build replaced, kept until [`Self::take_replaced`]: freeing a large
    /// config takes milliseconds that a reload's caller need not wait for.
    replaced: Option<Built>,
}

impl Compiler {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Compiler {
            metrics,
            registry: Default::default(),
            clients: Default::default(),
            retry_budget: None,
            built: Built::default(),
            discovered: HashMap::new(),
            weights: HashMap::new(),
            built_weights: HashMap::new(),
            replaced: None,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sets the release weights by model; the next build applies them (and rebuilds only the
    /// models whose weights changed).
    pub fn set_weights(&mut self, weights: HashMap<Box<str>, Arc<Weights>>) {
        self.weights = weights;
    }

    /// `m` with its release weights, when it has any that apply.
    fn with_weights(&self, m: &infergate_config::Model) -> Option<infergate_config::Model> {
        weights::weighted(m, self.weights.get(m.name.as_str())?)
    }

    /// The retry budget; kept across reloads while its settings stay the same.
    fn retry_budget(&mut self, ratio: f64, min_per_second: u32) -> Arc<RetryBudget> {
        let key = (ratio.to_bits(), min_per_second);
        match &self.retry_budget {
            Some((k, b)) if *k == key => b.clone(),
            _ => {
                let b = Arc::new(RetryBudget::new(ratio, min_per_second));
                self.retry_budget = Some((key, b.clone()));
                b
            }
        }
    }

    /// Builds a table from a config that passed validation, reusing what did not change. On
    /// error nothing is kept: the next build compares against the last successful one.
    pub fn compile(&mut self, cfg: &Arc<Config>) -> Result<Table, ConfigErrors> {
        self.compile_counted(cfg).map(|(t, _)| t)
    }

    /// [`Self::compile`], also saying how much was rebuilt.
    pub fn compile_counted(&mut self, cfg: &Arc<Config>) -> Result<(Table, Rebuilt), ConfigErrors> {
        let mut errs = Vec::new();
        let mut rebuilt = Rebuilt::default();
        let mut backends = HashMap::with_capacity(cfg.backends.len());
        let mut ordered = Vec::with_capacity(cfg.backends.len());
        let mut parts = backend::Parts {
            registry: &mut self.registry,
            clients: &mut self.clients,
            metrics: &self.metrics,
        };
        self.discovered.retain(|name, _| {
            cfg.backends
                .iter()
                .any(|b| b.name.as_str() == name.as_ref() && b.discovery.is_some())
        });
        for (i, b) in cfg.backends.iter().enumerate() {
            // A discovered backend is built with the endpoints discovery last gave it.
            let found = b.discovery.as_ref().map(|_| {
                Arc::new(infergate_config::Backend {
                    endpoints: self
                        .discovered
                        .get(b.name.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    ..b.clone()
                })
            });
            let effective = found.as_deref().unwrap_or(b);
            let kept = self
                .built
                .backend_config(&b.name)
                .filter(|old| *old == effective)
                .and_then(|_| self.built.backends.get(b.name.as_str()))
                .map(|old| old.rt.clone());
            let rt = match kept {
                Some(rt) => rt,
                None => {
                    rebuilt.backends += 1;
                    let path = format!("backends[{i}]");
                    match backend::build(&mut parts, &path, effective, &mut errs) {
                        Some(rt) => rt,
                        None => continue,
                    }
                }
            };
            backends.insert(Box::<str>::from(b.name.as_str()), rt.clone());
            ordered.push((i, rt, found));
        }

        let old_cfg = self.built.config.as_deref();
        let labels_same = old_cfg.is_some_and(|o| o.request_labels == cfg.request_labels);
        let labels = match (&self.built.table, labels_same) {
            (Some(t), true) => t.labels.clone(),
            _ => Arc::new(label_sources(&cfg.request_labels)),
        };
        let hist = cfg.metrics.endpoint_histograms;
        let hist_same = old_cfg.is_some_and(|o| o.metrics.endpoint_histograms == hist);
        let mut models = HashMap::with_capacity(cfg.models.len());
        let mut listed = Vec::with_capacity(cfg.models.len());
        let created = unix_now();
        for (i, m) in cfg.models.iter().enumerate() {
            let kept = self
                .built
                .models
                .get(m.name.as_str())
                .filter(|(index, route)| {
                    labels_same
                        && hist_same
                        && self.built.model_config(*index) == Some(m)
                        && self.built_weights.get(m.name.as_str())
                            == self.weights.get(m.name.as_str())
                        && uses_only(route, &backends)
                })
                .map(|(_, r)| r.clone());
            let route = match kept {
                Some(r) => r,
                None => {
                    rebuilt.models += 1;
                    let path = format!("models[{i}]");
                    let weighted = self.with_weights(m);
                    let m = weighted.as_ref().unwrap_or(m);
                    match model::compile_model(&self.metrics, hist, &path, m, &backends, &labels) {
                        Ok(r) => Arc::new(r),
                        Err(mut e) => {
                            errs.append(&mut e);
                            continue;
                        }
                    }
                }
            };
            models.insert(Box::<str>::from(m.name.as_str()), (i, route));
            listed.push(serde_json::json!({
                "id": m.name,
                "object": "model",
                "created": created,
                "owned_by": "infergate",
            }));
        }
        let admin_token = admin_token(cfg, &mut errs);
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        let table = Table {
            models: models
                .iter()
                .map(|(k, (_, r))| (k.clone(), r.clone()))
                .collect(),
            models_json: Bytes::from(
                serde_json::json!({"object": "list", "data": listed}).to_string(),
            ),
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
            path_routes: Arc::new(crate::protocols::paths::PathRoutes::compile(
                &cfg.path_routes,
                self.built.table.as_ref().map(|t| &*t.path_routes),
            )),
            admission: crate::admission::Admission::compile(
                cfg,
                self.built.table.as_ref().map(|t| &t.admission),
            ),
            backends: ordered.iter().map(|(_, rt, _)| rt.clone()).collect(),
        };
        if !hist_same && !hist {
            self.metrics.clear_endpoint_histograms();
        }
        let new_backends: HashMap<Box<str>, BuiltBackend> = ordered
            .into_iter()
            .map(|(index, rt, replaced)| {
                let name = Box::<str>::from(cfg.backends[index].name.as_str());
                let b = BuiltBackend {
                    index,
                    replaced,
                    rt,
                };
                (name, b)
            })
            .collect();
        retire::retire(
            &self.metrics,
            (routes(&self.built.models), routes(&models)),
            (runtimes(&self.built.backends), runtimes(&new_backends)),
        );
        self.built_weights = cfg
            .models
            .iter()
            .filter_map(|m| {
                let (k, w) = self.weights.get_key_value(m.name.as_str())?;
                Some((k.clone(), w.clone()))
            })
            .collect();
        let old = std::mem::replace(
            &mut self.built,
            Built {
                config: Some(cfg.clone()),
                backends: new_backends,
                models,
                table: Some(table.clone()),
            },
        );
        self.replaced = Some(old);
        self.registry.sweep();
        Ok((table, rebuilt))
    }

    /// What the last build replaced (the previous config, routes and table), for the caller to
    /// drop once it has answered.
    pub fn take_replaced(&mut self) -> Option<impl Send + 'static> {
        self.replaced.take()
    }

    /// Replaces the endpoints of backend `name` in the last table built, rebuilding only that
    /// backend and the models that use it. Endpoints that stay keep their state. Returns the
    /// new table, or why the set was refused (the last table stays).
    pub fn apply_endpoints(
        &mut self,
        name: &str,
        endpoints: Vec<infergate_config::Endpoint>,
    ) -> Result<(Table, Rebuilt), ConfigErrors> {
        let one = |path: String, reason: String| ConfigErrors(vec![ConfigError { path, reason }]);
        let (Some(last), Some(config)) = (self.built.table.clone(), self.built.config.clone())
        else {
            return Err(one(String::new(), "no table has been built yet".into()));
        };
        let (Some(old_cfg), Some(old)) = (
            self.built.backend_config(name),
            self.built.backends.get(name),
        ) else {
            return Err(one(format!("backends.{name}"), "unknown backend".into()));
        };
        let index = old.index;
        let old_rt = old.rt.clone();
        let discovered = old_cfg.discovery.is_some().then(|| endpoints.clone());
        let cfg = Arc::new(infergate_config::Backend {
            endpoints,
            ..old_cfg.clone()
        });
        let mut errs = Vec::new();
        let mut parts = backend::Parts {
            registry: &mut self.registry,
            clients: &mut self.clients,
            metrics: &self.metrics,
        };
        let built = backend::build(&mut parts, &format!("backends.{name}"), &cfg, &mut errs);
        let Some(rt) = built.filter(|_| errs.is_empty()) else {
            return Err(ConfigErrors(errs));
        };
        let backends: HashMap<Box<str>, Arc<BackendRt>> = self
            .built
            .backends
            .iter()
            .map(|(k, b)| {
                let rt = if k.as_ref() == name { &rt } else { &b.rt };
                (k.clone(), rt.clone())
            })
            .collect();
        let mut rebuilt = Rebuilt {
            backends: 1,
            models: 0,
        };
        let hist = config.metrics.endpoint_histograms;
        let mut new_models = HashMap::new();
        for (k, (i, _)) in &self.built.models {
            let Some(m) = config.models.get(*i).filter(|m| references(m, name)) else {
                continue;
            };
            let path = format!("models.{k}");
            let weighted = self.with_weights(m);
            let m = weighted.as_ref().unwrap_or(m);
            match model::compile_model(&self.metrics, hist, &path, m, &backends, &last.labels) {
                Ok(r) => {
                    rebuilt.models += 1;
                    new_models.insert(k.clone(), (*i, Arc::new(r)));
                }
                Err(mut e) => errs.append(&mut e),
            }
        }
        if !errs.is_empty() {
            return Err(ConfigErrors(errs));
        }
        let mut table = last;
        for b in &mut table.backends {
            if b.name.as_ref() == name {
                *b = rt.clone();
            }
        }
        for (k, (_, r)) in &new_models {
            table.models.insert(k.clone(), r.clone());
        }
        let old_models: HashMap<Box<str>, Arc<ModelRoute>> = new_models
            .keys()
            .filter_map(|k| self.built.models.get(k).map(|v| (k.clone(), v.1.clone())))
            .collect();
        let key = Box::<str>::from(name);
        retire::retire(
            &self.metrics,
            (old_models, routes(&new_models)),
            (
                [(key.clone(), old_rt)].into_iter().collect(),
                [(key.clone(), rt.clone())].into_iter().collect(),
            ),
        );
        self.built.models.extend(new_models);
        self.built.backends.insert(
            key,
            BuiltBackend {
                index,
                replaced: Some(cfg),
                rt,
            },
        );
        self.built.table = Some(table.clone());
        self.registry.sweep();
        if let Some(eps) = discovered {
            self.discovered.insert(name.into(), eps);
        }
        Ok((table, rebuilt))
    }
}

/// The routes of built models, by name.
fn routes(
    models: &HashMap<Box<str>, (usize, Arc<ModelRoute>)>,
) -> HashMap<Box<str>, Arc<ModelRoute>> {
    models
        .iter()
        .map(|(k, (_, r))| (k.clone(), r.clone()))
        .collect()
}

/// The runtimes of built backends, by name.
fn runtimes(backends: &HashMap<Box<str>, BuiltBackend>) -> HashMap<Box<str>, Arc<BackendRt>> {
    backends
        .iter()
        .map(|(k, b)| (k.clone(), b.rt.clone()))
        .collect()
}

/// Whether every variant of `route` uses a backend that is in `backends` as it is.
fn uses_only(route: &ModelRoute, backends: &HashMap<Box<str>, Arc<BackendRt>>) -> bool {
    route.variants.iter().all(|v| {
        backends
            .get(v.backend.name.as_ref())
            .is_some_and(|b| Arc::ptr_eq(b, &v.backend))
    })
}

/// Whether model `m` sends traffic to backend `name`.
fn references(m: &infergate_config::Model, name: &str) -> bool {
    m.backend.as_deref() == Some(name) || m.variants.iter().any(|v| v.backend == name)
}

fn label_sources(labels: &BTreeMap<String, LabelSource>) -> LabelSources {
    LabelSources(
        labels
            .iter()
            .map(|(name, src)| {
                // Validation guarantees a source; an empty cookie name never matches.
                let source = key_source(&src.header, &src.cookie)
                    .unwrap_or_else(|| Source::Cookie("".into()));
                (name.as_str().into(), source)
            })
            .collect(),
    )
}

fn admin_token(cfg: &Config, errs: &mut Vec<ConfigError>) -> Option<Box<str>> {
    let admin = &cfg.listeners.admin;
    match (&admin.token, &admin.token_env) {
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
    }
}

#[cfg(test)]
mod tests;
