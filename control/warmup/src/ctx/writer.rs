//! Gathering received buffers into few large writes.

use bytes::Bytes;

use super::file::FileCtx;
use super::job::JobCtx;
use crate::outcome::Fail;

/// Received buffers are written once this many bytes are gathered (per range in flight).
const WRITE_BUF: usize = 128 << 10;

/// Gathers received buffers (without copying them) into one positioned, vectored write
/// (`pwritev`) per [`WRITE_BUF`] bytes.
pub(crate) struct Writer<'a> {
    ctx: &'a JobCtx,
    f: &'a FileCtx,
    bufs: Vec<Bytes>,
    len: usize,
    start: u64,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(ctx: &'a JobCtx, f: &'a FileCtx, start: u64) -> Self {
        Writer {
            ctx,
            f,
            bufs: Vec::new(),
            len: 0,
            start,
        }
    }

    /// The file offset of the next byte pushed.
    pub(crate) fn next_offset(&self) -> u64 {
        self.start + self.len as u64
    }

    /// Moves to `offset`, writing out what is gathered first.
    pub(crate) async fn seek(&mut self, offset: u64) -> Result<(), Fail> {
        if offset != self.next_offset() {
            self.flush().await?;
            self.start = offset;
        }
        Ok(())
    }

    pub(crate) async fn push(&mut self, data: Bytes) -> Result<(), Fail> {
        if data.is_empty() {
            return Ok(());
        }
        self.len += data.len();
        self.bufs.push(data);
        // Well under IOV_MAX (1024), even for a server that sends tiny frames.
        if self.len >= WRITE_BUF || self.bufs.len() >= 256 {
            self.flush().await?;
        }
        Ok(())
    }

    pub(crate) async fn flush(&mut self) -> Result<(), Fail> {
        if self.len == 0 {
            return Ok(());
        }
        let n = std::mem::take(&mut self.len) as u64;
        let res = self
            .f
            .write_and_hash(&self.ctx.hooks, &self.bufs, self.start);
        self.bufs.clear();
        res?;
        self.start += n;
        self.ctx.account(n);
        Ok(())
    }
}
