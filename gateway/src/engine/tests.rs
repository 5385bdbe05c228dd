#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use infergate_config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::scrape::{round, scrape};
use crate::compile::Compiler;
use crate::metrics::Metrics;
use crate::table::Table;

/// A server on loopback that answers every request with `status`, `body` (after `delay`);
/// status 0 hangs up without answering.
async fn server(status: u16, body: Vec<u8>, delay: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                if status == 0 {
                    // Hang up without an answer.
                    return;
                }
                tokio::time::sleep(delay).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

fn table(urls: &[String]) -> Table {
    let eps: Vec<String> = urls.iter().map(|u| format!("{{url: '{u}'}}")).collect();
    let yaml = format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         backends: [{{ name: b, endpoints: [{}], balancer: {{ engine_state: \
         {{ timeout: 200ms, max_bytes: 2KiB }} }} }}]\n\
         models: [{{ name: m, backend: b }}]\n",
        eps.join(", ")
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    Compiler::new(Arc::new(Metrics::new().unwrap()))
        .compile(&Arc::new(cfg))
        .unwrap()
}

const PAGE: &str =
    "vllm:num_requests_waiting 3\nvllm:num_requests_running 2\nvllm:kv_cache_usage_perc 0.5\n";

#[tokio::test]
async fn a_scrape_is_bounded_in_size_and_time() {
    let good = server(200, PAGE.as_bytes().to_vec(), Duration::ZERO).await;
    let big = server(200, vec![b'#'; 4096], Duration::ZERO).await;
    let slow = server(200, PAGE.as_bytes().to_vec(), Duration::from_secs(5)).await;
    let bad = server(503, b"no".to_vec(), Duration::ZERO).await;
    let t = table(&[good, big, slow, bad]);
    let b = t.backend("b").unwrap();
    let set = b.scheduler.as_ref().unwrap().scrape.clone().unwrap();
    let s = scrape(&b.client, &b.endpoints[0], &set).await.unwrap();
    assert_eq!((s.queue, s.running, s.kv), (3, 2, 0.5));
    let e = scrape(&b.client, &b.endpoints[1], &set).await.unwrap_err();
    assert!(e.contains("larger than 2048 bytes"), "{e}");
    let started = Instant::now();
    let e = scrape(&b.client, &b.endpoints[2], &set).await.unwrap_err();
    assert!(e.contains("no whole page within"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let e = scrape(&b.client, &b.endpoints[3], &set).await.unwrap_err();
    assert!(e.contains("503"), "{e}");
}

#[tokio::test]
async fn a_failed_scrape_keeps_the_values_and_never_ejects() {
    let good = server(200, PAGE.as_bytes().to_vec(), Duration::ZERO).await;
    let t = table(std::slice::from_ref(&good));
    let b = t.backend("b").unwrap();
    let set = b.scheduler.as_ref().unwrap().scrape.clone().unwrap();
    round(b, &set).await;
    let state = &b.endpoints[0].state;
    let first = state.engine.read(Instant::now()).unwrap();
    assert_eq!(first.sample.queue, 3);
    // An endpoint that hangs up, with the same values stored.
    let gone = server(0, Vec::new(), Duration::ZERO).await;
    let t2 = table(&[gone]);
    let b2 = t2.backend("b").unwrap();
    b2.endpoints[0]
        .state
        .engine
        .set(first.sample, Instant::now());
    round(b2, &set).await;
    let s2 = &b2.endpoints[0].state;
    assert_eq!(s2.engine.failures(), 1);
    assert_eq!(s2.engine.read(Instant::now()).unwrap().sample.queue, 3);
    assert!(!s2.is_ejected(Instant::now()));
    assert_eq!(s2.consecutive_failures(), 0);
}
