//! Warmup jobs in the control process: started from `control.yaml` and `POST /v1/warmup`,
//! listed by `GET /v1/warmup`, exported as metrics, and published on the health feed as each
//! model's warm state on this node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use infergate_warmup::{CancelToken, Progress, ProgressSnapshot, WarmupJob, WarmupState};
use prometheus::{IntGaugeVec, Opts, Registry};
use serde::Serialize;

use crate::feed::{Feed, FeedModel};

struct Entry {
    id: u64,
    job: WarmupJob,
    progress: Arc<Progress>,
    cancel: CancelToken,
}

/// A job as `GET /v1/warmup` shows it.
#[derive(Serialize)]
pub struct JobView {
    pub id: u64,
    pub dest: String,
    pub source: String,
    #[serde(flatten)]
    pub progress: ProgressSnapshot,
}

/// Every warmup job of this process.
#[derive(Clone)]
pub struct Warmups {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where jobs run (see [`Warmups::new`]).
    runtime: tokio::runtime::Handle,
    jobs: Mutex<Vec<Entry>>,
    next: Mutex<u64>,
    feed: Feed,
    bytes_done: IntGaugeVec,
    bytes_total: IntGaugeVec,
    rate: IntGaugeVec,
    resident: IntGaugeVec,
    state: IntGaugeVec,
}

/// The name of a state, as on the feed and in metrics.
pub fn state_name(s: &WarmupState) -> &'static str {
    match s {
        WarmupState::Pending => "pending",
        WarmupState::Fetching => "fetching",
        WarmupState::Verifying => "verifying",
        WarmupState::Warm => "warm",
        WarmupState::Failed { .. } => "failed",
    }
}

const STATES: [&str; 5] = ["pending", "fetching", "verifying", "warm", "failed"];

impl Warmups {
    /// Jobs run on `runtime`: a warmup writes into the page cache from its runtime's worker
    /// threads and hashes with them, so the control process gives it a runtime of its own,
    /// away from the health feed and the API.
    pub fn new(
        feed: Feed,
        registry: &Registry,
        runtime: tokio::runtime::Handle,
    ) -> prometheus::Result<Self> {
        let labels = &["model", "version"];
        let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        Ok(Warmups {
            inner: Arc::new(Inner {
                runtime,
                jobs: Mutex::new(Vec::new()),
                next: Mutex::new(1),
                feed,
                bytes_done: gauge(
                    "infergate_control_warmup_bytes_done",
                    "Bytes of the model's files in place and verified, or fetched so far.",
                    labels,
                )?,
                bytes_total: gauge(
                    "infergate_control_warmup_bytes_total",
                    "Size of the model's files.",
                    labels,
                )?,
                rate: gauge(
                    "infergate_control_warmup_rate_bytes_per_second",
                    "Transfer rate over the last seconds.",
                    labels,
                )?,
                resident: gauge(
                    "infergate_control_warmup_resident_bytes",
                    "Bytes of the model's files in the page cache after the pre-read (preread jobs).",
                    labels,
                )?,
                state: gauge(
                    "infergate_control_warmup_state",
                    "1 for the job's current state (pending, fetching, verifying, warm, failed).",
                    &["model", "version", "state"],
                )?,
            }),
        })
    }

    /// Starts a job; returns its id. Must be called within a Tokio runtime (which watches the
    /// job and publishes its progress).
    pub fn start(&self, job: WarmupJob) -> Result<u64, String> {
        job.validate().map_err(|e| e.to_string())?;
        if job.model.is_empty() {
            return Err("a warmup job needs a model name".into());
        }
        let id = {
            let mut n = self
                .inner
                .next
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let id = *n;
            *n += 1;
            id
        };
        let progress = Arc::new(Progress::new());
        let cancel = CancelToken::new();
        {
            let mut jobs = self
                .inner
                .jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A new job for the same model and version replaces the old one (stopping it).
            jobs.retain(|e| {
                let same = e.job.model == job.model && e.job.version == job.version;
                if same {
                    e.cancel.cancel();
                }
                !same
            });
            jobs.push(Entry {
                id,
                job: job.clone(),
                progress: progress.clone(),
                cancel: cancel.clone(),
            });
        }
        let this = self.clone();
        let p = progress.clone();
        tokio::spawn(async move {
            let run = this
                .inner
                .runtime
                .spawn(infergate_warmup::run(job, p, cancel));
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tokio::pin!(run);
            loop {
                tokio::select! {
                    _ = &mut run => {
                        this.publish();
                        break;
                    }
                    _ = tick.tick() => this.publish(),
                }
            }
        });
        self.publish();
        Ok(id)
    }

    pub fn list(&self) -> Vec<JobView> {
        let jobs = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        jobs.iter()
            .map(|e| JobView {
                id: e.id,
                dest: e.job.dest.display().to_string(),
                source: e.job.source.to_string(),
                progress: e.progress.snapshot(),
            })
            .collect()
    }

    /// Stops every job; their finished chunks stay for the next run.
    pub fn cancel_all(&self) {
        let jobs = self
            .inner
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in jobs.iter() {
            e.cancel.cancel();
        }
    }

    /// Updates metrics and the feed's model states.
    fn publish(&self) {
        let views = self.list();
        let i = &self.inner;
        let mut models = Vec::new();
        for v in &views {
            let p = &v.progress;
            let labels = [p.model.as_str(), p.version.as_str()];
            i.bytes_done
                .with_label_values(&labels)
                .set(i64::try_from(p.bytes_done).unwrap_or(i64::MAX));
            i.bytes_total
                .with_label_values(&labels)
                .set(i64::try_from(p.bytes_total).unwrap_or(i64::MAX));
            i.rate
                .with_label_values(&labels)
                .set(i64::try_from(p.rate_bytes_per_sec).unwrap_or(i64::MAX));
            if let Some(bytes) = p.resident_bytes {
                i.resident
                    .with_label_values(&labels)
                    .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            }
            let current = state_name(&p.state);
            for s in STATES {
                i.state
                    .with_label_values(&[p.model.as_str(), p.version.as_str(), s])
                    .set(i64::from(s == current));
            }
            models.push(FeedModel {
                name: p.model.clone(),
                version: p.version.clone(),
                state: current.to_owned(),
            });
        }
        i.feed.publish_models(models);
    }
}
