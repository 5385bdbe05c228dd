//! [`WarmupError`]s for I/O that failed on the way: a full disk while writing a `.partial`, a
//! task that did not finish.

use std::io;
use std::path::Path;

use crate::error::WarmupError;

/// Whether an I/O error means the disk (or the quota) is full.
pub(crate) fn is_no_space(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(err.raw_os_error(), Some(28) | Some(122))
}

/// The error for a failed write into `partial`, the `.partial` of manifest path `path`:
/// [`WarmupError::NoSpace`] when the disk is full.
pub(crate) fn write_error(path: &str, partial: &Path, e: io::Error) -> WarmupError {
    if is_no_space(&e) {
        WarmupError::NoSpace {
            path: path.to_string(),
            partial: partial.to_path_buf(),
        }
    } else {
        WarmupError::io(format!("{path}: writing {}", partial.display()), e)
    }
}

/// The error for a task (async or blocking) that panicked or was aborted.
pub(crate) fn join_error(e: tokio::task::JoinError) -> WarmupError {
    WarmupError::io("warmup task failed", io::Error::other(e.to_string()))
}
