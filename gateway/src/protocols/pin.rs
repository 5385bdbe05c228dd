//! Pinning a request to one endpoint (ComfyUI): by a client id, with a rendezvous hash over
//! the endpoints' URLs, or to the endpoint that took a prompt. The variant is chosen so that
//! the pinned endpoint is in it: a client's requests all take the variant its id chooses in the
//! rule's split (when the rule would have drawn at random), and a prompt's requests the variant
//! that holds the prompt's endpoint.

use tokio::time::Instant;

use crate::backend::BackendRt;
use crate::route::{hash_bytes, score, Decision, ModelRoute, Why};

/// Where a pinned request must go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// The rendezvous choice for this client id.
    Client(String),
    /// The endpoint with this URL (the one that took the prompt).
    Endpoint(Box<str>),
}

/// Positions in `members` to leave out so that the pick lands on the pinned endpoint: every
/// position but the pinned one. For a client, the pinned one is the first in rendezvous order
/// that is not in `tried` and not ejected (else the first not in `tried`); for a prompt, its
/// endpoint when still a member (else no pin). `tried` alone when there is no pin.
pub fn exclude_for(
    pin: Option<&Pin>,
    backend: &BackendRt,
    members: &[usize],
    tried: &[usize],
    now: Instant,
) -> Vec<usize> {
    let url = |pos: usize| {
        members
            .get(pos)
            .and_then(|&i| backend.endpoints.get(i))
            .map(|e| e.state.url.as_ref())
    };
    let target = match pin {
        None => None,
        Some(Pin::Endpoint(want)) => (0..members.len())
            .find(|&p| url(p) == Some(want.as_ref()))
            .map(|p| if tried.contains(&p) { usize::MAX } else { p }),
        Some(Pin::Client(id)) => {
            let key = hash_bytes(id.as_bytes());
            let mut ranked: Vec<(u64, usize)> = (0..members.len())
                .filter(|p| !tried.contains(p))
                .map(|p| (hash_bytes(url(p).unwrap_or("").as_bytes()) ^ key, p))
                .map(|(h, p)| (hash_bytes(&h.to_le_bytes()), p))
                .collect();
            ranked.sort_unstable_by(|a, b| b.cmp(a));
            let ejected = |p: usize| {
                members
                    .get(p)
                    .and_then(|&i| backend.endpoints.get(i))
                    .is_none_or(|e| e.state.is_ejected(now))
            };
            ranked
                .iter()
                .find(|(_, p)| !ejected(*p))
                .or(ranked.first())
                .map(|(_, p)| *p)
        }
    };
    match target {
        Some(t) => (0..members.len()).filter(|&p| p != t).collect(),
        None => tried.to_vec(),
    }
}

/// The decision with its variant moved to where the pin can be served: for a client id, the
/// variant its hash chooses in the rule's split (as a sticky key would), when the rule drew at
/// random; for a prompt, the variant holding the prompt's endpoint. Pinned (by the pin header),
/// sticky and single-variant decisions are kept.
pub fn pinned_variant(decision: Decision, route: &ModelRoute, pin: Option<&Pin>) -> Decision {
    if !matches!(decision.why, Why::Random { .. } | Why::RandomNoKey { .. }) {
        return decision;
    }
    let Some(rule) = route.rules.get(decision.rule) else {
        return decision;
    };
    let variant = match pin {
        None => return decision,
        Some(Pin::Client(id)) => {
            let key_hash = hash_bytes(id.as_bytes());
            let best = rule
                .split
                .iter()
                .map(|s| (s.variant, score(key_hash, &s.name, s.weight)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((v, _)) => {
                    return Decision {
                        variant: v,
                        why: Why::Sticky { key_hash },
                        ..decision
                    }
                }
                None => return decision,
            }
        }
        Some(Pin::Endpoint(url)) => rule.split.iter().map(|s| s.variant).find(|&v| {
            route.variants.get(v).is_some_and(|var| {
                var.members.iter().any(|&i| {
                    var.backend
                        .endpoints
                        .get(i)
                        .is_some_and(|e| e.state.url.as_ref() == url.as_ref())
                })
            })
        }),
    };
    match variant {
        Some(v) => Decision {
            variant: v,
            ..decision
        },
        None => decision,
    }
}

#[cfg(test)]
mod tests;
