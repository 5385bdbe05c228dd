//! The destination directory: created, locked for this job, not the source itself.

use std::fs::{self, File};

use crate::error::WarmupError;
use crate::job::{Source, WarmupJob};
use crate::names::LOCK_FILE;

/// Creates `job.dest` and takes its lock (one job per destination at a time; the lock goes
/// with the returned file handle). Refuses a local source that is the destination itself.
pub(super) async fn open_dest(job: &WarmupJob) -> Result<File, WarmupError> {
    tokio::fs::create_dir_all(&job.dest)
        .await
        .map_err(|e| WarmupError::io(format!("creating {}", job.dest.display()), e))?;
    let lock = match crate::disk::try_lock(&job.dest.join(LOCK_FILE)) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return Err(WarmupError::Busy {
                dest: job.dest.clone(),
            })
        }
        Err(e) => {
            return Err(WarmupError::io(
                format!("locking {}", job.dest.join(LOCK_FILE).display()),
                e,
            ))
        }
    };
    if let Source::Local(dir) = &job.source {
        if let (Ok(a), Ok(b)) = (fs::canonicalize(dir), fs::canonicalize(&job.dest)) {
            if a == b {
                return Err(WarmupError::InvalidJob(format!(
                    "source and dest are the same directory ({})",
                    a.display()
                )));
            }
        }
    }
    Ok(lock)
}
