use std::path::Path;
use std::time::Duration;

use super::call::human_duration;
use super::fields::recovery_action;
use super::NvmlProbe;
use crate::health::RecoveryAction;
use crate::probe::ProbeError;

#[test]
fn durations_read_like_people_write_them() {
    assert_eq!(human_duration(Duration::from_secs(2)), "2s");
    assert_eq!(human_duration(Duration::from_millis(500)), "500ms");
    assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
}

#[test]
fn recovery_action_values() {
    assert_eq!(recovery_action(0), Some(RecoveryAction::None));
    assert_eq!(recovery_action(1), Some(RecoveryAction::GpuReset));
    assert_eq!(recovery_action(2), Some(RecoveryAction::NodeReboot));
    assert_eq!(recovery_action(3), Some(RecoveryAction::DrainP2p));
    assert_eq!(recovery_action(4), Some(RecoveryAction::DrainAndReset));
    assert_eq!(recovery_action(5), None);
    assert_eq!(recovery_action(7), Some(RecoveryAction::NodeReboot));
}

#[test]
fn bogus_library_is_not_available() {
    let err = NvmlProbe::load(
        Some(Path::new("/nonexistent/libnvidia-ml.so.1")),
        "n",
        Duration::from_secs(2),
    )
    .unwrap_err();
    assert!(matches!(err, ProbeError::NotAvailable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("NVML not available: "), "{msg}");
    assert!(msg.contains("/nonexistent/libnvidia-ml.so.1"), "{msg}");
}
