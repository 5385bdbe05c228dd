//! Shared by the release tests (included with `#[path]`): a control process on the fake NVML
//! library, a gateway following its feed, a stable and a canary simulator, steady streamed
//! load, and `infergate-control release ...` run as a user would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use infergate_e2e::*;
use tokio::process::Command;

pub const STREAM: &str =
    r#"{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true}"#;

/// Everything a release test runs.
pub struct Stack {
    pub dir: PathBuf,
    pub control: Proc,
    pub control_addr: SocketAddr,
    pub control_config: PathBuf,
    pub scenario: PathBuf,
    pub gateway: Gateway,
    pub stable: Sim,
    pub canary: Sim,
}

/// Starts the stack: `canary_args` are the canary simulator's options; `scenario` the fake
/// NVML scenario (GPU 0 holds the stable endpoint, GPU 1 the canary).
pub async fn stack(canary_args: &[&str], scenario: &str) -> Stack {
    let dir = temp_path("release");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario_path = dir.join("scenario.yaml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let control_config = dir.join("control.yaml");
    std::fs::write(
        &control_config,
        format!(
            "node: node-a\nlisten: {}\ngpu: {{ interval: 500ms, call_timeout: 1s }}\n\
             remediation: {{ mode: off }}\nrelease: {{ state_dir: \"{}\" }}\n",
            free_port(),
            dir.join("releases").display()
        ),
    )
    .unwrap();
    let (control, control_addr) = start_control(
        &control_config,
        &[("INFERGATE_FAKE_NVML_SCENARIO", scenario_path.as_path())],
    )
    .await;
    let stable = Sim::start(&["--ttft-ms", "40", "--itl-ms", "5", "--served-version", "v1"]).await;
    let mut args = vec!["--served-version", "v2"];
    args.extend_from_slice(canary_args);
    if !canary_args.contains(&"--ttft-ms") {
        args.extend_from_slice(&["--ttft-ms", "40"]);
    }
    if !canary_args.contains(&"--itl-ms") {
        args.extend_from_slice(&["--itl-ms", "5"]);
    }
    let canary = Sim::start(&args).await;
    let gateway = Gateway::start(&gateway_config(control_addr, &stable, &canary)).await;
    Stack {
        dir,
        control,
        control_addr,
        control_config,
        scenario: scenario_path,
        gateway,
        stable,
        canary,
    }
}

pub fn gateway_config(control: SocketAddr, stable: &Sim, canary: &Sim) -> String {
    [
        "listeners:".to_owned(),
        "  data: { address: \"127.0.0.1:0\" }".to_owned(),
        "  admin: { address: \"127.0.0.1:0\" }".to_owned(),
        "health_feeds:".to_owned(),
        format!("  - {{ url: \"http://{control}/v1/health\", stale_after: 3s, hold_down: 2s }}"),
        "backends:".to_owned(),
        "  - name: pool".to_owned(),
        "    endpoints:".to_owned(),
        format!(
            "      - {{ url: \"{}\", labels: {{ version: v1, node: node-a, gpus: \"0\" }} }}",
            stable.url()
        ),
        format!(
            "      - {{ url: \"{}\", labels: {{ version: v2, node: node-a, gpus: \"1\" }} }}",
            canary.url()
        ),
        "models:".to_owned(),
        "  - name: demo".to_owned(),
        "    variants:".to_owned(),
        "      - { name: stable, backend: pool, selector: { version: v1 } }".to_owned(),
        "      - { name: canary, backend: pool, selector: { version: v2 } }".to_owned(),
        "    routes:".to_owned(),
        "      - name: default".to_owned(),
        "        split: [{ variant: stable, weight: 100 }, { variant: canary, weight: 0 }]"
            .to_owned(),
        "        sticky: { header: x-user-id }".to_owned(),
    ]
    .join("\n")
        + "\n"
}

impl Stack {
    /// A release spec for this stack; `extra` is appended (more fields).
    pub fn spec(&self, name: &str, steps: &str, extra: &str) -> PathBuf {
        self.spec_with_source(
            name,
            steps,
            extra,
            &format!(
                "source: {{ gateways: [\"http://{}\"] }}",
                self.gateway.admin
            ),
        )
    }

    pub fn spec_with_source(&self, name: &str, steps: &str, extra: &str, source: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.yaml"));
        std::fs::write(
            &path,
            format!(
                "name: {name}\nmodel: demo\nstable: stable\ncanary: canary\nsteps: {steps}\n\
                 step_interval: 2s\nmin_requests: 20\n\
                 gates: {{ ttft_p95_ratio: 1.5, tpot_p95_ratio: 1.5, error_rate_delta: 0.02 }}\n\
                 {source}\n{extra}"
            ),
        )
        .unwrap();
        path
    }

    /// Kills control with SIGKILL and starts it again on the same config, address and state.
    pub async fn kill_and_restart_control(&mut self) {
        self.control.signal("KILL");
        self.control.wait_exit(Duration::from_secs(10)).await;
        let (control, addr) = start_control(
            &self.control_config,
            &[("INFERGATE_FAKE_NVML_SCENARIO", self.scenario.as_path())],
        )
        .await;
        assert_eq!(addr, self.control_addr, "control listens where it did");
        self.control = control;
    }

    /// Starts a Prometheus that scrapes the gateway every second; returns it with its URL.
    pub async fn prometheus(&self) -> (tokio::process::Child, String) {
        let cfg = self.dir.join("prometheus.yml");
        std::fs::write(
            &cfg,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
                 scrape_configs:\n  - job_name: infergate\n    static_configs:\n      - targets: ['{}']\n",
                self.gateway.admin
            ),
        )
        .unwrap();
        let addr = free_port();
        let bin = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("prom-data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "start prometheus (install the Debian package `prometheus`, or set PROMETHEUS_BIN)",
            );
        wait_until(
            "Prometheus has scraped the gateway",
            Duration::from_secs(60),
            || async {
                if tokio::net::TcpStream::connect(addr).await.is_err() {
                    return false;
                }
                let r = get(addr, "/api/v1/query?query=up").await;
                r.status == http::StatusCode::OK && r.json()["data"]["result"][0]["value"][1] == "1"
            },
        )
        .await;
        (child, format!("http://{addr}"))
    }

    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// Runs `infergate-control release ARGS --control URL`; returns (exit code, stdout+stderr).
    pub async fn cli(&self, args: &[&str], within: Duration) -> (i32, String) {
        let out = tokio::time::timeout(
            within,
            Command::new(bin("infergate-control"))
                .arg("release")
                .args(args)
                .args(["--control", &self.control_url()])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the CLI did not end in time")
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// The release as control's API shows it.
    pub async fn release(&self, name: &str) -> serde_json::Value {
        let r = get(self.control_addr, &format!("/v1/releases/{name}")).await;
        assert_eq!(
            r.status,
            http::StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body())
        );
        r.json()
    }

    /// Waits until the release's state is one of `states`.
    pub async fn wait_state(
        &self,
        name: &str,
        states: &[&str],
        within: Duration,
    ) -> serde_json::Value {
        wait_for(&format!("release {name} in {states:?}"), within, || async {
            let r = self.release(name).await;
            if states.contains(&r["state"].as_str().unwrap_or("")) {
                Ok(r)
            } else {
                Err(format!("state {}", r["state"]))
            }
        })
        .await
    }
}

/// Steady streamed load on the gateway: `workers` clients in a loop, counting completed and
/// failed requests, until dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    pub ok: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
    pub failures: Arc<std::sync::Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks = (0..workers)
            .map(|_| {
                let (stop, ok, failed, failures) =
                    (stop.clone(), ok.clone(), failed.clone(), failures.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match stream_once(addr, STREAM).await {
                            StreamResult::Complete => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            other => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                failures.lock().unwrap().push(format!("{other:?}"));
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            ok,
            failed,
            failures,
            tasks,
        }
    }

    /// Stops the clients and returns (completed, failed).
    pub async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
