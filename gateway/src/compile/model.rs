//! Compiles one model's variants and rules against the backends of a snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use infergate_config::ConfigError;
use tokio::sync::Semaphore;

use crate::backend::BackendRt;
use crate::metrics::{Metrics, RouteMetrics, VariantMetrics};
use crate::route::{
    Cond, LabelSources, Matcher, ModelRoute, Rule, ShadowRt, Source, SplitRt, Variant,
};

/// Compiles one model's variants and rules.
pub fn compile_model(
    metrics: &Metrics,
    endpoint_histograms: bool,
    path: &str,
    m: &infergate_config::Model,
    backends: &HashMap<Box<str>, Arc<BackendRt>>,
    labels: &LabelSources,
) -> Result<ModelRoute, Vec<ConfigError>> {
    let mut errs = Vec::new();
    let err = |path: String, reason: String| ConfigError { path, reason };
    // The simple form is one variant named after the backend, all endpoints, one rule.
    let simple;
    let (variants_cfg, routes_cfg): (&[infergate_config::Variant], Vec<infergate_config::Route>) =
        match &m.backend {
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
    let mut variants = Vec::with_capacity(variants_cfg.len());
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
        let handles = |vm: &Arc<VariantMetrics>| -> Vec<RouteMetrics> {
            members
                .iter()
                .map(|&e| metrics.member(vm, &backend.endpoints[e].state.url, endpoint_histograms))
                .collect()
        };
        let vm = metrics.variant(&m.name, &backend.name, &v.name);
        let shadow_metrics = if shadowed.contains(&v.name.as_str()) {
            handles(&metrics.variant(&m.name, &backend.name, &format!("shadow:{}", v.name)))
        } else {
            Vec::new()
        };
        variants.push(Variant {
            name: v.name.as_str().into(),
            header: HeaderValue::from_str(&v.name)
                .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
            backend: backend.clone(),
            metrics: handles(&vm),
            shadow_metrics,
            unrouted: metrics.member(&vm, "", false),
            members,
        });
    }
    let index = |name: &str| variants.iter().position(|v| v.name.as_ref() == name);
    let mut rules = Vec::with_capacity(routes_cfg.len());
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
                            errs.push(err(mpath, format!("unknown request label {:?}", vm.name)));
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
                            errs.push(err(format!("{mpath}.regex"), format!("invalid regex: {e}")));
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

/// Where a key is read from: the header when one is named (and valid), else the cookie.
pub fn key_source(header: &Option<String>, cookie: &Option<String>) -> Option<Source> {
    match (header, cookie) {
        (Some(h), _) => HeaderName::from_bytes(h.as_bytes())
            .ok()
            .map(Source::Header),
        (None, Some(c)) => Some(Source::Cookie(c.as_str().into())),
        (None, None) => None,
    }
}
