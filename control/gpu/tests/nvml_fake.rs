//! The real `NvmlProbe` (nvml-wrapper, dlopen) against the fake NVML library
//! (`control/fake-nvml`, built as `target/<profile>/libinfergate_fake_nvml.so`).
//!
//! Each test runs in a child process of this test binary (`<exe> <test> --exact`), with the
//! scenario in `INFERGATE_FAKE_NVML_SCENARIO`: NVML state is per process (one `nvmlInit`, one
//! timeline), and the environment is set only on the child's command line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use infergate_gpu::check::check;
use infergate_gpu::health::{Action, CallFault, RecoveryAction, Severity};
use infergate_gpu::nvml::NvmlProbe;
use infergate_gpu::policy::{Policy, PolicyConfig};
use infergate_gpu::probe::{GpuProbe, ProbeError};

const LIB_NAME: &str = "libinfergate_fake_nvml.so";
const CHILD_ENV: &str = "INFERGATE_FAKE_NVML_TEST_CHILD";
const LIB_ENV: &str = "INFERGATE_FAKE_NVML_LIB";
const SCENARIO_ENV: &str = "INFERGATE_FAKE_NVML_SCENARIO";

/// The fake library: `$INFERGATE_FAKE_NVML_LIB`, else the newest of
/// `target/<profile>/libinfergate_fake_nvml.so` (from `cargo build --workspace`) and
/// `target/<profile>/deps/libinfergate_fake_nvml.so` (built for this crate's dev-dependency).
fn fake_lib() -> PathBuf {
    if let Some(p) = std::env::var_os(LIB_ENV) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{LIB_ENV}={} does not exist", p.display());
        return p;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("the test binary's directory");
    let profile = deps.parent().expect("target/<profile>");
    let candidates = [profile.join(LIB_NAME), deps.join(LIB_NAME)];
    candidates
        .iter()
        .filter_map(|p| {
            let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok()?;
            Some((modified, p.clone()))
        })
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| {
            panic!(
                "the fake NVML library is missing: looked for {} and {}. `cargo test` builds it \
                 (it is a dev-dependency of infergate-gpu), as do `cargo build --workspace` and \
                 `cargo build -p infergate-fake-nvml`; or point {LIB_ENV} at a copy.",
                candidates[0].display(),
                candidates[1].display()
            )
        })
}

