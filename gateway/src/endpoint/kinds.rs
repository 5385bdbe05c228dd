//! Why endpoints fail and are ejected, and the outlier policy.

use std::time::Duration;

/// Why an endpoint was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EjectReason {
    ConsecutiveFailures = 1,
    /// A health feed reports a GPU of the endpoint unhealthy (or it recovered less than the
    /// hold-down ago).
    GpuUnhealthy = 2,
    /// The endpoint requires its model warm and the feed does not (yet) say so.
    NotWarm = 3,
}

impl EjectReason {
    pub(crate) fn from_u8(_: u8) -> Self {
        // Only outlier ejections are stored in `eject_reason`.
        EjectReason::ConsecutiveFailures
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EjectReason::ConsecutiveFailures => "consecutive_failures",
            EjectReason::GpuUnhealthy => "gpu_unhealthy",
            EjectReason::NotWarm => "model_not_warm",
        }
    }
}

/// What went wrong on an attempt, for outlier detection and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Connect,
    Timeout,
    Status5xx,
    Reset,
    Stall,
}

impl Failure {
    pub const ALL: [Failure; 5] = [
        Failure::Connect,
        Failure::Timeout,
        Failure::Status5xx,
        Failure::Reset,
        Failure::Stall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Status5xx => "status_5xx",
            Failure::Reset => "reset",
            Failure::Stall => "stall",
        }
    }
}

/// Outlier detection settings of a backend, as the data path uses them.
#[derive(Clone, Copy, Debug)]
pub struct OutlierPolicy {
    pub consecutive_failures: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    pub max_ejected_percent: u32,
}
