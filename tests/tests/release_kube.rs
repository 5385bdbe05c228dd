//! Releases in a cluster: two control processes in Kubernetes mode against the fake API
//! server keep releases in ConfigMaps and both publish them; a gateway that follows only the
//! second control's feed gets the weights of a release submitted to the first; and when the
//! control driving a release is killed with SIGKILL, the other takes its Lease once it expires
//! and finishes the release from the same step. Each transition is posted as a Kubernetes
//! Event on the node of the control that made it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "release_harness.rs"]
mod harness;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::*;
use infergate_e2e::*;
use infergate_fake_kube::FakeKube;

const NAMESPACE: &str = "infergate-system";
/// Where the controls post Events (remediation's namespace for node Events).
const EVENTS_NAMESPACE: &str = "default";

/// A control process in Kubernetes mode on `node`, with 3 s Leases.
async fn control(dir: &Path, node: &str, kubeconfig: &Path, scenario: &Path) -> (Proc, SocketAddr) {
    let config = dir.join(format!("control-{node}.yaml"));
    std::fs::write(
        &config,
        format!(
            "node: {node}\nlisten: {}\ngpu: {{ interval: 500ms, call_timeout: 1s }}\n\
             remediation: {{ mode: kubernetes, namespace: {NAMESPACE}, lease_duration: 3s }}\n\
             release: {{ state_dir: \"{}\" }}\n",
            free_port(),
            dir.join(format!("releases-{node}")).display()
        ),
    )
    .unwrap();
    start_control(
        &config,
        &[
            ("INFERGATE_FAKE_NVML_SCENARIO", scenario),
            ("KUBECONFIG", kubeconfig),
        ],
    )
    .await
}

struct Cluster {
    fake: FakeKube,
    /// The stack's control is the first control (node-a), where releases are submitted.
    s: Stack,
    second: Proc,
    second_addr: SocketAddr,
}

async fn cluster() -> Cluster {
    let fake = FakeKube::start().await.unwrap();
    let dir: PathBuf = temp_path("release-kube");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).unwrap();
    let scenario = dir.join("scenario.yaml");
    std::fs::write(&scenario, "devices: [{}, {}]\n").unwrap();
    let (first, first_addr) = control(&dir, "node-a", &kubeconfig, &scenario).await;
    let (second, second_addr) = control(&dir, "node-b", &kubeconfig, &scenario).await;
    let stable = Sim::start(&["--ttft-ms", "40", "--itl-ms", "5", "--served-version", "v1"]).await;
    let canary = Sim::start(&["--ttft-ms", "40", "--itl-ms", "5", "--served-version", "v2"]).await;
    // Only the second control's feed; the endpoints are on its node.
    let gw = gateway_config(second_addr, &stable, &canary).replace("node-a", "node-b");
    let gateway = Gateway::start(&gw).await;
    let s = Stack {
        control_config: dir.join("control-node-a.yaml"),
        dir,
        control: first,
        control_addr: first_addr,
        scenario,
        gateway,
        stable,
        canary,
    };
    Cluster {
        fake,
        s,
        second,
        second_addr,
    }
}

/// The canary weight a control's feed carries for `name`, if any.
async fn feed_weight(control: SocketAddr, name: &str) -> Option<u64> {
    let doc = get(control, "/v1/health").await.json();
    doc["releases"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)?["weights"]["canary"]
        .as_u64()
}

/// The Events posted about release `name` (by the `release NAME: ` their messages start
/// with), oldest first, once one with `reason` is there.
async fn release_events(fake: &FakeKube, name: &str, reason: &str) -> Vec<serde_json::Value> {
    let prefix = format!("release {name}: ");
    wait_for(
        &format!("a {reason} Event for {name}"),
        Duration::from_secs(10),
        || async {
            let events: Vec<serde_json::Value> = fake
                .events(EVENTS_NAMESPACE)
                .into_iter()
                .filter(|e| {
                    e["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with(&prefix))
                })
                .collect();
            if events.iter().any(|e| e["reason"] == reason) {
                Ok(events)
            } else {
                Err(format!("{events:?}"))
            }
        },
    )
    .await
}

/// The Events with `reason` and `message` (without the `release NAME: ` prefix).
fn with<'a>(
    events: &'a [serde_json::Value],
    name: &str,
    reason: &str,
    message: &str,
) -> Vec<&'a serde_json::Value> {
    let message = format!("release {name}: {message}");
    events
        .iter()
        .filter(|e| e["reason"] == reason && e["message"] == message.as_str())
        .collect()
}

