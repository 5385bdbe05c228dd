//! One chunk of a file with a range request.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hyper::StatusCode;
use tokio::sync::oneshot;

use super::response::{check_content_range, fetch_fail, next_frame, status_fail};
use super::source::{HttpSource, RANGES_NO, RANGES_YES};
use crate::ctx::{FileCtx, JobCtx, Writer};
use crate::outcome::{Done, Fail};

impl HttpSource {
    /// Bytes `[*pos, end)` of chunk `chunk` with one range request; `*pos` advances with every
    /// byte written, so a retry continues where this attempt stopped. A `200` answer (the
    /// server ignores `Range`) turns this worker into the file's only one, streaming the whole
    /// file.
    pub(crate) async fn fetch_range(
        &self,
        ctx: &JobCtx,
        f: &FileCtx,
        chunk: u64,
        pos: &mut u64,
        end: u64,
        probe: &mut Option<oneshot::Sender<bool>>,
    ) -> Result<Done, Fail> {
        let path = f.entry.path.as_str();
        let size = f.entry.size;
        let (url, uri) = self.client.uri(path)?;
        let resp = self.client.get(&uri, Some((*pos, end - 1))).await?;
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                check_content_range(resp.headers(), *pos, end, size)
                    .map_err(|reason| fetch_fail(path, &url, reason))?;
                self.ranges.store(RANGES_YES, Ordering::Relaxed);
                if let Some(tx) = probe.take() {
                    let _ = tx.send(true);
                }
                let mut body = resp.into_body();
                let mut w = Writer::new(ctx, f, *pos);
                let res = async {
                    while let Some(data) = next_frame(ctx, &mut body).await? {
                        if w.next_offset() + data.len() as u64 > end {
                            return Err(fetch_fail(
                                path,
                                &url,
                                "the server sent more bytes than the range asked for".into(),
                            ));
                        }
                        ctx.throttle(data.len()).await;
                        w.push(data).await?;
                    }
                    Ok(())
                }
                .await;
                match res {
                    Ok(()) => {
                        w.flush().await?;
                        *pos = w.next_offset();
                        if *pos < end {
                            return Err(Fail::transient(format!(
                                "short read: the body ended {} bytes early",
                                end - *pos
                            )));
                        }
                        Ok(Done::Chunk)
                    }
                    Err(Fail::Transient { reason, connect }) => {
                        // Keep what arrived intact; the retry asks for the rest.
                        w.flush().await?;
                        *pos = w.next_offset();
                        Err(Fail::Transient { reason, connect })
                    }
                    Err(e) => Err(e),
                }
            }
            StatusCode::OK => {
                if !(*pos == 0 && end == size) {
                    self.ranges.store(RANGES_NO, Ordering::Relaxed);
                    tracing::info!(url = %url, "warmup: the server ignores Range; streaming whole files");
                }
                let mut owned: BTreeMap<u64, u64> =
                    f.drain().into_iter().map(|c| (c, f.bounds(c).0)).collect();
                owned.insert(chunk, *pos);
                if let Some(tx) = probe.take() {
                    let _ = tx.send(false);
                }
                self.fetch_whole(ctx, f, owned, Some(resp)).await?;
                Ok(Done::Whole)
            }
            status => Err(status_fail(status, path, &url)),
        }
    }
}