/// In the parent: runs `test` in a child process with `scenario`, asserts that it passed, and
/// returns `None`. In the child: returns the library path to test against.
fn in_child(test: &str, scenario: &str) -> Option<PathBuf> {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test) {
        return Some(PathBuf::from(
            std::env::var_os(LIB_ENV).expect("the parent sets the library path"),
        ));
    }
    let lib = fake_lib();
    let dir =
        std::env::temp_dir().join(format!("infergate-fake-nvml-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario_path = dir.join("scenario.yaml");
    std::fs::write(&scenario_path, scenario).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env(LIB_ENV, &lib)
        .env(SCENARIO_ENV, &scenario_path)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {test} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    None
}

fn load(lib: &Path, timeout: Duration) -> NvmlProbe {
    NvmlProbe::load(Some(lib), "node-a", timeout).expect("the fake NVML loads")
}

/// Calls `attempt` every 20 ms until it gives a value; panics with `what` after 10 s.
fn poll<T>(what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = attempt() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn readings_match_scenario() {
    let Some(lib) = in_child(
        "readings_match_scenario",
        r#"
driver_version: "560.35.03"
devices:
  - uuid: GPU-11111111-2222-3333-4444-555555555555
    name: NVIDIA H200
    temperature_c: 51
    power_w: 312.5
    memory_used_bytes: 10737418240
    memory_total_bytes: 150323855360
    ecc_volatile_uncorrected: 0
    retired_pages: { single_bit: 2, double_bit: 1, pending: true }
    remapped_rows: { correctable: 3, uncorrectable: 1, pending: true, failure: false }
    throttle_reasons: 0x48
    pcie_replay_count: 7
    recovery_action: gpu_reset
  - ecc_volatile_uncorrected: 2
    unsupported: [nvmlDeviceGetRetiredPages, nvmlDeviceGetRetiredPagesPendingStatus,
                  nvmlDeviceGetPcieReplayCounter]
    unsupported_fields: [142, 143, 144, 145, 230]
timeline:
  - { at: 1s, gpu: 0, set: { temperature: 97, pcie_replays: 9 } }
"#,
    ) else {
        return;
    };
    let probe = load(&lib, Duration::from_secs(2));
    assert_eq!(probe.driver_version(), Some("560.35.03"));
    let r = probe.read().unwrap();
    assert_eq!(r.node, "node-a");
    assert_eq!(r.driver_version.as_deref(), Some("560.35.03"));
    assert!(r.read_at_ms > 0);
    assert_eq!(r.gpus.len(), 2);

    let g = &r.gpus[0];
    assert_eq!(g.index, 0);
    assert_eq!(g.uuid, "GPU-11111111-2222-3333-4444-555555555555");
    assert_eq!(g.name, "NVIDIA H200");
    assert_eq!(g.temperature_c, Some(51));
    assert_eq!(g.power_w, Some(312.5));
    assert_eq!(g.memory_used_bytes, Some(10 << 30));
    assert_eq!(g.memory_total_bytes, Some(140 << 30));
    assert_eq!(g.ecc_volatile_uncorrected, Some(0));
    let rp = g.retired_pages.as_ref().unwrap();
    assert_eq!((rp.single_bit, rp.double_bit, rp.pending), (2, 1, true));
    let rr = g.remapped_rows.as_ref().unwrap();
    assert_eq!(
        (rr.correctable, rr.uncorrectable, rr.pending, rr.failure),
        (3, 1, true, false)
    );
    assert_eq!(g.throttle_reasons, Some(0x48));
    assert_eq!(g.throttle_names, ["HW_SLOWDOWN", "HW_THERMAL_SLOWDOWN"]);
    assert_eq!(g.pcie_replay_count, Some(7));
    assert_eq!(g.recovery_action, Some(RecoveryAction::GpuReset));
    assert!(g.xids.is_empty());
    assert!(g.errors.is_empty(), "{:?}", g.errors);
    assert!(g.faults.is_empty());

    let g = &r.gpus[1];
    assert_eq!(g.index, 1);
    assert_eq!(g.uuid, "GPU-fa4e0000-0000-4000-8000-000000000001");
    assert_eq!(g.name, "NVIDIA H100 80GB HBM3");
    assert_eq!(g.temperature_c, Some(40));
    assert_eq!(g.power_w, Some(100.0));
    assert_eq!(g.ecc_volatile_uncorrected, Some(2));
    // Not supported is `None`, not an error.
    assert_eq!(g.retired_pages, None);
    assert_eq!(g.remapped_rows, None);
    assert_eq!(g.pcie_replay_count, None);
    assert_eq!(g.recovery_action, None);
    assert_eq!(g.throttle_reasons, Some(0));
    assert!(g.throttle_names.is_empty());
    assert!(g.errors.is_empty(), "{:?}", g.errors);

    let mut policy = Policy::new(PolicyConfig::default());
    let v = policy.evaluate(&r);
    assert_eq!(
        (v[0].state, v[0].action),
        (Severity::Unhealthy, Action::ResetGpu)
    );
    assert!(v[0].findings.iter().any(|f| f.code == "recovery_action"));
    assert_eq!(
        (v[1].state, v[1].action),
        (Severity::Unhealthy, Action::ResetGpu)
    );
    assert!(v[1]
        .findings
        .iter()
        .any(|f| f.code == "ecc_volatile_uncorrected"));
    assert_eq!(check(&probe, &PolicyConfig::default()).exit_code, 1);

    // The timeline: at 1 s GPU 0 heats up.
    let r = poll("GPU 0 at 97 °C", || {
        let r = probe.read().unwrap();
        (r.gpus[0].temperature_c == Some(97)).then_some(r)
    });
    assert_eq!(r.gpus[0].temperature_c, Some(97));
    assert_eq!(r.gpus[0].pcie_replay_count, Some(9));
}

#[test]
fn xid_arrives_through_the_event_thread() {
    let Some(lib) = in_child(
        "xid_arrives_through_the_event_thread",
        "devices: [{}, {}]\ntimeline:\n  - { at: 1s, gpu: 1, xid: 79 }\n",
    ) else {
        return;
    };
    let started = Instant::now();
    let probe = load(&lib, Duration::from_secs(2));
    let rx = probe.xid_events().expect("the receiver, once");
    assert!(probe.xid_events().is_none());
    let ev = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("XID 79 within 10 s");
    assert_eq!((ev.gpu, ev.xid), (1, 79));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(ev.at_ms > 0);

    let r = probe.read().unwrap();
    assert!(r.gpus[0].xids.is_empty());
    assert_eq!(r.gpus[1].xids, [ev]);
    let mut policy = Policy::new(PolicyConfig::default());
    let v = policy.evaluate(&r);
    assert_eq!(v[0].state, Severity::Healthy);
    assert_eq!(
        (v[1].state, v[1].action),
        (Severity::Unhealthy, Action::RebootNode)
    );
    assert_eq!(v[1].new_findings, ["xid_79"]);

    // Delivered once.
    let r = probe.read().unwrap();
    assert!(r.gpus[1].xids.is_empty());
    // ...and remembered by the policy.
    assert_eq!(policy.evaluate(&r)[1].state, Severity::Unhealthy);
}

#[test]
fn hung_call_is_bounded_and_the_probe_stays_usable() {
    let Some(lib) = in_child(
        "hung_call_is_bounded_and_the_probe_stays_usable",
        "devices: [{}, {}]\ntimeline:\n  - { at: 0s, gpu: 0, hang: nvmlDeviceGetTemperature, for: 4s }\n",
    ) else {
        return;
    };
    let loaded = Instant::now();
    let timeout = Duration::from_millis(500);
    let probe = load(&lib, timeout);

    let t = Instant::now();
    let r = probe.read().unwrap();
    let took = t.elapsed();
    assert!(took >= timeout, "{took:?}");
    assert!(took < timeout + Duration::from_secs(2), "{took:?}");
    let g0 = &r.gpus[0];
    assert!(
        g0.errors
            .iter()
            .any(|e| e == "nvmlDeviceGetTemperature did not answer within 500ms"),
        "{:?}",
        g0.errors
    );
    assert_eq!(g0.faults, [CallFault::Timeout]);
    assert_eq!(g0.temperature_c, None);
    let g1 = &r.gpus[1];
    assert_eq!(g1.temperature_c, Some(40));
    assert!(g1.errors.is_empty(), "{:?}", g1.errors);

    let mut policy = Policy::new(PolicyConfig::default());
    let v = policy.evaluate(&r);
    assert_eq!(v[0].state, Severity::Unhealthy);
    assert!(v[0].findings.iter().any(|f| f.code == "probe_timeout"));
    // One slow reading takes traffic off but reboots nothing.
    assert_eq!(v[0].action, Action::None);

    // The next read does not wait for the hung call again, and the other calls work.
    let t = Instant::now();
    let r = probe.read().unwrap();
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let g0 = &r.gpus[0];
    assert!(
        g0.errors
            .iter()
            .any(|e| e.starts_with("nvmlDeviceGetTemperature still has not answered")),
        "{:?}",
        g0.errors
    );
    assert_eq!(g0.power_w, Some(100.0));
    assert_eq!(g0.temperature_c, None);

    // After the hang, everything answers again.
    let r = poll("the temperature after the hang", || {
        let r = probe.read().unwrap();
        r.gpus[0].temperature_c.is_some().then_some(r)
    });
    assert!(
        loaded.elapsed() >= Duration::from_secs(4),
        "{:?}",
        loaded.elapsed()
    );
    assert_eq!(r.gpus[0].temperature_c, Some(40));
    assert!(r.gpus[0].errors.is_empty(), "{:?}", r.gpus[0].errors);
}

#[test]
fn hung_device_count_fails_the_read() {
    let Some(lib) = in_child(
        "hung_device_count_fails_the_read",
        "devices: [{}]\ntimeline:\n  - { at: 0s, hang: nvmlDeviceGetCount, for: 2s }\n",
    ) else {
        return;
    };
    let loaded = Instant::now();
    let probe = load(&lib, Duration::from_millis(300));
    let err = probe.read().unwrap_err();
    assert!(matches!(err, ProbeError::Failed(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("nvmlDeviceGetCount_v2 did not answer within 300ms"),
        "{err}"
    );
    let r = poll("a read after the hang", || probe.read().ok());
    assert!(
        loaded.elapsed() >= Duration::from_secs(2),
        "{:?}",
        loaded.elapsed()
    );
    assert_eq!(r.gpus.len(), 1);
    assert_eq!(r.gpus[0].temperature_c, Some(40));
}

#[test]
fn lost_gpu() {
    let Some(lib) = in_child(
        "lost_gpu",
        "devices: [{}, {}]\ntimeline:\n  - { at: 1s, gpu: 1, lost: true }\n",
    ) else {
        return;
    };
    let loaded = Instant::now();
    let probe = load(&lib, Duration::from_secs(2));
    let mut policy = Policy::new(PolicyConfig::default());
    let r = probe.read().unwrap();
    assert!(r.gpus[1].errors.is_empty());
    assert_eq!(policy.evaluate(&r)[1].state, Severity::Healthy);

    let r = poll("GPU 1 lost", || {
        let r = probe.read().unwrap();
        (!r.gpus[1].faults.is_empty()).then_some(r)
    });
    assert!(
        loaded.elapsed() >= Duration::from_millis(900),
        "{:?}",
        loaded.elapsed()
    );
    let g1 = &r.gpus[1];
    assert_eq!(
        g1.uuid, "GPU-fa4e0000-0000-4000-8000-000000000001",
        "known from before"
    );
    assert_eq!(g1.faults, [CallFault::GpuLost]);
    assert!(g1.errors[0].contains("the GPU is lost"), "{:?}", g1.errors);
    assert_eq!(g1.temperature_c, None);
    assert_eq!(r.gpus[0].temperature_c, Some(40));
    let v = policy.evaluate(&r);
    assert_eq!(
        (v[1].state, v[1].action),
        (Severity::Unhealthy, Action::RebootNode)
    );
    assert!(v[1].findings.iter().any(|f| f.code == "gpu_lost"));
    assert_eq!(v[0].state, Severity::Healthy);
}

#[test]
fn injected_failures() {
    let Some(lib) = in_child(
        "injected_failures",
        r#"
devices: [{}, {}]
timeline:
  - { at: 0s, gpu: 0, fail: nvmlDeviceGetPowerUsage, with: unknown }
  - { at: 0s, gpu: 1, fail: nvmlDeviceGetTemperature, with: reset_required }
"#,
    ) else {
        return;
    };
    let probe = load(&lib, Duration::from_secs(2));
    let r = probe.read().unwrap();
    assert_eq!(r.gpus[0].faults, [CallFault::Error]);
    assert_eq!(
        r.gpus[0].errors,
        ["nvmlDeviceGetPowerUsage failed: an internal driver error occurred"]
    );
    assert_eq!(r.gpus[0].power_w, None);
    assert_eq!(r.gpus[0].temperature_c, Some(40));
    assert_eq!(r.gpus[1].faults, [CallFault::ResetRequired]);
    let v = Policy::new(PolicyConfig::default()).evaluate(&r);
    assert_eq!(
        (v[0].state, v[0].action),
        (Severity::Unhealthy, Action::None)
    );
    assert_eq!(
        (v[1].state, v[1].action),
        (Severity::Unhealthy, Action::ResetGpu)
    );
}

#[test]
fn init_failure_is_not_available() {
    let Some(lib) = in_child(
        "init_failure_is_not_available",
        "init_error: driver_not_loaded\ndevices: [{}]\n",
    ) else {
        return;
    };
    let err = NvmlProbe::load(Some(&lib), "n", Duration::from_secs(2)).unwrap_err();
    assert!(matches!(err, ProbeError::NotAvailable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("NVML not available: "), "{msg}");
    assert!(msg.contains("NVIDIA driver is not loaded"), "{msg}");
}