/// The position (in posting order) of the one Event with `reason` whose message starts
/// with `release NAME: start`.
fn position(events: &[serde_json::Value], name: &str, reason: &str, start: &str) -> usize {
    let start = format!("release {name}: {start}");
    let found: Vec<usize> = (0..events.len())
        .filter(|&i| {
            events[i]["reason"] == reason
                && events[i]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(&start))
        })
        .collect();
    assert_eq!(found.len(), 1, "{reason} {start:?} in {events:#?}");
    found[0]
}

/// The release as `control`'s API shows it.
async fn release_at(control: SocketAddr, name: &str) -> serde_json::Value {
    get(control, &format!("/v1/releases/{name}")).await.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_are_published_by_every_control_and_survive_their_driver() {
    let Cluster {
        fake,
        mut s,
        mut second,
        second_addr,
    } = cluster().await;
    let load = Load::start(s.gateway.data, 6);

    // 1. Submitted to the first control; the gateway follows only the second's feed.
    let spec = s.spec("kube-good", "[10, 50, 100]", "");
    let (code, out) = s
        .cli(
            &["start", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let cm = fake
        .config_map(NAMESPACE, "infergate-release-kube-good")
        .expect("the release's ConfigMap");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/component"],
        "infergate-release"
    );
    wait_until(
        "the second control publishes the release",
        Duration::from_secs(5),
        || async { feed_weight(second_addr, "kube-good").await == Some(10) },
    )
    .await;
    let done = s
        .wait_state(
            "kube-good",
            &["promoted", "rolled_back"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(done["state"], "promoted", "{done}");
    // The gateway moved traffic at each step: the canary served a share that grew.
    let steps = done["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{done}");
    let share = |i: usize| {
        let c = steps[i]["canary"]["requests"].as_f64().unwrap();
        let st = steps[i]["stable"]["requests"].as_f64().unwrap();
        c / (c + st)
    };
    assert!(
        share(0) > 0.0 && share(0) < 0.3,
        "step 1 share {}",
        share(0)
    );
    assert!(
        share(1) > 0.25 && share(1) < 0.75,
        "step 2 share {}",
        share(1)
    );
    assert!(share(2) > 0.99, "step 3 share {}", share(2));
    wait_until(
        "the second control publishes the promotion",
        Duration::from_secs(5),
        || async { feed_weight(second_addr, "kube-good").await == Some(100) },
    )
    .await;
    // Every transition is an Event on a control's node: each step's start and pass, and the
    // promotion, once each.
    let events = release_events(&fake, "kube-good", "ReleasePromoted").await;
    assert_eq!(events.len(), 7, "{events:#?}");
    for e in &events {
        assert_eq!(e["type"], "Normal", "{e}");
        assert_eq!(e["action"], "Release", "{e}");
        assert_eq!(e["involvedObject"]["kind"], "Node", "{e}");
        assert!(
            ["node-a", "node-b"].contains(&e["involvedObject"]["name"].as_str().unwrap()),
            "{e}"
        );
        assert_eq!(e["source"]["component"], "infergate-control", "{e}");
        assert_eq!(e["reportingComponent"], "infergate-control", "{e}");
    }
    let step1 = with(
        &events,
        "kube-good",
        "ReleaseStep",
        "step 1 of 3: canary 10 %, stable 90 %",
    );
    assert_eq!(step1.len(), 1, "{events:#?}");
    // The control it was submitted to started it.
    assert_eq!(step1[0]["involvedObject"]["name"], "node-a");
    for (step, weight) in [(2, 50), (3, 100)] {
        let message = format!(
            "step {step} of 3: canary {weight} %, stable {} %",
            100 - weight
        );
        assert_eq!(
            with(&events, "kube-good", "ReleaseStep", &message).len(),
            1,
            "{message} in {events:#?}"
        );
    }
    let promoted = with(
        &events,
        "kube-good",
        "ReleasePromoted",
        "promoted: canary 100 %",
    );
    assert_eq!(promoted.len(), 1, "{events:#?}");
    // Each step passed after it started (a pass and the next start share a tick).
    for step in 1..=3 {
        let started = position(
            &events,
            "kube-good",
            "ReleaseStep",
            &format!("step {step} of 3:"),
        );
        let passed = position(
            &events,
            "kube-good",
            "ReleaseStepPassed",
            &format!("step {step} passed: canary "),
        );
        assert!(started < passed, "step {step} in {events:#?}");
    }

    // Both controls show the same release; deleting it anywhere removes the ConfigMap.
    assert_eq!(
        release_at(second_addr, "kube-good").await["state"],
        "promoted"
    );
    let r = request(
        s.control_addr,
        http::Method::DELETE,
        "/v1/releases/kube-good",
        &[],
    )
    .await;
    assert_eq!(r.status, http::StatusCode::OK);
    assert!(fake
        .config_map(NAMESPACE, "infergate-release-kube-good")
        .is_none());
    wait_until(
        "the second control drops the deleted release",
        Duration::from_secs(5),
        || async { feed_weight(second_addr, "kube-good").await.is_none() },
    )
    .await;

    // 2. The control driving a release is killed mid-release; the other finishes it.
    let spec = s.spec("kube-resume", "[10, 30, 100]", "");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("step_interval: 2s", "step_interval: 3s");
    std::fs::write(&spec, text).unwrap();
    let (code, out) = s
        .cli(
            &["start", "--spec", spec.to_str().unwrap()],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let lease = "infergate-release-kube-resume-0";
    let before = wait_for("the second step", Duration::from_secs(30), || async {
        let r = release_at(second_addr, "kube-resume").await;
        if r["current_step"] == 1 {
            Ok(r)
        } else {
            Err(format!("{}", r["current_step"]))
        }
    })
    .await;
    let holder = fake.lease(NAMESPACE, lease).unwrap()["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_owned();
    let (survivor, survivor_node) = if holder == "node-a" {
        s.control.signal("KILL");
        s.control.wait_exit(Duration::from_secs(10)).await;
        (second_addr, "node-b")
    } else {
        assert_eq!(holder, "node-b");
        second.signal("KILL");
        second.wait_exit(Duration::from_secs(10)).await;
        (s.control_addr, "node-a")
    };
    let killed = Instant::now();
    wait_until(
        "the surviving control takes the Lease",
        Duration::from_secs(15),
        || async {
            fake.lease(NAMESPACE, lease).unwrap()["spec"]["holderIdentity"] == survivor_node
        },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("the surviving control took the release's Lease {took:?} after the kill");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let after = release_at(survivor, "kube-resume").await;
    assert!(after["current_step"].as_u64().unwrap() >= 1, "{after}");
    assert_eq!(
        after["steps"][1]["started_at_ms"], before["steps"][1]["started_at_ms"],
        "the second step kept its window start: {after}"
    );
    let done = wait_for("the release ends", Duration::from_secs(60), || async {
        let r = release_at(survivor, "kube-resume").await;
        match r["state"].as_str() {
            Some("promoted" | "rolled_back") => Ok(r),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let stats = load.stop().await;
    assert_eq!(done["state"], "promoted", "{done}");
    assert_eq!(done["steps"].as_array().unwrap().len(), 3, "{done}");
    assert_eq!(stats.1, 0, "failed requests: {stats:?}");
    // The survivor posted the last step and the promotion on its own node.
    let events = release_events(&fake, "kube-resume", "ReleasePromoted").await;
    let step1 = with(
        &events,
        "kube-resume",
        "ReleaseStep",
        "step 1 of 3: canary 10 %, stable 90 %",
    );
    assert_eq!(step1.len(), 1, "{events:#?}");
    assert_eq!(step1[0]["involvedObject"]["name"], "node-a");
    let last = with(
        &events,
        "kube-resume",
        "ReleaseStep",
        "step 3 of 3: canary 100 %, stable 0 %",
    );
    let promoted = with(
        &events,
        "kube-resume",
        "ReleasePromoted",
        "promoted: canary 100 %",
    );
    for e in last.iter().chain(&promoted) {
        assert_eq!(e["involvedObject"]["name"], survivor_node, "{events:#?}");
    }
    assert_eq!((last.len(), promoted.len()), (1, 1), "{events:#?}");
}
