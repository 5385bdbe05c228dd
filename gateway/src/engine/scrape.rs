//! Scraping one backend's endpoints: every `interval`, each endpoint's metrics page is read
//! (at most `concurrency` at once, each within `timeout` and `max_bytes`) and its gauges are
//! stored in the endpoint's [`EngineGauge`](crate::endpoint::EngineGauge). A failed scrape
//! leaves the old values (their age grows) and never touches health or ejection.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backend::{BackendRt, EndpointRt, UpstreamClient};
use crate::endpoint::EngineSample;
use crate::pick_policy::ScrapeSettings;

/// Scrapes the backend last sent on `rx` until the sender goes. A new backend (a reload or a
/// new endpoint set) is picked up at the next round.
pub async fn follow(mut rx: watch::Receiver<Arc<BackendRt>>) {
    loop {
        let backend = rx.borrow_and_update().clone();
        let Some(set) = backend.scheduler.as_ref().and_then(|s| s.scrape.clone()) else {
            drop(backend);
            if rx.changed().await.is_err() {
                return;
            }
            continue;
        };
        let started = Instant::now();
        round(&backend, &set).await;
        drop(backend);
        tokio::select! {
            _ = tokio::time::sleep_until(started + set.interval) => {}
            changed = rx.changed() => if changed.is_err() { return },
        }
    }
}

/// One scrape of every endpoint of `b`.
pub async fn round(b: &BackendRt, set: &ScrapeSettings) {
    futures::stream::iter(b.endpoints.iter())
        .for_each_concurrent(set.concurrency, |ep| async move {
            match scrape(&b.client, ep, set).await {
                Ok(s) => ep.state.engine.set(s, Instant::now()),
                Err(e) => {
                    ep.state.engine.fail();
                    tracing::debug!(backend = %b.name, endpoint = %ep.state.url, error = %e, "engine state scrape failed");
                }
            }
        })
        .await;
}

/// Reads and parses one endpoint's metrics page.
pub async fn scrape(
    client: &UpstreamClient,
    ep: &EndpointRt,
    set: &ScrapeSettings,
) -> Result<EngineSample, String> {
    let uri = Uri::builder()
        .scheme(ep.scheme.clone())
        .authority(ep.authority.clone())
        .path_and_query(format!("{}{}", ep.prefix, set.path))
        .build()
        .map_err(|e| format!("bad metrics URL: {e}"))?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(uri)
        .header(http::header::ACCEPT, "text/plain")
        .body(Full::new(Bytes::new()))
        .map_err(|e| format!("bad metrics request: {e}"))?;
    let read = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if resp.status() != StatusCode::OK {
            return Err(format!("answered {}", resp.status()));
        }
        let mut body = resp.into_body();
        let mut page = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("reading the page failed: {e}"))?;
            if let Ok(data) = frame.into_data() {
                if page.len() + data.len() > set.max_bytes {
                    return Err(format!("page larger than {} bytes", set.max_bytes));
                }
                page.extend_from_slice(&data);
            }
        }
        Ok(page)
    };
    let page = tokio::time::timeout(set.timeout, read)
        .await
        .map_err(|_| format!("no whole page within {:?}", set.timeout))??;
    crate::engine::parse::parse(&page, &set.names, set.model_name.as_deref())
}
