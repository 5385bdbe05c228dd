//! Compiles one backend: its endpoints (state found by URL), policies and pooled client.

use std::collections::HashMap;
use std::sync::Arc;
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

/// Pooled clients by connect timeout and TLS settings, kept across snapshots so that connection
/// pools survive reloads.
#[derive(Default)]
pub struct Clients(HashMap<String, UpstreamClient>);

impl Clients {
    fn get(
        &mut self,
        connect_timeout: Duration,
        tls: &infergate_config::UpstreamTls,
    ) -> Result<UpstreamClient, crate::tls::TlsError> {
        let key = format!("{connect_timeout:?}|{tls:?}");
        if let Some(c) = self.0.get(&key) {
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
        self.0.insert(key, client.clone());
        Ok(client)
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
    let mut endpoints = Vec::with_capacity(b.endpoints.len());
    for (j, e) in b.endpoints.iter().enumerate() {
        match split_url(&e.url) {
            Ok((scheme, authority, prefix)) => {
                let url = e.url.trim_end_matches('/');
                let state = parts.registry.get_or_create(url);
                state.set_require_warm(e.require_warm);
                endpoints.push(EndpointRt {
                    state,
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
    let t = &b.timeouts;
    let client = match parts.clients.get(t.connect.get(), &b.tls) {
        Ok(c) => c,
        Err(e) => {
            errs.push(ConfigError {
                path: format!("{path}.tls"),
                reason: e.to_string(),
            });
            return None;
        }
    };
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
