//! Hot reload. One task owns every config change: it reads, parses, validates and compiles off
//! the request path, then swaps the table in one store. Triggers: the file changing (polled),
//! SIGHUP, and `POST /admin/reload`. A config that fails keeps the old one serving and is
//! reported in the log, in `infergate_config_reloads_total{result="failure"}` and in
//! `GET /admin/config`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use infergate_config::ConfigErrors;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::gateway::Gateway;

/// Why a reload was asked for.
#[derive(Clone, Copy, Debug)]
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

/// A request to the reloader, answered when the reload is done.
pub struct ReloadRequest {
    pub trigger: Trigger,
    pub reply: Option<oneshot::Sender<Result<u64, ConfigErrors>>>,
}

/// Handle to the reloader task.
#[derive(Clone)]
pub struct Reloader {
    tx: mpsc::Sender<ReloadRequest>,
}

impl Reloader {
    /// Asks for a reload and waits for its result (the new config version).
    pub async fn reload(&self, trigger: Trigger) -> Result<u64, ConfigErrors> {
        let (reply, rx) = oneshot::channel();
        let gone = || {
            ConfigErrors(vec![infergate_config::ConfigError {
                path: String::new(),
                reason: "the reloader has stopped".into(),
            }])
        };
        self.tx
            .send(ReloadRequest {
                trigger,
                reply: Some(reply),
            })
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Asks for a reload without waiting.
    pub fn trigger(&self, trigger: Trigger) {
        let _ = self.tx.try_send(ReloadRequest {
            trigger,
            reply: None,
        });
    }
}

/// Starts the reloader for the config at `path`, polling the file every `poll`.
pub fn spawn(gw: Arc<Gateway>, path: PathBuf, poll: Duration) -> (Reloader, Vec<JoinHandle<()>>) {
    let (tx, mut rx) = mpsc::channel::<ReloadRequest>(16);
    let reloader = Reloader { tx: tx.clone() };
    let mut tasks = Vec::new();

    let worker_gw = gw.clone();
    let worker_path = path.clone();
    tasks.push(tokio::spawn(async move {
        while let Some(req) = rx.recv().await {
            let result = reload_once(&worker_gw, &worker_path, req.trigger).await;
            if let Some(reply) = req.reply {
                let _ = reply.send(result);
            }
        }
    }));

    let watcher = reloader.clone();
    tasks.push(tokio::spawn(async move {
        // No stamp yet: the first check reads the file and compares its content with the config
        // being served (`reload_once` skips an unchanged text), so a change written between the
        // start-up read and this task's first run is not missed.
        let mut last = None;
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = file_stamp(&path).await;
            if now != last {
                last = now;
                watcher.trigger(Trigger::FileChanged);
            }
        }
    }));

    #[cfg(unix)]
    {
        let hup = reloader.clone();
        tasks.push(tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(mut s) => {
                    while s.recv().await.is_some() {
                        hup.trigger(Trigger::Signal);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGHUP; reload by file or admin API")
                }
            }
        }));
    }
    (reloader, tasks)
}

/// Modification time and size; `None` while the file cannot be read.
async fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = tokio::fs::metadata(path).await.ok()?;
    Some((m.modified().ok()?, m.len()))
}

async fn reload_once(
    gw: &Gateway,
    path: &std::path::Path,
    trigger: Trigger,
) -> Result<u64, ConfigErrors> {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) => {
            let errs = ConfigErrors(vec![infergate_config::ConfigError {
                path: String::new(),
                reason: format!("cannot read {}: {e}", path.display()),
            }]);
            gw.reload_failed(&errs, trigger);
            return Err(errs);
        }
    };
    if matches!(trigger, Trigger::FileChanged) {
        // Touched but not changed, or the same text that already failed: nothing to do.
        let status = gw.status();
        let hash = crate::gateway::content_hash(&text);
        let failed_before = status.last_error.as_ref().is_some_and(|e| e.hash == hash);
        if status.hash == hash || failed_before {
            return Ok(status.version);
        }
    }
    gw.apply(&text, trigger)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::metrics::Metrics;
    use infergate_config::Config;

    fn config(model: &str) -> String {
        format!(
            "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
             backends: [{{ name: b, endpoints: [{{ url: 'http://127.0.0.1:1' }}] }}]\n\
             models: [{{ name: {model}, backend: b }}]\n"
        )
    }

    #[tokio::test]
    async fn a_change_made_before_the_watcher_first_runs_is_applied() {
        let served = config("old");
        let cfg = Config::from_yaml(&served).unwrap();
        let gw =
            Arc::new(Gateway::with_text(&cfg, &served, Arc::new(Metrics::new().unwrap())).unwrap());
        let dir = std::env::temp_dir().join(format!("infergate-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.yaml");
        // The file already differs from the served config when the watcher starts.
        std::fs::write(&path, config("new")).unwrap();
        let (_reloader, tasks) = spawn(gw.clone(), path, Duration::from_millis(20));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while gw.status().version != 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the change was never applied"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(gw.table().route("new").is_some());
        // An unchanged file is read once and not applied again.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(gw.status().version, 2);
        for t in tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
