//! A whole file in one stream, for servers that ignore `Range`.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Response, StatusCode};

use super::response::{content_length, fetch_fail, next_frame, status_fail};
use super::source::HttpSource;
use crate::ctx::{FileCtx, JobCtx, Writer};
use crate::outcome::Fail;

impl HttpSource {
    /// Streams the whole file (plain `GET`, retried), writing only the chunks in `owned`
    /// (chunk → next offset to write) and marking each finished as it completes.
    pub(crate) async fn fetch_whole(
        &self,
        ctx: &JobCtx,
        f: &FileCtx,
        mut owned: BTreeMap<u64, u64>,
        mut first: Option<Response<Incoming>>,
    ) -> Result<(), Fail> {
        let path = f.entry.path.as_str();
        let (url, uri) = self.client.uri(path)?;
        let mut attempt = 0;
        loop {
            if owned.is_empty() {
                return Ok(());
            }
            let resp = match first.take() {
                Some(resp) => Ok(resp),
                None => self.client.get(&uri, None).await,
            };
            let res = match resp {
                Ok(resp) if resp.status() == StatusCode::OK => {
                    self.stream_whole(ctx, f, &url, &mut owned, resp).await
                }
                Ok(resp) => Err(status_fail(resp.status(), path, &url)),
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => return Ok(()),
                Err(Fail::Transient { reason, connect }) => {
                    attempt += 1;
                    if attempt > ctx.tuning.retries {
                        return Err(Fail::Fatal(ctx.exhausted(
                            path,
                            url.clone(),
                            reason,
                            connect,
                        )));
                    }
                    tracing::warn!(url = %url, attempt, error = %reason, "warmup: transient error, retrying");
                    if !ctx.backoff(attempt).await {
                        return Err(Fail::Stopped);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes the owned chunks of one whole-file response; see [`HttpSource::fetch_whole`].
    async fn stream_whole(
        &self,
        ctx: &JobCtx,
        f: &FileCtx,
        url: &str,
        owned: &mut BTreeMap<u64, u64>,
        resp: Response<Incoming>,
    ) -> Result<(), Fail> {
        let path = f.entry.path.as_str();
        let size = f.entry.size;
        if let Some(len) = content_length(resp.headers()) {
            if len != size {
                return Err(fetch_fail(
                    path,
                    url,
                    format!("the source file is {len} bytes, the manifest says {size}"),
                ));
            }
        }
        let mut body = resp.into_body();
        let mut w = Writer::new(ctx, f, 0);
        let mut offset = 0u64;
        let res: Result<(), Fail> = async {
            while let Some(data) = next_frame(ctx, &mut body).await? {
                if offset + data.len() as u64 > size {
                    return Err(fetch_fail(
                        path,
                        url,
                        format!("the source file is larger than the manifest's {size} bytes"),
                    ));
                }
                ctx.throttle(data.len()).await;
                let mut consumed = 0usize;
                while consumed < data.len() {
                    let chunk = offset / f.chunk_size;
                    let (_, chunk_end) = f.bounds(chunk);
                    let take = (data.len() - consumed)
                        .min(usize::try_from(chunk_end - offset).unwrap_or(usize::MAX));
                    let piece_end = offset + take as u64;
                    if let Some(&next) = owned.get(&chunk) {
                        if piece_end > next {
                            let skip = usize::try_from(next.saturating_sub(offset)).unwrap_or(0);
                            w.seek(offset + skip as u64).await?;
                            w.push(data.slice(consumed + skip..consumed + take)).await?;
                            owned.insert(chunk, piece_end);
                        }
                        if piece_end == chunk_end {
                            w.flush().await?;
                            owned.remove(&chunk);
                            f.chunk_finished(chunk).await?;
                        }
                    }
                    offset = piece_end;
                    consumed += take;
                }
            }
            Ok(())
        }
        .await;
        match res {
            Ok(()) => {
                w.flush().await?;
                if offset < size {
                    return Err(Fail::transient(format!(
                        "short read: the body ended after {offset} of {size} bytes"
                    )));
                }
                Ok(())
            }
            Err(Fail::Transient { reason, connect }) => {
                w.flush().await?;
                Err(Fail::Transient { reason, connect })
            }
            Err(e) => Err(e),
        }
    }
}
