//! infergate's data plane.
//!
//! # The request path
//!
//! 1. **Accept** ([`server`]): HTTP/1.1 or h2c on the data listener.
//! 2. **Snapshot** ([`gateway::Gateway::snapshot`]): one load of the live [`table::Table`],
//!    kept for the request's whole life: admission, limits, route, retry budget and shadow all
//!    come from it, so a reload never changes a request in flight.
//! 3. **Read** ([`proxy`]): the method and path choose the protocol ([`protocols`], applied by
//!    `server::dispatch`): where the model comes from, ComfyUI pinning, metering. The body is
//!    read whole, up to `limits.max_body_bytes` (413 past it) and within
//!    `limits.body_read_timeout` of the head (408 past it, connection closed); for OpenAI paths
//!    only its top-level `model` is extracted ([`model_field`]) — the rest is checked as JSON but
//!    never built, and a second top-level `model` is refused — or the form's `model` field.
//! 4. **Admit**: a place under the snapshot's `limits.max_in_flight` (503 with `Retry-After`
//!    past it), taken only once the body is whole and held until the response ends.
//! 5. **Route** ([`route`]): the model's route (its `Arc` is kept for the life of the
//!    response), the first rule that matches, and the variant by pin, sticky key or weight;
//!    maybe a shadow copy ([`shadow`]). The tenant's token and request rate limits take the
//!    request's estimate, or answer 429 ([`admission`]).
//! 6. **Pick** ([`pick`]): the backend's scheduler among the variant's endpoints that are not
//!    ejected and not yet tried: power of two choices on in-flight requests by default, or
//!    `least_latency`, `round_robin`, `model_aware` on the engine state [`engine`] scrapes, and prefix
//!    affinity ([`prefix`]); the in-flight guard is taken here. When every endpoint is
//!    saturated, the request waits in its priority class's queue for a place handed over on
//!    release, or is shed with 429 ([`admission`]).
//! 7. **Forward** ([`attempt`]): on the endpoint's HTTP/1.1 connection pool ([`pool`], plain
//!    or TLS), from the request's task; hop-by-hop headers stripped, the endpoint's `Host`, and
//!    `x-request-id` kept or made ([`headers`]). The response head and its first
//!    body frame are awaited under the first-token deadline: this is the commit point. Before
//!    it, a connect error, reset, timeout or retryable status is retried on another endpoint
//!    (attempt limit, retry budget) and counts toward that endpoint's ejection ([`backend`],
//!    [`endpoint`]).
//! 8. **Pass through** ([`body::ObservedBody`]): every upstream frame goes to the client as it
//!    arrives. An observer beside it ([`observe`]) stamps the first token event, counts token
//!    events and reads `usage`; idle and total deadlines apply, and a failure ends an event
//!    stream with an SSE error event.
//! 9. **Record** ([`body::Exchange`]): when the body ends, fails or is dropped, the outcome,
//!    TTFT, TPOT, duration and tokens are recorded once ([`metrics`]), the endpoint's health is
//!    updated, and the in-flight guard and listener place are released. When they are on, the
//!    access-log line and the spans are written then too ([`accesslog`], [`trace`]); the
//!    gateway's own overhead is measured on the way ([`accesslog::ExchangeHooks`]).
//!
//! # The state
//!
//! One task, the [`writer`], owns the gateway's state: config reloads ([`reload`] watches the
//! file and SIGHUP; [`admin`] asks on `POST /admin/reload`), health-feed documents ([`health`]
//! follows the feeds; [`feeds`] applies them) and endpoint sets
//! ([`writer::WriterHandle::apply_endpoints`]) reach it as messages. It compiles ([`compile`]:
//! only what changed is rebuilt) and publishes immutable snapshots; nothing else writes them.
//! Per-endpoint counters are atomics ([`endpoint`]). docs/architecture.md has the table of
//! what is snapshot state and what is endpoint state.
//!
//! Errors on this path are [`error::ProxyError`]: a kind with its source, status, OpenAI body
//! and metric outcome, all mapped in one place.

