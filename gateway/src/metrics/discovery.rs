//! The metrics of endpoint and feed discovery, one series per source: a backend's name, or
//! `health_feeds[N]`.

use prometheus::{
    Gauge, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use super::register;

pub(super) struct DiscoveryFamilies {
    objects: IntGaugeVec,
    age: GaugeVec,
    errors: IntCounterVec,
}

impl DiscoveryFamilies {
    pub(super) fn new(r: &Registry) -> prometheus::Result<Self> {
        Ok(DiscoveryFamilies {
            objects: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "infergate_discovery_objects",
                        "Endpoints (or health feeds) a discovery source yields now.",
                    ),
                    &["source"],
                ),
            )?,
            age: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "infergate_discovery_sync_age_seconds",
                        "Seconds since a discovery source was last known in sync with the API server: 0 while its watch is healthy, growing while the API server cannot be reached (the last known set is kept).",
                    ),
                    &["source"],
                ),
            )?,
            errors: register(
                r,
                IntCounterVec::new(
                    Opts::new(
                        "infergate_discovery_errors_total",
                        "Failed lists and watches of a discovery source.",
                    ),
                    &["source"],
                ),
            )?,
        })
    }

    pub(super) fn source(&self, source: &str) -> DiscoveryMetrics {
        DiscoveryMetrics {
            objects: self.objects.with_label_values(&[source]),
            age: self.age.with_label_values(&[source]),
            errors: self.errors.with_label_values(&[source]),
        }
    }

    pub(super) fn retire(&self, source: &str) {
        let _ = self.objects.remove_label_values(&[source]);
        let _ = self.age.remove_label_values(&[source]);
        let _ = self.errors.remove_label_values(&[source]);
    }
}

/// The series of one discovery source.
#[derive(Clone)]
pub struct DiscoveryMetrics {
    pub objects: IntGauge,
    pub age: Gauge,
    pub errors: IntCounter,
}
