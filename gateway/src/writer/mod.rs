//! The one writer of the gateway's state. Config reloads, health-feed documents and endpoint
//! sets reach this task as messages; it compiles and publishes immutable snapshots (the
//! [`Table`] and the [`ConfigStatus`]). Nothing else writes them. Per-endpoint counters
//! (in-flight, outlier state) are atomics that requests update themselves; the health and warm
//! flags of endpoints are written here only.
//!
//! The task runs on a thread of its own (a current-thread runtime): a compile of a large table
//! (tens of milliseconds) never holds up a worker of the data path, and the allocations of
//! parsing and compiling all come from one thread's allocator arena, so memory freed by one
//! reload is reused by the next instead of growing an arena per worker. Each message carries
//! the time it was sent (the data path's clock), which is the time the writer applies it at.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use infergate_config::{Config, ConfigError, ConfigErrors, Incremental, Reuse};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

mod handle;

pub use handle::WriterHandle;
use handle::{gone, one_error, Input, Msg, Reply};

use crate::compile::{Compiler, Rebuilt};
use crate::feeds::FeedState;
use crate::metrics::Metrics;
use crate::releases::ReleaseState;
use crate::status::{content_hash, hold_down, unix_now, ConfigStatus, ReloadFailure, Trigger};
use crate::table::Table;

/// What the writer publishes; readers load it, only the writer stores.
pub struct Published {
    pub table: ArcSwap<Table>,
    pub status: ArcSwap<ConfigStatus>,
    /// Counts the tables published; tasks that follow the config or the endpoints
    /// (discovery) subscribe to it.
    pub changed: tokio::sync::watch::Sender<u64>,
}

impl Published {
    fn store(&self, table: Table) {
        self.table.store(Arc::new(table));
        self.changed.send_modify(|n| *n += 1);
    }
}

struct Writer {
    compiler: Compiler,
    /// Re-parses only the list items that changed since the last config.
    parser: Incremental,
    feeds: FeedState,
    releases: ReleaseState,
    published: Arc<Published>,
    path: Option<PathBuf>,
    /// When the message being handled was sent.
    now: Instant,
}

