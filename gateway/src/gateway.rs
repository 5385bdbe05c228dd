//! The gateway's shared state: the live routing table and what builds it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use arc_swap::{ArcSwap, Guard};
use infergate_config::{Config, ConfigErrors};

use crate::metrics::Metrics;
use crate::reload::Trigger;
use crate::table::{Compiler, Table};

pub struct Gateway {
    table: ArcSwap<Table>,
    compiler: Compiler,
    /// The config behind the live table, and how it got there. Read by the admin API and the
    /// reloader only.
    status: Mutex<ConfigStatus>,
    ready: AtomicBool,
    draining: AtomicBool,
    in_flight: Arc<AtomicU32>,
    health: crate::health::HealthView,
}

/// A request's place under the data listener's `limits.max_in_flight`; released on drop.
#[derive(Debug)]
pub struct Slot(Arc<AtomicU32>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What `GET /admin/config` reports.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigStatus {
    /// 1 for the config loaded at start, +1 for every successful reload.
    pub version: u64,
    /// FNV-1a 64 of the file's text, as hex.
    pub hash: String,
    /// Unix time (seconds) the live config was loaded.
    pub loaded_at: u64,
    /// The last reload that failed, if it came after the last success.
    pub last_error: Option<ReloadFailure>,
    pub reloads_ok: u64,
    pub reloads_failed: u64,
    /// The live config (secrets shown as "***").
    pub config: Arc<Config>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReloadFailure {
    pub at: u64,
    pub trigger: &'static str,
    pub hash: String,
    /// Each error as `path: reason`.
    pub errors: Vec<String>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The hold-down of the config's health feeds (the longest, when there are several).
pub fn hold_down(cfg: &Config) -> std::time::Duration {
    cfg.health_feeds
        .iter()
        .map(|f| f.hold_down.get())
        .max()
        .unwrap_or_default()
}

/// FNV-1a, 64 bits, as 16 hex digits: identifies a config text in status and logs.
pub fn content_hash(text: &str) -> String {
    format!("{:016x}", crate::route::fnv1a64(text.as_bytes()))
}

impl Gateway {
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Result<Self, ConfigErrors> {
        Self::with_text(cfg, "", metrics)
    }

    /// A gateway serving `cfg`, which was parsed from `text` (for its hash).
    pub fn with_text(
        cfg: &Config,
        text: &str,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ConfigErrors> {
        let compiler = Compiler::new(metrics);
        let table = compiler.compile(cfg)?;
        Ok(Gateway {
            table: ArcSwap::from_pointee(table),
            compiler,
            status: Mutex::new(ConfigStatus {
                version: 1,
                hash: content_hash(text),
                loaded_at: unix_now(),
                last_error: None,
                reloads_ok: 0,
                reloads_failed: 0,
                config: Arc::new(cfg.clone()),
            }),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            in_flight: Arc::new(AtomicU32::new(0)),
            health: crate::health::HealthView::default(),
        })
    }

    pub fn status(&self) -> ConfigStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Parses, validates and compiles `text`, then swaps it in. On any error the live table
    /// stays and the failure is recorded. Returns the new version.
    pub fn apply(&self, text: &str, trigger: Trigger) -> Result<u64, ConfigErrors> {
        let result = Config::from_yaml(text).and_then(|cfg| {
            let current = self.status().config;
            let mut errs = Vec::new();
            for (name, old, new) in [
                ("data", &current.listeners.data.address, &cfg.listeners.data.address),
                ("admin", &current.listeners.admin.address, &cfg.listeners.admin.address),
            ] {
                if old != new {
                    errs.push(infergate_config::ConfigError {
                        path: format!("listeners.{name}.address"),
                        reason: format!("changed from {old} to {new}; listener addresses change only on restart"),
                    });
                }
            }
            if current.listeners.data.tls != cfg.listeners.data.tls {
                errs.push(infergate_config::ConfigError {
                    path: "listeners.data.tls".into(),
                    reason: "TLS settings change only on restart (certificate files are re-read when they change)".into(),
                });
            }
            if !errs.is_empty() {
                return Err(ConfigErrors(errs));
            }
            let table = self.compiler.compile(&cfg)?;
            Ok((cfg, table))
        });
        let hash = content_hash(text);
        match result {
            Ok((cfg, table)) => {
                // Endpoints new in this config learn the GPU state before they take traffic.
                self.health.apply(&table, hold_down(&cfg));
                self.table.store(Arc::new(table));
                let mut st = self
                    .status
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                st.version += 1;
                st.hash = hash;
                st.loaded_at = unix_now();
                st.last_error = None;
                st.reloads_ok += 1;
                st.config = Arc::new(cfg);
                let version = st.version;
                drop(st);
                self.metrics().reload(true);
                tracing::info!(version, trigger = trigger.as_str(), "config reloaded");
                Ok(version)
            }
            Err(errs) => {
                self.reload_failed_with_hash(&errs, trigger, hash);
                Err(errs)
            }
        }
    }

    /// GPU health from the feeds.
    pub fn health(&self) -> &crate::health::HealthView {
        &self.health
    }

    /// Records a failed reload.
    pub fn reload_failed(&self, errs: &ConfigErrors, trigger: Trigger) {
        self.reload_failed_with_hash(errs, trigger, String::new());
    }

    fn reload_failed_with_hash(&self, errs: &ConfigErrors, trigger: Trigger, hash: String) {
        let errors: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
        tracing::warn!(trigger = trigger.as_str(), errors = ?errors, "config reload failed; the previous config keeps serving");
        let mut st = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        st.reloads_failed += 1;
        st.last_error = Some(ReloadFailure {
            at: unix_now(),
            trigger: trigger.as_str(),
            hash,
            errors,
        });
        drop(st);
        self.metrics().reload(false);
    }

    /// The live table. Short-lived: do not hold it across an `.await`.
    pub fn table(&self) -> Guard<Arc<Table>> {
        self.table.load()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        self.compiler.metrics()
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Fails readiness for good: the gateway is shutting down.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.ready.store(false, Ordering::Relaxed);
    }

    /// Requests in flight on the data listener.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Takes a place under `limits.max_in_flight`, or `None` when the listener is full.
    pub fn try_admit(&self) -> Option<Slot> {
        let max = self.table().limits.max_in_flight;
        self.in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.in_flight.clone()))
    }
}
