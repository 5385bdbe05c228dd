//! The gateway reloads a config mounted from a Kubernetes ConfigMap: the file is a symlink to
//! `..data/gateway.yaml`, `..data` a symlink to a timestamped directory, and an update is the
//! kubelet's swap (a new timestamped directory, a `..data_tmp` symlink to it renamed over
//! `..data`, the old directory removed). Built here in a temporary directory, exactly so.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use infergate_gateway::{Running, Source};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How often the gateway checks the file.
const POLL: Duration = Duration::from_millis(50);
/// Longest a change is awaited, in real time.
const WAIT: Duration = Duration::from_secs(10);

fn config(model: &str) -> String {
    format!(
        "listeners: {{ data: {{ address: '127.0.0.1:0' }}, admin: {{ address: '127.0.0.1:0' }} }}\n\
         backends:\n  - name: b\n    endpoints:\n      \
         - url: 'http://127.0.0.1:${{INFERGATE_TEST_UNSET_PORT:-1}}'\n\
         models: [{{ name: {model}, backend: b }}]\n"
    )
}

/// A ConfigMap volume as the kubelet lays it out, holding `gateway.yaml`.
struct ConfigMapDir {
    root: PathBuf,
    current: String,
    updates: u32,
}

impl ConfigMapDir {
    fn new(name: &str, text: &str) -> ConfigMapDir {
        let root = std::env::temp_dir().join(format!("infergate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let current = "..2026_12_06_08_00_00.123456789".to_string();
        write_dir(&root.join(&current), text);
        std::os::unix::fs::symlink(&current, root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/gateway.yaml", root.join("gateway.yaml")).unwrap();
        ConfigMapDir {
            root,
            current,
            updates: 0,
        }
    }

    fn path(&self) -> PathBuf {
        self.root.join("gateway.yaml")
    }

    /// The kubelet's update: the new content in a new timestamped directory, `..data_tmp`
    /// linked to it and renamed over `..data`, then the old directory removed. The new file
    /// is given the old one's modification time: the watcher must not rely on it.
    fn update(&mut self, text: &str) {
        self.updates += 1;
        let next = format!("..2026_12_06_08_{:02}_00.123456789", self.updates);
        let old_file = self.root.join(&self.current).join("gateway.yaml");
        let mtime = std::fs::metadata(old_file).unwrap().modified().unwrap();
        write_dir(&self.root.join(&next), text);
        let f = std::fs::File::options()
            .write(true)
            .open(self.root.join(&next).join("gateway.yaml"))
            .unwrap();
        f.set_modified(mtime).unwrap();
        drop(f);
        let tmp = self.root.join("..data_tmp");
        std::os::unix::fs::symlink(&next, &tmp).unwrap();
        std::fs::rename(&tmp, self.root.join("..data")).unwrap();
        std::fs::remove_dir_all(self.root.join(&self.current)).unwrap();
        self.current = next;
    }
}

impl Drop for ConfigMapDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn write_dir(dir: &Path, text: &str) {
    std::fs::create_dir(dir).unwrap();
    std::fs::write(dir.join("gateway.yaml"), text).unwrap();
}

/// `GET path` on the admin listener: the body.
async fn get(gw: &Running, path: &str) -> String {
    let mut s = TcpStream::connect(gw.admin_addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    body.to_string()
}

async fn status(gw: &Running) -> Value {
    serde_json::from_str(&get(gw, "/admin/config").await).unwrap()
}

/// `infergate_config_reloads_total{result=...}` from `/metrics` (0 when absent).
async fn reloads(gw: &Running, result: &str) -> f64 {
    let text = get(gw, "/metrics").await;
    let series = format!("infergate_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Polls `/admin/config` until `check` holds; fails after [`WAIT`].
async fn until(gw: &Running, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let st = status(gw).await;
        if check(&st) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; last: {st}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn model(st: &Value) -> &str {
    st["config"]["models"][0]["name"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_kubelets_symlink_swap_is_applied_and_a_bad_config_keeps_the_old() {
    // Model names of one length: the valid configs have the same size, and `update` keeps the
    // modification time, so only the content tells them apart.
    let mut dir = ConfigMapDir::new("configmap-reload", &config("alpha"));
    let path = dir.path();
    let text = std::fs::read_to_string(&path).unwrap();
    let gw = infergate_gateway::start(Source {
        path: Some(&path),
        text: &text,
        poll: POLL,
    })
    .await
    .unwrap();
    let st = status(&gw).await;
    assert_eq!((st["version"].as_u64(), model(&st)), (Some(1), "alpha"));
    assert_eq!(
        st["config"]["backends"][0]["endpoints"][0]["url"],
        "http://127.0.0.1:1"
    );

    // A new config arrives by the swap, and the old directory is removed.
    dir.update(&config("bravo"));
    let st = until(&gw, "the new config served", |st| model(st) == "bravo").await;
    assert_eq!(st["version"], 2);
    // Many polls later, with the old directory gone, nothing failed and nothing changed.
    tokio::time::sleep(POLL * 8).await;
    let st = status(&gw).await;
    assert_eq!((st["version"].as_u64(), model(&st)), (Some(2), "bravo"));
    assert_eq!(st["reloads_failed"], 0, "{st}");
    assert!(st["last_error"].is_null(), "{st}");
    assert_eq!(reloads(&gw, "failure").await, 0.0);
    assert_eq!(reloads(&gw, "success").await, 1.0);

    // An invalid config: the old one keeps serving and the error is reported.
    dir.update(&config("gamma").replace("backend: b", "backend: nope"));
    let st = until(&gw, "the failure reported", |st| {
        !st["last_error"].is_null()
    })
    .await;
    assert_eq!((st["version"].as_u64(), model(&st)), (Some(2), "bravo"));
    assert_eq!(st["reloads_failed"], 1, "{st}");
    let errors = st["last_error"]["errors"].to_string();
    assert!(errors.contains("models[0].backend"), "{errors}");
    assert_eq!(st["last_error"]["trigger"], "file_changed");
    tokio::time::sleep(POLL * 8).await;
    assert_eq!(status(&gw).await["reloads_failed"], 1, "counted once");
    assert_eq!(reloads(&gw, "failure").await, 1.0);

    // A valid one after it is applied and clears the error.
    dir.update(&config("delta"));
    let st = until(&gw, "the next config served", |st| model(st) == "delta").await;
    assert_eq!(st["version"], 3);
    assert!(st["last_error"].is_null(), "{st}");
}