pub mod accesslog;
pub mod admin;
pub mod admission;
pub mod attempt;
pub mod backend;
pub mod body;
pub mod compile;
pub mod discovery;
pub mod ejection;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod explain;
pub mod feeds;
pub mod gateway;
pub mod gauges;
pub mod headers;
pub mod health;
pub mod metrics;
pub mod model_field;
pub mod observe;
pub mod pick;
pub mod pick_policy;
pub mod pool;
pub mod prefix;
pub mod protocols;
pub mod proxy;
pub mod ready;
pub mod releases;
pub mod reload;
pub mod retry;
pub mod route;
pub mod server;
pub mod shadow;
pub mod status;
pub mod table;
pub mod tls;
pub mod trace;
pub mod writer;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use infergate_config::ConfigErrors;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::server::{ConnLimits, Server};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid config:\n{0}")]
    Config(#[from] ConfigErrors),
    #[error("cannot bind the {listener} listener to {addr}: {source}")]
    Bind {
        listener: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("listeners.data.tls: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Observability(String),
}

/// A running gateway. Its listeners stop when it is dropped.
pub struct Running {
    pub gateway: Arc<Gateway>,
    pub data_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    data: Server,
    admin: Server,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Running {
    /// Graceful drain: stops accepting on the data listener, fails `/readyz`, lets requests in
    /// flight finish, and returns when every data connection has closed (true) or `deadline`
    /// passed (false). The admin listener keeps serving until the value is dropped.
    pub async fn drain(&self, deadline: Duration) -> bool {
        self.data.stop_accepting().await;
        self.gateway.start_draining();
        tracing::info!(
            in_flight = self.gateway.in_flight(),
            connections = self.data.open_connections(),
            deadline_seconds = deadline.as_secs_f64(),
            "draining"
        );
        tokio::time::timeout(deadline, self.data.shutdown())
            .await
            .is_ok()
    }

    pub fn data_connections(&self) -> u32 {
        self.data.open_connections()
    }

    pub fn admin_connections(&self) -> u32 {
        self.admin.open_connections()
    }
}

/// Where the config came from, for hot reload.
pub struct Source<'a> {
    /// The file to watch and reload; `None` serves the given config for good.
    pub path: Option<&'a Path>,
    /// The config's text (YAML), parsed and compiled by the gateway's writer.
    pub text: &'a str,
    /// How often the file is checked for changes.
    pub poll: Duration,
}

/// Parses and compiles the config of `source`, binds both listeners and starts serving on the
/// current runtime.
pub async fn start(source: Source<'_>) -> Result<Running, StartError> {
    let metrics = Arc::new(Metrics::new()?);
    let gateway = Gateway::start(
        source.text.to_owned(),
        source.path.map(Path::to_path_buf),
        metrics,
    )
    .await?;
    let cfg = gateway.status().config.clone();
    let cfg = &*cfg;
    let tls = match &cfg.listeners.data.tls {
        Some(t) => Some(Arc::new(tls::TlsTerminator::load(t)?)),
        None => None,
    };
    let data = bind("data", &cfg.listeners.data.address).await?;
    let admin = bind("admin", &cfg.listeners.admin.address).await?;
    let data_addr = local_addr("data", &data)?;
    let admin_addr = local_addr("admin", &admin)?;

    let mut tasks = Vec::new();
    let (observers, observer_tasks) =
        accesslog::Observers::start(cfg, gateway.metrics()).map_err(StartError::Observability)?;
    tasks.extend(observer_tasks);
    if let Some(o) = observers {
        gateway.set_observers(o);
    }
    if let Some(t) = &tls {
        tasks.push(t.spawn_watcher(Duration::from_secs(1)));
    }
    if let Some(p) = source.path {
        tasks.extend(reload::spawn(
            gateway.writer().clone(),
            p.to_path_buf(),
            source.poll,
        ));
    }

    let gw = gateway.clone();
    let data_server = server::spawn(
        "data",
        data,
        ConnLimits::from_config(&cfg.limits),
        tls,
        Some(gateway.metrics().connections("data")),
        move |req| proxy::handle(gw.clone(), req),
    );
    let admin_gw = gateway.clone();
    let admin_server = server::spawn(
        "admin",
        admin,
        ConnLimits::from_config(&infergate_config::Limits::default()),
        None,
        None,
        move |req| admin::handle(admin_gw.clone(), req),
    );
    let mut first_answers = Vec::new();
    for feed in cfg.health_feeds.iter().filter(|f| f.kubernetes.is_none()) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        first_answers.push(rx);
        tasks.push(tokio::spawn(health::follow(
            gateway.writer().clone(),
            gateway.metrics().clone(),
            feed.url.clone(),
            feed.stale_after.get(),
            Some(tx),
        )));
    }
    tasks.push(engine::spawn(gateway.clone()));
    let (supervisor, synced) = discovery::spawn(gateway.clone());
    tasks.push(supervisor);
    let synced = discovery::discovers_endpoints(cfg).then_some(synced);
    tasks.extend(ready::when_ready(gateway.clone(), first_answers, synced));
    tracing::info!(listener = "data", addr = %data_addr, tls = cfg.listeners.data.tls.is_some(), "listening");
    tracing::info!(listener = "admin", addr = %admin_addr, "listening");
    Ok(Running {
        gateway,
        data_addr,
        admin_addr,
        data: data_server,
        admin: admin_server,
        tasks,
    })
}

async fn bind(listener: &'static str, addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            listener,
            addr: addr.to_owned(),
            source,
        })
}

fn local_addr(listener: &'static str, l: &TcpListener) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|source| StartError::Bind {
        listener,
        addr: "?".into(),
        source,
    })
}
