//! `infergate explain` and `GET /admin/routes`: what the routing table does with a request, and
//! what it holds, computed by the same code the data path runs.

use std::fmt::Write as _;

use http::HeaderMap;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::route::{score, Cond, Matcher, ModelRoute, RequestView, Source, Why};
use crate::table::Table;

/// Describes a source for people: `header x-tenant-id`, `cookie uid`, `label tenant`.
fn describe_source(src: &Source, table: &Table) -> String {
    match src {
        Source::Header(h) => format!("header {h}"),
        Source::Cookie(c) => format!("cookie {c}"),
        Source::Label(i) => match table.labels.0.get(*i) {
            Some((name, _)) => format!("label {name}"),
            None => "label ?".into(),
        },
    }
}

fn describe_matcher(m: &Matcher, table: &Table) -> String {
    let cond = match &m.cond {
        Cond::Exact(x) => format!("is {x:?}"),
        Cond::Prefix(p) => format!("starts with {p:?}"),
        Cond::Regex(re) => format!("matches /{}/", re.as_str()),
        Cond::Present(true) => "is present".into(),
        Cond::Present(false) => "is absent".into(),
    };
    format!("{} {cond}", describe_source(&m.source, table))
}

/// The endpoints of a variant with their live state.
fn endpoints_json(route: &ModelRoute, variant: usize) -> Vec<Value> {
    let now = Instant::now();
    let v = &route.variants[variant];
    v.members
        .iter()
        .map(|&i| {
            let e = &v.backend.endpoints[i];
            let ejection = crate::ejection::ejection_json(&e.state, now);
            json!({
                "url": e.state.url,
                "labels": e.labels,
                "state": if ejection.is_some() { "ejected" } else { "healthy" },
                "in_flight": e.state.in_flight(),
                "ejection": ejection,
                "engine": crate::engine::state_json(&e.state, now),
            })
        })
        .collect()
}

/// `GET /admin/routes`: every model's variants and rules with their weights.
pub fn routes_json(table: &Table) -> Value {
    let mut models: Vec<Value> = table
        .routes()
        .map(|route| {
            let variants: Vec<Value> = route
                .variants
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let selector = route
                        .config
                        .variants
                        .iter()
                        .find(|c| c.name == v.name.as_ref())
                        .map(|c| json!(c.selector))
                        .unwrap_or_else(|| json!({}));
                    json!({
                        "name": v.name,
                        "backend": v.backend.name,
                        "selector": selector,
                        "endpoints": endpoints_json(route, i),
                    })
                })
                .collect();
            let rules: Vec<Value> = route
                .rules
                .iter()
                .map(|r| {
                    let split: Vec<Value> = r
                        .split
                        .iter()
                        .map(|s| {
                            json!({
                                "variant": s.name,
                                "weight": s.weight,
                                "percent": 100.0 * f64::from(s.weight) / r.total.max(1) as f64,
                            })
                        })
                        .collect();
                    json!({
                        "name": r.name,
                        "match": r.matchers.iter().map(|m| describe_matcher(m, table)).collect::<Vec<_>>(),
                        "split": split,
                        "sticky": r.sticky.as_ref().map(|s| describe_source(s, table)),
                        "allow_pin": r.allow_pin,
                        "shadow": r.shadow.as_ref().map(|s| json!({
                            "variant": route.variants[s.variant].name,
                            "percent": s.percent,
                            "available_permits": s.permits.available_permits(),
                        })),
                    })
                })
                .collect();
            json!({"model": route.name, "variants": variants, "rules": rules})
        })
        .collect();
    models.sort_by(|a, b| a["model"].as_str().cmp(&b["model"].as_str()));
    json!({"pin_header": table.pin_header.as_str(), "models": models})
}

/// What routing does with a request for `model` carrying `headers`, as JSON.
pub fn explain(table: &Table, model: &str, headers: &HeaderMap) -> Result<Value, String> {
    let route = table.route(model).ok_or_else(|| {
        let mut known: Vec<&str> = table.routes().map(|r| r.name.as_ref()).collect();
        known.sort_unstable();
        format!("unknown model {model:?} (known: {})", known.join(", "))
    })?;
    let view = RequestView {
        headers,
        labels: &table.labels,
    };
    let rules: Vec<Value> = route
        .rules
        .iter()
        .map(|r| {
            let checks: Vec<Value> = r
                .matchers
                .iter()
                .map(|m| json!({"condition": describe_matcher(m, table), "holds": m.holds(&view)}))
                .collect();
            json!({"name": r.name, "matches": r.matchers.iter().all(|m| m.holds(&view)), "conditions": checks})
        })
        .collect();
    let Some(d) = route.decide(&view, &table.pin_header) else {
        return Ok(json!({"model": model, "rules": rules, "decision": null,
            "result": "no rule matches: 404 no_matching_route"}));
    };
    let rule = &route.rules[d.rule];
    let variant = &route.variants[d.variant];
    let why = match &d.why {
        Why::Pinned => json!({"kind": "pin", "header": table.pin_header.as_str()}),
        Why::Only => json!({"kind": "only", "detail": "the split has one variant with weight"}),
        Why::Random { draw, total } => json!({"kind": "random", "draw": draw, "of": total}),
        Why::RandomNoKey { draw, total } => json!({
            "kind": "random",
            "draw": draw,
            "of": total,
            "detail": format!("no sticky key ({}) in the request", rule.sticky.as_ref().map(|s| describe_source(s, table)).unwrap_or_default()),
        }),
        Why::Sticky { key_hash } => json!({
            "kind": "sticky",
            "key": rule.sticky.as_ref().map(|s| describe_source(s, table)),
            "key_hash": format!("{key_hash:016x}"),
            "scores": rule.split.iter().map(|s| json!({"variant": s.name, "score": score(*key_hash, &s.name, s.weight)})).collect::<Vec<_>>(),
            "detail": "weighted rendezvous hashing: the lowest score wins",
        }),
    };
    let split: Vec<Value> = rule
        .split
        .iter()
        .map(|s| json!({"variant": s.name, "weight": s.weight}))
        .collect();
    Ok(json!({
        "model": model,
        "rules": rules,
        "decision": {
            "rule": rule.name,
            "variant": variant.name,
            "backend": variant.backend.name,
            "why": why,
            "split": split,
            "shadow": rule.shadow.as_ref().map(|s| json!({"variant": route.variants[s.variant].name, "percent": s.percent})),
        },
        "endpoints": endpoints_json(route, d.variant),
        "choice": choice_json(route, d.variant),
    }))
}

