//! File-system calls through rustix's safe wrappers (the workspace forbids `unsafe`).

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{Advice, FallocateFlags, FlockOperation};

/// Bytes available to an unprivileged process on the file system holding `path`
/// (`statvfs`: `f_bavail × f_frsize`).
pub(crate) fn available_space(path: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Reserves `len` bytes for `file` (so a full disk shows at the start of a file, not in the
/// middle) and sets its length. Falls back to `set_len` (a sparse file) where the file system
/// cannot `fallocate` (some NFS versions, overlay file systems).
pub(crate) fn preallocate(file: &File, len: u64) -> io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    match rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = io::Error::from(e);
            if crate::error::is_no_space(&e) {
                return Err(e);
            }
            if file.metadata()?.len() != len {
                file.set_len(len)?;
            }
            Ok(())
        }
    }
}

/// Advises the kernel that `file` will be read sequentially, soon. Advice only: errors are
/// ignored.
pub(crate) fn advise_sequential(file: &File) {
    let _ = rustix::fs::fadvise(file, 0, None, Advice::Sequential);
    let _ = rustix::fs::fadvise(file, 0, None, Advice::WillNeed);
}

/// `fsync` of a directory, so that a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Takes an exclusive, non-blocking `flock` on `path` (created if missing). `Ok(None)` when
/// another process (or job) holds it. The lock lasts as long as the returned file is open.
pub(crate) fn try_lock(path: &Path) -> io::Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
