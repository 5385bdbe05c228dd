//! GPU health from `infergate-control` health feeds: one task per feed long-polls
//! `GET {url}?since=VERSION&wait=20s` and hands each new document to the writer, which applies
//! it to the endpoints ([`crate::feeds`] says how).
//!
//! When a feed cannot be read for `stale_after`, its state is dropped and its endpoints fall
//! back to passive health only (fail open): a control process that died, or a network
//! partition between gateway and node, must not take healthy capacity away; outlier detection
//! still protects against endpoints that really fail. `infergate_health_feed_stale` shows it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate_wire::feed::FeedDoc;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::writer::WriterHandle;

/// Follows one feed until the task is aborted. `first` is told once the feed has answered
/// (its document handed to the writer) or failed once.
pub async fn follow(
    writer: WriterHandle,
    metrics: std::sync::Arc<Metrics>,
    url: String,
    stale_after: Duration,
    mut first: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(2)));
    http.set_nodelay(true);
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(http);
    let stale = metrics.feed_stale(&url);
    let mut version = 0u64;
    let mut last_ok = Instant::now();
    let mut failures = 0u32;
    loop {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!("{url}{sep}since={version}&wait=20s");
        match fetch(&client, &target).await {
            Ok(doc) => {
                failures = 0;
                last_ok = Instant::now();
                stale.set(0);
                version = doc.version;
                writer.feed(&url, doc).await;
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
            }
            Err(e) => {
                failures += 1;
                if let Some(tx) = first.take() {
                    let _ = tx.send(());
                }
                if failures == 1 {
                    tracing::warn!(feed = %url, error = %e, "cannot read health feed; keeping its last state");
                }
                if last_ok.elapsed() >= stale_after && stale.get() == 0 {
                    tracing::warn!(feed = %url, "health feed stale: failing open to passive health");
                    stale.set(1);
                    writer.feed_stale(&url).await;
                }
                let backoff = Duration::from_millis(200 * u64::from(failures.min(10)));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

async fn fetch(client: &Client<HttpConnector, Empty<Bytes>>, url: &str) -> Result<FeedDoc, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let req = http::Request::get(uri)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(25), client.request(req))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let body = tokio::time::timeout(
        Duration::from_secs(5),
        http_body_util::Limited::new(resp.into_body(), 1 << 20).collect(),
    )
    .await
    .map_err(|_| "body timed out".to_owned())?
    .map_err(|e| e.to_string())?
    .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("bad feed document: {e}"))
}
