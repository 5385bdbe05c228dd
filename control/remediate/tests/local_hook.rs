//! `LocalActions`: the hook's environment, its timeout and failures, and a whole local
//! remediation through `Remediator::local` (real time: a paused clock would fire the hook's
//! timeout while the process runs).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use infergate_config::Dur;
use infergate_gpu::health::{Action, Severity};
use infergate_remediate::{
    Cause, GpuVerdict, HookConfig, HostRequest, LocalActions, NodeActions, RemediationConfig,
    Remediator, State, Step,
};

fn temp_file(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("infergate-remediate-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out");
    let _ = std::fs::remove_file(&path);
    path
}

/// A hook appending its INFERGATE_* variables, one line per run, to `out`.
fn recording_hook(out: &Path) -> HookConfig {
    HookConfig {
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            r#"printf '%s|%s|%s|%s|%s|%s\n' "$INFERGATE_ACTION" "$INFERGATE_NODE" "$INFERGATE_GPU" "$INFERGATE_REASON" "$INFERGATE_CODE" "$INFERGATE_DETAIL" >> "$0""#.into(),
            out.display().to_string(),
        ],
        timeout: Dur::secs(10),
    }
}

fn cause() -> Cause {
    Cause {
        gpus: vec![0, 3],
        code: "xid_48".into(),
        reason: "GPU 0: XID 48: double-bit ECC error".into(),
    }
}

#[tokio::test]
async fn the_hook_gets_the_finding_in_its_environment() {
    let out = temp_file("env");
    let a = LocalActions::new("node-a", Some(recording_hook(&out)));
    a.request_host_action(&HostRequest::ResetGpu { gpus: vec![0, 3] }, &cause())
        .await
        .unwrap();
    a.restart_pods(&[3], &cause()).await.unwrap();
    let lines = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        [
            "reset-gpu|node-a|0,3|GPU 0: XID 48: double-bit ECC error|xid_48|reset-gpu:0,3",
            "restart-pod|node-a|0,3|GPU 0: XID 48: double-bit ECC error|xid_48|3",
        ]
    );
}

#[tokio::test]
async fn a_slow_hook_is_killed_at_its_timeout() {
    let hook = HookConfig {
        command: vec!["/bin/sh".into(), "-c".into(), "sleep 30".into()],
        timeout: Dur::millis(200),
    };
    let a = LocalActions::new("node-a", Some(hook));
    let start = Instant::now();
    let err = a.cordon(&cause()).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("killed after"), "{err}");
}

#[tokio::test]
async fn a_failing_hook_fails_the_action() {
    let hook = HookConfig {
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo no GPU tooling >&2; exit 3".into(),
        ],
        timeout: Dur::secs(10),
    };
    let a = LocalActions::new("node-a", Some(hook));
    let err = a.uncordon(&cause()).await.unwrap_err();
    assert!(err.to_string().contains("no GPU tooling"), "{err}");
    let missing = HookConfig {
        command: vec!["/nonexistent/hook".into()],
        timeout: Dur::secs(10),
    };
    let err = LocalActions::new("node-a", Some(missing))
        .uncordon(&cause())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot start"), "{err}");
}

#[tokio::test]
async fn without_a_hook_actions_are_only_logged() {
    let a = LocalActions::new("node-a", None);
    a.cordon(&cause()).await.unwrap();
    assert_eq!(a.fleet_health().await.unwrap(), None);
}

#[tokio::test]
async fn a_local_remediation_runs_the_hook_for_each_step() {
    let out = temp_file("remediator");
    let mut config = RemediationConfig {
        hook: Some(recording_hook(&out)),
        ..RemediationConfig::default()
    };
    config.breaker.settle_time = Dur::secs(0);
    let mut r = Remediator::local(config, "node-a");
    let bad = vec![GpuVerdict {
        gpu: 2,
        severity: Severity::Unhealthy,
        action: Action::RebootNode,
        reasons: vec!["XID 79: GPU has fallen off the bus".into()],
        codes: vec!["xid_79".into()],
    }];
    let outcome = r.observe(&bad).await;
    assert!(outcome.errors.is_empty(), "{outcome:?}");
    assert_eq!(
        outcome.state,
        State::Remediating(infergate_remediate::Rung::Reboot)
    );
    assert!(outcome.steps.contains(&Step::Request(HostRequest::Reboot)));
    let outcome = r.observe(&[GpuVerdict::healthy(2)]).await;
    assert_eq!(outcome.state, State::Healthy);
    let actions: Vec<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| l.split('|').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "set-condition",
            "add-taint",
            "cordon",
            "evict",
            "reboot",
            "set-condition",
            "remove-taint",
            "clear-request",
            "uncordon"
        ]
    );
}
