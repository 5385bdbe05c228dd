//! The exporter task: batches spans from the queue and posts them to the OTLP/HTTP receiver
//! as `ExportTraceServiceRequest` protobuf, one request at a time. While an export is in
//! flight, new spans wait in the bounded queue or are dropped there; a failed export drops its
//! batch (counted), without retries.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, timeout_at, Instant};

use super::span::kv;
use super::TraceCounters;

struct Export {
    endpoint: Uri,
    timeout: Duration,
    max_batch: usize,
    delay: Duration,
    resource: Resource,
    client: Client<HttpConnector, Full<Bytes>>,
    counters: TraceCounters,
}

pub(super) fn spawn(
    cfg: &infergate_config::Tracing,
    rx: mpsc::Receiver<Vec<Span>>,
    counters: TraceCounters,
) -> Result<JoinHandle<()>, String> {
    let endpoint: Uri = cfg
        .otlp
        .endpoint
        .parse()
        .map_err(|e| format!("tracing.otlp.endpoint: {:?}: {e}", cfg.otlp.endpoint))?;
    let e = Export {
        endpoint,
        timeout: cfg.otlp.timeout.get(),
        max_batch: usize::try_from(cfg.max_batch).unwrap_or(usize::MAX).max(1),
        delay: cfg.batch_delay.get(),
        resource: Resource {
            attributes: vec![
                kv("service.name", cfg.service_name.as_str()),
                kv("service.version", env!("CARGO_PKG_VERSION")),
                kv("telemetry.sdk.name", "infergate"),
                kv("telemetry.sdk.language", "rust"),
            ],
            ..Default::default()
        },
        client: Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http(),
        counters,
    };
    Ok(tokio::spawn(run(e, rx)))
}

async fn run(e: Export, mut rx: mpsc::Receiver<Vec<Span>>) {
    let mut batch: Vec<Span> = Vec::with_capacity(e.max_batch);
    while let Some(first) = rx.recv().await {
        batch.extend(first);
        let deadline = Instant::now() + e.delay;
        let mut open = true;
        while batch.len() < e.max_batch {
            match timeout_at(deadline, rx.recv()).await {
                Ok(Some(more)) => batch.extend(more),
                Ok(None) => {
                    open = false;
                    break;
                }
                Err(_) => break,
            }
        }
        while !batch.is_empty() {
            let n = batch.len().min(e.max_batch);
            let rest = batch.split_off(n);
            let sent = std::mem::replace(&mut batch, rest);
            e.send(sent).await;
        }
        if !open {
            break;
        }
    }
}

impl Export {
    async fn send(&self, spans: Vec<Span>) {
        let n = spans.len() as u64;
        let msg = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "infergate".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let body = Bytes::from(msg.encode_to_vec());
        let req = Request::builder()
            .method(Method::POST)
            .uri(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body));
        let req = match req {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(error = %err, "cannot build the OTLP export request");
                self.counters.dropped_export.inc_by(n);
                return;
            }
        };
        let result = timeout(self.timeout, async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            // Read the (small) answer whole so that the connection can be reused.
            let _ = resp.into_body().collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("answered {status}"))
            }
        })
        .await;
        match result {
            Ok(Ok(())) => self.counters.exported.inc_by(n),
            Ok(Err(why)) => {
                tracing::warn!(endpoint = %self.endpoint, spans = n, error = %why, "span export failed");
                self.counters.dropped_export.inc_by(n);
            }
            Err(_) => {
                tracing::warn!(endpoint = %self.endpoint, spans = n, "span export timed out");
                self.counters.dropped_export.inc_by(n);
            }
        }
    }
}
