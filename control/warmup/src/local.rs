//! The local (or NFS) source: positioned reads from `<dir>/<path>`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ctx::{FileCtx, JobCtx};
use crate::error::WarmupError;
use crate::io_errors::join_error;
use crate::names::MANIFEST_FILE;
use crate::outcome::Fail;

/// Bytes per positioned read (one buffer per range in flight).
const READ_BUF: usize = 256 << 10;

pub(crate) struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub(crate) fn new(root: &Path) -> Self {
        LocalSource {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub(crate) async fn read_manifest(&self) -> Result<(String, Vec<u8>), WarmupError> {
        let path = self.path(MANIFEST_FILE);
        let location = path.display().to_string();
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok((location, bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(WarmupError::NotFound {
                path: MANIFEST_FILE.to_string(),
                location,
            }),
            Err(e) => Err(WarmupError::io(format!("reading {location}"), e)),
        }
    }

    /// Copies bytes `[*pos, end)` with positioned reads and writes; `*pos` advances as bytes
    /// are written.
    pub(crate) async fn read_range(
        &self,
        ctx: &JobCtx,
        f: &Arc<FileCtx>,
        pos: &mut u64,
        end: u64,
    ) -> Result<(), Fail> {
        let src_path: Arc<Path> = self.path(&f.entry.path).into();
        let rel = f.entry.path.clone();
        let size = f.entry.size;
        let src = {
            let src_path = src_path.clone();
            tokio::task::spawn_blocking(move || open_source(&src_path, &rel, size))
                .await
                .map_err(|e| Fail::Fatal(join_error(e)))??
        };
        let src = Arc::new(src);
        let mut buf = vec![0u8; READ_BUF.min(usize::try_from(end - *pos).unwrap_or(READ_BUF))];
        while *pos < end {
            if ctx.abort.is_cancelled() {
                return Err(Fail::Stopped);
            }
            let n = buf
                .len()
                .min(usize::try_from(end - *pos).unwrap_or(usize::MAX));
            ctx.throttle(n).await;
            let offset = *pos;
            let (src, f, hooks, src_path) =
                (src.clone(), f.clone(), ctx.hooks.clone(), src_path.clone());
            buf = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, Fail> {
                match src.read_exact_at(&mut buf[..n], offset) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(Fail::Fatal(WarmupError::Fetch {
                            path: f.entry.path.clone(),
                            location: src_path.display().to_string(),
                            reason: format!(
                                "the source file ends before the manifest's {size} bytes"
                            ),
                        }));
                    }
                    Err(e) => {
                        return Err(Fail::transient(format!(
                            "reading {}: {e}",
                            src_path.display()
                        )))
                    }
                }
                f.write_and_hash(&hooks, &[&buf[..n]], offset)?;
                Ok(buf)
            })
            .await
            .map_err(|e| Fail::Fatal(join_error(e)))??;
            *pos += n as u64;
            ctx.account(n as u64);
        }
        Ok(())
    }
}

fn open_source(path: &Path, rel: &str, size: u64) -> Result<File, Fail> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Fail::Fatal(WarmupError::NotFound {
                path: rel.to_string(),
                location: path.display().to_string(),
            }))
        }
        Err(e) => return Err(Fail::transient(format!("opening {}: {e}", path.display()))),
    };
    let len = file
        .metadata()
        .map_err(|e| Fail::transient(format!("reading {}: {e}", path.display())))?
        .len();
    if len != size {
        return Err(Fail::Fatal(WarmupError::Fetch {
            path: rel.to_string(),
            location: path.display().to_string(),
            reason: format!("the source file is {len} bytes, the manifest says {size}"),
        }));
    }
    Ok(file)
}
