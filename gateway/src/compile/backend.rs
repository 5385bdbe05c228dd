//! Compiles one backend: its endpoints (state found by URL), policies and pooled client.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::uri::{Authority, Scheme};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use infergate_config::ConfigError;

use super::registry::EndpointRegistry;
use crate::backend::{BackendRt, EndpointRt, RetryPolicy, Timeouts, UpstreamClient};
use crate::endpoint::OutlierPolicy;
use crate::metrics::Metrics;
use crate::pick_policy::Scheduler;
use crate::pool::EndpointPool;
use crate::tls::UpstreamConnector;

/// Upstream clients by connect timeout and TLS settings, kept across snapshots so that
/// connection pools survive reloads: the pooled client (upgrades, engine-state scrapes) and
/// the data path's per-endpoint pools.
#[derive(Default)]
pub struct Clients(HashMap<String, ClientSet>);

struct ClientSet {
    client: UpstreamClient,
    connector: UpstreamConnector,
    /// By `scheme://authority`; weak, so that an endpoint's connections close with the last
    /// snapshot that has it.
    pools: HashMap<String, Weak<EndpointPool>>,
    /// The number of pools at which the gone ones are next forgotten.
    prune_at: usize,
}

impl ClientSet {
    fn pool(&mut self, scheme: &Scheme, authority: &Authority) -> Arc<EndpointPool> {
        let key = format!("{scheme}://{authority}");
        if let Some(p) = self.pools.get(&key).and_then(Weak::upgrade) {
            return p;
        }
        // Forget the pools of endpoints that are gone, each time the map has doubled.
        if self.pools.len() >= self.prune_at {
            self.pools.retain(|_, p| p.strong_count() > 0);
            self.prune_at = (2 * self.pools.len()).max(64);
        }
        let target = http::Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default();
        let pool = Arc::new(EndpointPool::new(self.connector.clone(), target));
        self.pools.insert(key, Arc::downgrade(&pool));
        pool
    }
}

impl Clients {
    fn get(
        &mut self,
        connect_timeout: Duration,
        tls: &infergate_config::UpstreamTls,
    ) -> Result<&mut ClientSet, crate::tls::TlsError> {
        let key = format!("{connect_timeout:?}|{tls:?}");
        let slot = match self.0.entry(key) {
            Entry::Occupied(o) => return Ok(o.into_mut()),
            Entry::Vacant(v) => v,
        };
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(60)));
        let connector = crate::tls::upstream_connector(tls, http)?;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(crate::pool::IDLE_TIMEOUT)
            .build(connector.clone());
        Ok(slot.insert(ClientSet {
            client,
            connector,
            pools: HashMap::new(),
            prune_at: 64,
        }))
    }
}

/// What building a backend needs from the compiler.
pub struct Parts<'a> {
    pub registry: &'a mut EndpointRegistry,
    pub clients: &'a mut Clients,
    pub metrics: &'a Metrics,
}

/// Builds backend `b` (config path `path`), recording what is wrong in `errs`: an endpoint
/// whose URL does not parse is left out (and reported), a TLS setting that cannot be loaded
/// leaves the backend out.
pub fn build(
    parts: &mut Parts<'_>,
    path: &str,
    b: &infergate_config::Backend,
    errs: &mut Vec<ConfigError>,
) -> Option<Arc<BackendRt>> {
    let t = &b.timeouts;
    let set = match parts.clients.get(t.connect.get(), &b.tls) {
        Ok(c) => c,
        Err(e) => {
            errs.push(ConfigError {
                path: format!("{path}.tls"),
                reason: e.to_string(),
            });
            return None;
        }
    };
    let mut endpoints = Vec::with_capacity(b.endpoints.len());
    for (j, e) in b.endpoints.iter().enumerate() {
        match split_url(&e.url) {
            Ok((scheme, authority, prefix)) => {
                let url = e.url.trim_end_matches('/');
                let state = parts.registry.get_or_create(url);
                state.set_require_warm(e.require_warm);
                endpoints.push(EndpointRt {
                    state,
                    host: host_header(&scheme, &authority),
                    pool: set.pool(&scheme, &authority),
                    scheme,
                    authority,
                    prefix,
                    labels: e.labels.clone(),
                    metrics: parts.metrics.endpoint(&b.name, url),
                })
            }
            Err(reason) => errs.push(ConfigError {
                path: format!("{path}.endpoints[{j}].url"),
                reason,
            }),
        }
    }
    let scheduler = b.balancer.as_ref().map(|bal| {
        Box::new(Scheduler::new(
            bal,
            endpoints.iter().map(|e: &EndpointRt| &*e.state.url),
        ))
    });
    let client = set.client.clone();
    Some(Arc::new(BackendRt {
        name: b.name.as_str().into(),
        discovered: b.discovery.is_some(),
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
        scheduler,
    }))
}

/// The `Host` header for an endpoint: its host, with the port unless it is the scheme's default
/// (as hyper-util's client writes it).
fn host_header(scheme: &Scheme, authority: &Authority) -> http::HeaderValue {
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let host = match authority.port_u16() {
        Some(p) if p != default_port => format!("{}:{p}", authority.host()),
        _ => authority.host().to_owned(),
    };
    http::HeaderValue::from_str(&host).unwrap_or_else(|_| http::HeaderValue::from_static(""))
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
