//! Model cache warmup for infergate.
//!
//! A per-node control process fetches a model version's files into a local cache directory
//! before the model server needs them, so new versions start fast. This crate is the library
//! behind `infergate-control warmup`, `infergate-control manifest` and `POST /v1/warmup`:
//!
//! * [`write_manifest`] lists a directory's files with their sizes and SHA-256 in
//!   `manifest.json` ([`Manifest`]).
//! * [`run()`] executes a [`WarmupJob`]: parallel range requests (HTTP) or positioned reads
//!   (local/NFS) into `<dest>/<path>.partial`, a resume sidecar, SHA-256 verification of the
//!   bytes on disk, `fsync` and an atomic rename. A file appears under its final name only
//!   once verified. [`Progress`] can be read at any time ([`Progress::snapshot`]), and a
//!   [`CancelToken`] stops the job leaving resumable state.
//!
//! See `docs/warmup.md` for the job format, the guarantees, tuning and Kubernetes use.
//!
//! ```no_run
//! # async fn example() -> Result<(), infergate_warmup::WarmupError> {
//! use std::sync::Arc;
//! use infergate_warmup::{run, CancelToken, Progress, Source, Tuning, WarmupJob};
//!
//! let job = WarmupJob {
//!     model: "llama".into(),
//!     version: "v3".into(),
//!     source: "http://model-cache:8080/llama/v3".parse::<Source>()?,
//!     dest: "/var/cache/infergate/llama/v3".into(),
//!     ca_file: None,
//!     tuning: Tuning::default(),
//! };
//! let progress = Arc::new(Progress::new());
//! let report = run(job, progress.clone(), CancelToken::new()).await?;
//! assert!(progress.snapshot().is_warm());
//! println!("{} bytes fetched", report.bytes_transferred);
//! # Ok(()) }
//! ```

mod cancel;
mod client;
mod ctx;
mod digest;
mod disk;
mod error;
mod fetch;
mod files;
mod hooks;
mod http;
mod io_errors;
mod job;
mod limiter;
mod local;
mod manifest;
mod names;
mod outcome;
mod partial;
mod progress;
mod run;
mod sync;
#[doc(hidden)]
pub mod testing;

pub use cancel::CancelToken;
pub use error::WarmupError;
pub use job::{Source, Tuning, WarmupJob};
pub use manifest::{write_manifest, Manifest, ManifestEntry};
pub use names::MANIFEST_FILE;
pub use progress::{Progress, ProgressSnapshot, WarmupState};
pub use run::{run, Report};
