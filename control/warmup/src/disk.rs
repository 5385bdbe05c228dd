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
            if crate::io_errors::is_no_space(&e) {
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

/// Bytes of `file` in the page cache, counted with reads that never wait for the disk
/// (`preadv2(RWF_NOWAIT)`: a read stops at the first page that is not cached, and fails with
/// `EAGAIN` when that is the first one). Resident stretches are read (copied) once, a page that
/// is not resident costs one call. `Ok(None)` where the file system does not take the flag.
///
/// The kernel still starts reading a page that such a read misses (without waiting for it),
/// so the count is of the moment and the probe itself warms what it finds cold: it is meant
/// for after a pre-read, where it changes nothing. Random-access advice on this open file
/// keeps that to the probed page (no readahead around it).
///
/// `mincore(2)` would count without copying, but needs an `mmap`, which is `unsafe` in Rust;
/// `cachestat(2)` (Linux 6.5) has no safe wrapper yet.
pub(crate) fn resident_bytes(file: &File, buf: &mut [u8]) -> io::Result<Option<u64>> {
    const PAGE: u64 = 4096;
    let len = file.metadata()?.len();
    let _ = rustix::fs::fadvise(file, 0, None, Advice::Random);
    let mut off = 0u64;
    let mut resident = 0u64;
    while off < len {
        let want = buf
            .len()
            .min(usize::try_from(len - off).unwrap_or(usize::MAX));
        let mut slices = [io::IoSliceMut::new(&mut buf[..want])];
        match rustix::io::preadv2(file, &mut slices, off, rustix::io::ReadWriteFlags::NOWAIT) {
            Ok(0) => break,
            Ok(n) => {
                resident += n as u64;
                off += n as u64;
            }
            Err(rustix::io::Errno::AGAIN) => off = (off / PAGE + 1) * PAGE,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(resident))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn resident_bytes_sees_what_the_page_cache_holds() {
        let dir = std::env::temp_dir().join(format!("infergate-resident-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data: Vec<u8> = (0..(3u32 << 20) + 100).map(|i| (i % 251) as u8).collect();
        let mut f = File::create(&path).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        let file = File::open(&path).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        // Just written: every byte is cached.
        let Some(all) = resident_bytes(&file, &mut buf).unwrap() else {
            eprintln!(
                "RWF_NOWAIT not supported on {}; the probe reports nothing",
                dir.display()
            );
            let _ = std::fs::remove_dir_all(&dir);
            return;
        };
        assert_eq!(all, data.len() as u64);
        // Dropped from the cache (the file is clean after the fsync): not resident any more.
        rustix::fs::fadvise(&file, 0, None, Advice::DontNeed).unwrap();
        let after = resident_bytes(&file, &mut buf).unwrap().unwrap();
        assert!(after < all / 2, "{after} of {all} bytes still resident");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
