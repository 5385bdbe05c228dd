//! Helpers shared by the integration tests: a kube client for the fake, and waiting on
//! streams with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use infergate_fake_kube::FakeKube;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How long a test waits for something the fake should do at once.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A kube client built the way the gateway builds one outside a cluster: from a kubeconfig
/// file written by the fake.
pub async fn client(fake: &FakeKube) -> kube::Client {
    let dir = std::env::temp_dir().join(format!(
        "fake-kube-{}-{}",
        std::process::id(),
        fake.addr().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig");
    fake.write_kubeconfig(&path).unwrap();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), format!("{}/", fake.url()));
    kube::Client::try_from(config).unwrap()
}

/// Awaits `fut`, failing the test after [`PATIENCE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The next item of `stream`, failing the test after [`PATIENCE`] or at its end.
pub async fn next<S: Stream + Unpin>(stream: &mut S, what: &str) -> S::Item {
    within(what, stream.next())
        .await
        .unwrap_or_else(|| panic!("stream ended waiting for {what}"))
}

/// Skips items until one satisfies `wanted`, failing the test after [`PATIENCE`].
pub async fn until<S, F>(stream: &mut S, what: &str, mut wanted: F) -> S::Item
where
    S: Stream + Unpin,
    F: FnMut(&S::Item) -> bool,
{
    within(what, async {
        loop {
            match stream.next().await {
                Some(item) if wanted(&item) => return item,
                Some(_) => {}
                None => panic!("stream ended waiting for {what}"),
            }
        }
    })
    .await
}

/// Runs `stream` on its own task, as a long-lived watcher runs, and hands its items back.
pub fn drive<S>(stream: S) -> futures::stream::BoxStream<'static, S::Item>
where
    S: Stream + Send + 'static,
    S::Item: Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if tx.send(item).is_err() {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// Polls `check` every 10 ms until it holds, failing the test after [`PATIENCE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