/// Starts the writer on a thread of its own: it parses `text` (read from `path` when there is
/// a file), compiles the first table and publishes it, then serves messages until every
/// [`WriterHandle`] is dropped. The first config is parsed there too, so that every copy of the
/// config lives in the writer's allocator arena.
pub async fn spawn(
    text: String,
    path: Option<PathBuf>,
    metrics: Arc<Metrics>,
) -> Result<(Arc<Published>, WriterHandle), ConfigErrors> {
    let cannot =
        |e: std::io::Error| one_error(String::new(), format!("cannot start the writer: {e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(cannot)?;
    let (tx, rx) = mpsc::channel(64);
    let handle = WriterHandle {
        tx,
        has_file: path.is_some(),
    };
    let (first_tx, first) = oneshot::channel();
    let now = Instant::now();
    std::thread::Builder::new()
        .name("infergate-writer".into())
        .spawn(move || {
            let mut compiler = Compiler::new(metrics);
            let mut parser = Incremental::default();
            let built = parser
                .parse(&text, &infergate_config::env::process_env)
                .and_then(|(cfg, _)| compiler.compile(&cfg).map(|table| (cfg, table)));
            let published = match built {
                Ok((cfg, table)) => Arc::new(Published {
                    table: ArcSwap::from_pointee(table),
                    status: ArcSwap::from_pointee(ConfigStatus {
                        version: 1,
                        hash: content_hash(&text),
                        loaded_at: unix_now(),
                        last_error: None,
                        reloads_ok: 0,
                        reloads_failed: 0,
                        config: cfg,
                    }),
                    changed: tokio::sync::watch::Sender::new(1),
                }),
                Err(e) => {
                    let _ = first_tx.send(Err(e));
                    return;
                }
            };
            drop(text);
            if first_tx.send(Ok(published.clone())).is_err() {
                return;
            }
            let writer = Writer {
                compiler,
                parser,
                feeds: FeedState::default(),
                releases: ReleaseState::default(),
                published,
                path,
                now,
            };
            rt.block_on(writer.run(rx));
        })
        .map_err(cannot)?;
    let published = first.await.map_err(|_| gone())??;
    Ok((published, handle))
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        while let Some(Msg { at, what }) = rx.recv().await {
            self.now = at;
            match what {
                Input::Reload { trigger, reply } => {
                    let (r, old) = self.reload(trigger).await;
                    answer(reply, r);
                    drop(old);
                }
                Input::Apply {
                    text,
                    trigger,
                    reply,
                } => {
                    let (r, old) = self.apply(&text, trigger);
                    answer(reply, r);
                    // The replaced config, table and routes are freed after the answer.
                    drop(old);
                }
                Input::Feed { url, doc } => {
                    self.feeds.update(&url, &doc);
                    if self.releases.update(&url, &doc.releases) {
                        self.apply_weights();
                    }
                    self.release_metrics();
                    self.apply_feeds();
                }
                Input::FeedStale { url } => {
                    self.releases.feed_stale(&url);
                    self.release_metrics();
                    if self.feeds.forget(&url) {
                        self.apply_feeds();
                    }
                }
                Input::Endpoints {
                    backend,
                    endpoints,
                    reply,
                } => {
                    let r = self.apply_endpoints(&backend, endpoints);
                    answer(reply, r);
                }
            }
        }
    }

    fn hold_down(&self) -> Duration {
        hold_down(&self.published.status.load().config)
    }

    fn apply_feeds(&self) {
        let table = self.published.table.load();
        self.feeds
            .apply(table.backends(), self.hold_down(), self.now);
    }

    /// Rebuilds the models whose release weights changed, and publishes the table.
    fn apply_weights(&mut self) {
        self.compiler.set_weights(self.releases.weights());
        let cfg = self.published.status.load().config.clone();
        match self.compiler.compile_counted(&cfg) {
            Ok((table, rebuilt)) => {
                self.published.store(table);
                tracing::info!(models_rebuilt = rebuilt.models, "release weights applied");
            }
            Err(e) => tracing::warn!(errors = %e, "release weights refused; the last table stays"),
        }
    }

    fn release_metrics(&self) {
        let each = self
            .releases
            .each()
            .map(|(r, stale)| (r.name.as_str(), r.model.as_str(), &r.weights, stale));
        self.compiler.metrics().releases(each);
    }

    async fn reload(&mut self, trigger: Trigger) -> (Result<u64, ConfigErrors>, Leftovers) {
        let Some(path) = &self.path else {
            let e = one_error(
                String::new(),
                "this gateway was not started from a config file".into(),
            );
            return (Err(e), Leftovers::default());
        };
        let text = match tokio::fs::read_to_string(path).await {
            Ok(t) => t,
            Err(e) => {
                let errs = one_error(
                    String::new(),
                    format!("cannot read {}: {e}", path.display()),
                );
                self.failed(&errs, trigger, String::new());
                return (Err(errs), Leftovers::default());
            }
        };
        if trigger == Trigger::FileChanged {
            // Touched but not changed, or the same text that already failed: nothing to do.
            let status = self.published.status.load();
            let hash = content_hash(&text);
            let failed_before = status.last_error.as_ref().is_some_and(|e| e.hash == hash);
            if status.hash == hash || failed_before {
                return (Ok(status.version), Leftovers::default());
            }
        }
        self.apply(&text, trigger)
    }

    /// Parses, validates and compiles `text`, then publishes it. On any error the live table
    /// stays and the failure is recorded. Also returns what the new config replaced, for the
    /// caller to free after answering.
    fn apply(&mut self, text: &str, trigger: Trigger) -> (Result<u64, ConfigErrors>, Leftovers) {
        let started = std::time::Instant::now();
        let hash = content_hash(text);
        let current = self.published.status.load_full();
        let mut parsed = started;
        let mut reuse = Reuse::default();
        let result = self
            .parser
            .parse(text, &infergate_config::env::process_env)
            .and_then(|(cfg, r)| {
                parsed = std::time::Instant::now();
                reuse = r;
                restart_only(&current.config, &cfg)?;
                let (table, rebuilt) = self.compiler.compile_counted(&cfg)?;
                Ok((cfg, table, rebuilt))
            });
        let (cfg, table, rebuilt) = match result {
            Ok(r) => r,
            Err(errs) => {
                self.failed(&errs, trigger, hash);
                return (Err(errs), Leftovers::default());
            }
        };
        if !self.feeds.is_empty() {
            // Endpoints new in this table learn the GPU and warm state before they take traffic.
            let old = self.published.table.load();
            let new_backends = table
                .backends()
                .iter()
                .filter(|b| !old.backends().iter().any(|o| Arc::ptr_eq(o, b)));
            self.feeds.apply(new_backends, hold_down(&cfg), self.now);
        }
        let old_table = self.published.table.swap(Arc::new(table));
        self.published.changed.send_modify(|n| *n += 1);
        let version = current.version + 1;
        self.published.status.store(Arc::new(ConfigStatus {
            version,
            hash,
            loaded_at: unix_now(),
            last_error: None,
            reloads_ok: current.reloads_ok + 1,
            reloads_failed: current.reloads_failed,
            config: cfg,
        }));
        self.compiler.metrics().reload(true);
        tracing::info!(
            version,
            trigger = trigger.as_str(),
            backends_rebuilt = rebuilt.backends,
            models_rebuilt = rebuilt.models,
            items_parsed = reuse.parsed,
            items_reused = reuse.reused,
            parse_ms = (parsed - started).as_secs_f64() * 1000.0,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "config reloaded"
        );
        let old = Leftovers {
            _items: vec![
                Box::new(old_table),
                Box::new(current),
                Box::new(self.compiler.take_replaced()),
            ],
        };
        (Ok(version), old)
    }

    fn apply_endpoints(
        &mut self,
        backend: &str,
        endpoints: Vec<infergate_config::Endpoint>,
    ) -> Result<Rebuilt, ConfigErrors> {
        let started = std::time::Instant::now();
        let n = endpoints.len();
        let (table, rebuilt) = self.compiler.apply_endpoints(backend, endpoints)?;
        if let Some(b) = table.backend(backend) {
            self.feeds.apply([b], self.hold_down(), self.now);
        }
        self.published.store(table);
        tracing::info!(
            backend,
            endpoints = n,
            models_rebuilt = rebuilt.models,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "endpoints replaced"
        );
        Ok(rebuilt)
    }

    /// Records a failed reload.
    fn failed(&self, errs: &ConfigErrors, trigger: Trigger, hash: String) {
        let errors: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
        tracing::warn!(trigger = trigger.as_str(), errors = ?errors, "config reload failed; the previous config keeps serving");
        let mut st = ConfigStatus::clone(&self.published.status.load());
        st.reloads_failed += 1;
        st.last_error = Some(ReloadFailure {
            at: unix_now(),
            trigger: trigger.as_str(),
            hash,
            errors,
        });
        self.published.status.store(Arc::new(st));
        self.compiler.metrics().reload(false);
    }
}

/// Values a message replaced, freed after its answer is sent.
#[derive(Default)]
struct Leftovers {
    _items: Vec<Box<dyn Send>>,
}

fn answer<T>(reply: Reply<T>, r: Result<T, ConfigErrors>) {
    if let Some(tx) = reply {
        let _ = tx.send(r);
    }
}

/// Settings that change only on restart.
fn restart_only(current: &Config, cfg: &Config) -> Result<(), ConfigErrors> {
    let mut errs = Vec::new();
    for (name, old, new) in [
        (
            "data",
            &current.listeners.data.address,
            &cfg.listeners.data.address,
        ),
        (
            "admin",
            &current.listeners.admin.address,
            &cfg.listeners.admin.address,
        ),
    ] {
        if old != new {
            errs.push(ConfigError {
                path: format!("listeners.{name}.address"),
                reason: format!(
                    "changed from {old} to {new}; listener addresses change only on restart"
                ),
            });
        }
    }
    if current.access_log != cfg.access_log {
        errs.push(ConfigError {
            path: "access_log".into(),
            reason: "access-log settings change only on restart".into(),
        });
    }
    if current.tracing != cfg.tracing {
        errs.push(ConfigError {
            path: "tracing".into(),
            reason: "tracing settings change only on restart".into(),
        });
    }
    if current.listeners.data.tls != cfg.listeners.data.tls {
        errs.push(ConfigError {
            path: "listeners.data.tls".into(),
            reason: "TLS settings change only on restart (certificate files are re-read when they change)".into(),
        });
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errs))
    }
}

#[cfg(test)]
mod tests;
