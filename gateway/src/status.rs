//! What `GET /admin/config` reports: the config behind the live table and how it got there.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use infergate_config::Config;
use serde::Serialize;

/// Why a reload was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    FileChanged,
    Signal,
    Admin,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::FileChanged => "file_changed",
            Trigger::Signal => "sighup",
            Trigger::Admin => "admin",
        }
    }
}

/// The live config's status; published by the writer with every change.
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

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// FNV-1a, 64 bits, as 16 hex digits: identifies a config text in status and logs.
pub fn content_hash(text: &str) -> String {
    format!("{:016x}", crate::route::fnv1a64(text.as_bytes()))
}

/// The hold-down of the config's health feeds (the longest, when there are several).
pub fn hold_down(cfg: &Config) -> std::time::Duration {
    cfg.health_feeds
        .iter()
        .map(|f| f.hold_down.get())
        .max()
        .unwrap_or_default()
}