/// The endpoint the variant's backend would choose now (without a prompt: no prefix
/// affinity), and why. The place it takes is given back at once.
fn choice_json(route: &ModelRoute, variant: usize) -> Value {
    let v = &route.variants[variant];
    let b = &v.backend;
    let policy = b
        .scheduler
        .as_ref()
        .map_or(infergate_config::Policy::P2c, |s| s.policy);
    let affinity = b.scheduler.as_ref().is_some_and(|s| s.affinity.is_some());
    match b.choose(&v.members, &[], Instant::now(), None) {
        Some(c) => json!({
            "policy": policy,
            "prefix_affinity": affinity,
            "endpoint": b.endpoints[v.members[c.pos]].state.url,
            "reason": c.reason.to_string(),
        }),
        None => json!({"policy": policy, "prefix_affinity": affinity, "endpoint": null,
            "reason": "no endpoint can take the request"}),
    }
}

/// The explanation as text for a terminal.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "model: {}", v["model"].as_str().unwrap_or("?"));
    if let Some(rules) = v["rules"].as_array() {
        for r in rules {
            let mark = if r["matches"] == true {
                "matches"
            } else {
                "does not match"
            };
            let _ = writeln!(out, "rule {}: {mark}", r["name"].as_str().unwrap_or("?"));
            for c in r["conditions"].as_array().into_iter().flatten() {
                let ok = if c["holds"] == true { "yes" } else { "no " };
                let _ = writeln!(out, "    [{ok}] {}", c["condition"].as_str().unwrap_or(""));
            }
        }
    }
    let d = &v["decision"];
    if d.is_null() {
        let _ = writeln!(out, "result: {}", v["result"].as_str().unwrap_or(""));
        return out;
    }
    let _ = writeln!(
        out,
        "decision: rule {} -> variant {} (backend {})",
        d["rule"].as_str().unwrap_or("?"),
        d["variant"].as_str().unwrap_or("?"),
        d["backend"].as_str().unwrap_or("?")
    );
    let split: Vec<String> = d["split"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| format!("{} {}", s["variant"].as_str().unwrap_or("?"), s["weight"]))
        .collect();
    let _ = writeln!(out, "split: {}", split.join(", "));
    let why = &d["why"];
    let line = match why["kind"].as_str() {
        Some("pin") => format!("pinned by header {}", why["header"].as_str().unwrap_or("")),
        Some("only") => "only one variant has weight".into(),
        Some("random") => {
            let mut s = format!("weighted random: drew {} of 0..{}", why["draw"], why["of"]);
            if let Some(d) = why["detail"].as_str() {
                let _ = write!(s, " ({d})");
            }
            s
        }
        Some("sticky") => {
            let scores: Vec<String> = why["scores"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    format!(
                        "{}={:.4}",
                        s["variant"].as_str().unwrap_or("?"),
                        s["score"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            format!(
                "sticky on {} (hash {}): scores {} (lowest wins)",
                why["key"].as_str().unwrap_or("?"),
                why["key_hash"].as_str().unwrap_or("?"),
                scores.join(" ")
            )
        }
        _ => "?".into(),
    };
    let _ = writeln!(out, "why: {line}");
    if let Some(sh) = d["shadow"].as_object() {
        let _ = writeln!(
            out,
            "shadow: {}% of requests copied to {}",
            sh.get("percent").and_then(Value::as_f64).unwrap_or(0.0),
            sh.get("variant").and_then(Value::as_str).unwrap_or("?")
        );
    }
    let _ = writeln!(out, "endpoints:");
    for e in v["endpoints"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    {}  {}{}  in_flight={}  labels={}",
            e["url"].as_str().unwrap_or("?"),
            e["state"].as_str().unwrap_or("?"),
            e["ejection"]["detail"]
                .as_str()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default(),
            e["in_flight"],
            e["labels"]
        );
    }
    let c = &v["choice"];
    if c.is_object() {
        let _ = writeln!(
            out,
            "endpoint choice ({}{}): {} ({})",
            c["policy"].as_str().unwrap_or("?"),
            if c["prefix_affinity"] == true {
                " + prefix affinity, not applied without a prompt"
            } else {
                ""
            },
            c["endpoint"].as_str().unwrap_or("none"),
            c["reason"].as_str().unwrap_or("?")
        );
    }
    out
}
