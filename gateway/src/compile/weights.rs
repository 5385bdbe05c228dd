//! Weights from a release: a model's rules whose split names every variant the release moves
//! take the release's weights for those variants; other rules, and other variants of a rule,
//! keep the config's.

use std::collections::BTreeMap;

use infergate_config::Model;

/// Variant name -> weight.
pub type Weights = BTreeMap<String, u32>;

/// `m` with the release's weights, or `None` when no rule names every variant of `w`.
pub fn weighted(m: &Model, w: &Weights) -> Option<Model> {
    if w.is_empty() {
        return None;
    }
    let names_all = |split: &[infergate_config::SplitEntry]| {
        w.keys().all(|v| split.iter().any(|e| &e.variant == v))
    };
    if !m.routes.iter().any(|r| names_all(&r.split)) {
        return None;
    }
    let mut out = m.clone();
    for r in out.routes.iter_mut().filter(|r| names_all(&r.split)) {
        for e in &mut r.split {
            if let Some(weight) = w.get(&e.variant) {
                e.weight = *weight;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn model() -> Model {
        serde_json::from_value(serde_json::json!({
            "name": "demo",
            "variants": [{"name": "stable", "backend": "a"}, {"name": "canary", "backend": "b"}],
            "routes": [
                {"name": "testers", "match": {"headers": [{"name": "x-tester", "present": true}]},
                 "split": [{"variant": "canary", "weight": 1}]},
                {"name": "default",
                 "split": [{"variant": "stable", "weight": 100}, {"variant": "canary", "weight": 0}]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn rules_that_name_both_variants_take_the_weights() {
        let w: Weights = [("stable".into(), 75), ("canary".into(), 25)].into();
        let m = weighted(&model(), &w).unwrap();
        assert_eq!(
            m.routes[0].split[0].weight, 1,
            "a canary-only rule keeps its split"
        );
        assert_eq!(m.routes[1].split[0].weight, 75);
        assert_eq!(m.routes[1].split[1].weight, 25);
    }

    #[test]
    fn weights_that_name_no_rule_change_nothing() {
        let w: Weights = [("stable".into(), 50), ("v3".into(), 50)].into();
        assert!(weighted(&model(), &w).is_none());
        assert!(weighted(&model(), &Weights::new()).is_none());
    }
}
