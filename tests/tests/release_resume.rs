//! Releases survive their control process: killed with SIGKILL mid-release, control resumes
//! the release from the same step, and the gateway keeps the last weights meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "release_harness.rs"]
mod harness;

use std::time::Duration;

use harness::*;
use infergate_e2e::*;

#[tokio::test]
async fn control_killed_mid_release_resumes_from_the_same_step() {
    let mut s = stack(&[], "devices: [{}, {}]\n").await;
    let load = Load::start(s.gateway.data, 6);
    let spec = s.spec("resume", "[10, 30, 100]", "");
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
    // Into the second step, then a little way into its window.
    let before = wait_for("the second step", Duration::from_secs(30), || async {
        let r = s.release("resume").await;
        if r["current_step"] == 1 {
            Ok(r)
        } else {
            Err(format!("{}", r["current_step"]))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    s.kill_and_restart_control().await;
    let after = s.release("resume").await;
    assert_eq!(after["current_step"], 1, "{after}");
    assert_eq!(after["state"], "running");
    assert_eq!(after["canary_weight"], 30);
    assert_eq!(
        after["steps"].as_array().unwrap().len(),
        2,
        "no step was started again: {after}"
    );
    assert_eq!(
        after["steps"][1]["started_at_ms"],
        before["steps"][1]["started_at_ms"]
    );
    assert_eq!(after["generation"], before["generation"]);
    assert!(
        s.control.output().contains("release resumed"),
        "{}",
        s.control.output()
    );
    // The resumed release goes on to the end.
    let done = s
        .wait_state(
            "resume",
            &["promoted", "rolled_back"],
            Duration::from_secs(40),
        )
        .await;
    let stats = load.stop().await;
    assert_eq!(done["state"], "promoted", "{done}");
    assert_eq!(done["steps"].as_array().unwrap().len(), 3);
    assert_eq!(stats.1, 0, "failed requests: {stats:?}");
}
