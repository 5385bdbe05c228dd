//! The configuration of the findings from measured signals: temperature, throttling, PCIe
//! replay rate.

use infergate_config::units::Dur;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::health::{Action, Severity};

/// GPU temperature. A hot GPU is slow, not broken: no action either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TemperaturePolicy {
    /// Degraded at or above this (°C). Default 85; `null` disables.
    pub degraded_c: Option<u32>,
    /// Unhealthy at or above this (°C). Default 95; `null` disables.
    pub unhealthy_c: Option<u32>,
}

impl Default for TemperaturePolicy {
    fn default() -> Self {
        TemperaturePolicy {
            degraded_c: Some(85),
            unhealthy_c: Some(95),
        }
    }
}

/// Clock-event (throttle) reasons.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlePolicy {
    /// Reason names (nvml-wrapper's `ThrottleReasons` flag names, case-insensitive) that
    /// count. Default: the hardware ones, `HW_SLOWDOWN`, `HW_THERMAL_SLOWDOWN`,
    /// `HW_POWER_BRAKE_SLOWDOWN`.
    pub reasons: Vec<String>,
    /// Default: degraded.
    pub severity: Severity,
    /// Default: none.
    pub action: Action,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            reasons: vec![
                "HW_SLOWDOWN".into(),
                "HW_THERMAL_SLOWDOWN".into(),
                "HW_POWER_BRAKE_SLOWDOWN".into(),
            ],
            severity: Severity::Degraded,
            action: Action::None,
        }
    }
}

/// PCIe replay rate, from the cumulative replay counter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PcieReplayPolicy {
    /// The window the rate is measured over. Default `1m`.
    pub window: Dur,
    /// Degraded when replays per minute exceed this. Default 16 (DCGM's limit for a Gen4 x16
    /// link; Gen5 x16 is 31). `null` disables.
    pub degraded_per_minute: Option<u64>,
    /// Unhealthy when replays per minute exceed this. Default `null` (disabled).
    pub unhealthy_per_minute: Option<u64>,
}

impl Default for PcieReplayPolicy {
    fn default() -> Self {
        PcieReplayPolicy {
            window: Dur::secs(60),
            degraded_per_minute: Some(16),
            unhealthy_per_minute: None,
        }
    }
}
