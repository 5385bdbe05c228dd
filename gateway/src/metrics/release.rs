//! The release weights a gateway applies, and whether their feed is stale.

use prometheus::{IntGaugeVec, Opts, Registry};

use super::register;

pub(super) struct ReleaseFamilies {
    weight: IntGaugeVec,
    stale: IntGaugeVec,
}

impl ReleaseFamilies {
    pub(super) fn new(r: &Registry) -> prometheus::Result<Self> {
        Ok(ReleaseFamilies {
            weight: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "infergate_release_weight",
                        "The weight a release gives a variant of a model, applied over the config's split.",
                    ),
                    &["release", "model", "variant"],
                ),
            )?,
            stale: register(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "infergate_release_stale",
                        "1 while the feed that gave a release's weights cannot be read: the last weights stay.",
                    ),
                    &["release"],
                ),
            )?,
        })
    }

    /// Replaces every series with these releases: (name, model, weights, stale).
    pub(super) fn set<'a>(
        &self,
        releases: impl Iterator<
            Item = (
                &'a str,
                &'a str,
                &'a std::collections::BTreeMap<String, u32>,
                bool,
            ),
        >,
    ) {
        self.weight.reset();
        self.stale.reset();
        for (name, model, weights, stale) in releases {
            for (variant, w) in weights {
                self.weight
                    .with_label_values(&[name, model, variant])
                    .set(i64::from(*w));
            }
            self.stale.with_label_values(&[name]).set(i64::from(stale));
        }
    }
}
