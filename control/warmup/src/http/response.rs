//! Reading a response: its body frame by frame, its status and its length headers.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_LENGTH, CONTENT_RANGE};
use hyper::StatusCode;

use crate::client::chain;
use crate::ctx::JobCtx;
use crate::error::WarmupError;
use crate::outcome::Fail;

/// A body that sends nothing for this long is treated as a dead connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The next non-empty data frame; `None` at the end of the body.
pub(super) async fn next_frame(ctx: &JobCtx, body: &mut Incoming) -> Result<Option<Bytes>, Fail> {
    loop {
        let frame = tokio::select! {
            biased;
            _ = ctx.abort.cancelled() => return Err(Fail::Stopped),
            frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame()) => frame,
        };
        match frame {
            Err(_) => {
                return Err(Fail::transient(format!(
                    "stalled: no data for {} s",
                    IDLE_TIMEOUT.as_secs()
                )))
            }
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => {
                return Err(Fail::transient(format!(
                    "connection error in the body: {}",
                    chain(&e)
                )))
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

pub(super) fn fetch_fail(path: &str, url: &str, reason: String) -> Fail {
    Fail::Fatal(WarmupError::Fetch {
        path: path.to_string(),
        location: url.to_string(),
        reason,
    })
}

pub(super) fn status_fail(status: StatusCode, path: &str, url: &str) -> Fail {
    match status.as_u16() {
        404 | 410 => Fail::Fatal(WarmupError::NotFound {
            path: path.to_string(),
            location: url.to_string(),
        }),
        408 | 429 | 500..=599 => Fail::transient(format!("HTTP {status}")),
        416 => fetch_fail(
            path,
            url,
            format!("HTTP {status}: the file at the source is smaller than the manifest says"),
        ),
        _ => fetch_fail(path, url, format!("HTTP {status}")),
    }
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Checks `Content-Range: bytes <start>-<end-1>/<size>` of a 206 answer.
pub(super) fn check_content_range(
    headers: &HeaderMap,
    start: u64,
    end: u64,
    size: u64,
) -> Result<(), String> {
    let Some(value) = headers.get(CONTENT_RANGE) else {
        return match content_length(headers) {
            Some(len) if len == end - start => Ok(()),
            _ => Err("206 answer without Content-Range".into()),
        };
    };
    let value = value
        .to_str()
        .map_err(|_| "unreadable Content-Range".to_string())?;
    let parsed = (|| {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (first, last) = range.split_once('-')?;
        let first: u64 = first.trim().parse().ok()?;
        let last: u64 = last.trim().parse().ok()?;
        let total: Option<u64> = if total.trim() == "*" {
            None
        } else {
            Some(total.trim().parse().ok()?)
        };
        Some((first, last, total))
    })();
    let Some((first, last, total)) = parsed else {
        return Err(format!("unreadable Content-Range {value:?}"));
    };
    if let Some(total) = total {
        if total != size {
            return Err(format!(
                "the source file is {total} bytes, the manifest says {size}"
            ));
        }
    }
    if first != start || last + 1 != end {
        return Err(format!(
            "asked for bytes {start}-{}, the server answered {value:?}",
            end - 1
        ));
    }
    Ok(())
}
