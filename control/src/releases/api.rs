//! The releases' HTTP API on control's listener:
//!
//! | | |
//! | --- | --- |
//! | `POST /v1/releases` | body: the spec (YAML or JSON) → 201 with the release |
//! | `GET /v1/releases` | every release: `{"releases": [...]}` |
//! | `GET /v1/releases/NAME` | one release: its record, spec, canary weight, last read error |
//! | `POST /v1/releases/NAME/abort` | stable 100 % at once (state `aborted`) |
//! | `POST /v1/releases/NAME/promote` | canary 100 % at once (state `promoted`) |
//! | `DELETE /v1/releases/NAME` | forget it: its weights leave the feed |
//! | `GET /v1/releases/NAME/report.html`, `.../report.json` | the report |

use http::{Method, StatusCode};
use infergate_release::engine::Release;
use serde_json::{json, Value};

use super::{Refusal, Releases};

/// Largest spec accepted.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

/// An answer: status, content type and body.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

fn json_answer(status: StatusCode, v: &Value) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        body: serde_json::to_vec(v).unwrap_or_default(),
    }
}

fn refused(r: Refusal) -> Answer {
    let status = match r {
        Refusal::NotFound(_) => StatusCode::NOT_FOUND,
        Refusal::Conflict(_) => StatusCode::CONFLICT,
        Refusal::Invalid(_) => StatusCode::BAD_REQUEST,
        Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    json_answer(status, &json!({"error": r.to_string()}))
}

/// A release as the API shows it: the record's fields, plus the spec, the weights published
/// now and, once it has ended, the change that makes the config agree.
pub fn view(r: &Release) -> Value {
    let mut v = serde_json::to_value(&r.record).unwrap_or_else(|_| json!({}));
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "spec".into(),
            serde_json::to_value(&r.spec).unwrap_or(Value::Null),
        );
        o.insert("canary_weight".into(), json!(r.state.canary_weight));
        o.insert("generation".into(), json!(r.state.generation));
        o.insert("retries".into(), json!(r.state.retries));
        if let Some(e) = &r.state.read_error {
            o.insert("read_error".into(), json!(e));
        }
        if let Some(by) = &r.state.superseded_by {
            o.insert("superseded_by".into(), json!(by));
        }
        if let Some(s) = r.final_split() {
            o.insert("final_split".into(), json!(s));
        }
    }
    v
}

/// Whether `path` is one of the releases' routes.
pub fn owns(path: &str) -> bool {
    path == "/v1/releases" || path.starts_with("/v1/releases/")
}

/// Answers a request to the releases' API. `body` is the request's body (empty for GET).
pub fn handle(releases: &Releases, method: &Method, path: &str, body: &[u8]) -> Answer {
    let rest = path.strip_prefix("/v1/releases").unwrap_or("");
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (method, parts.as_slice()) {
        (&Method::POST, []) => {
            let Ok(text) = std::str::from_utf8(body) else {
                return refused(Refusal::Invalid("the spec is not UTF-8".into()));
            };
            match releases.create(text) {
                Ok(r) => json_answer(StatusCode::CREATED, &view(&r)),
                Err(e) => refused(e),
            }
        }
        (&Method::GET, []) => {
            let all: Vec<Value> = releases.list().iter().map(view).collect();
            json_answer(StatusCode::OK, &json!({ "releases": all }))
        }
        (&Method::GET, [name]) => match releases.get(name) {
            Some(r) => json_answer(StatusCode::OK, &view(&r)),
            None => refused(Refusal::NotFound(format!("no release {name:?}"))),
        },
        (&Method::GET, [name, file @ ("report.html" | "report.json")]) => {
            match releases.get(name) {
                Some(r) if *file == "report.html" => Answer {
                    status: StatusCode::OK,
                    content_type: "text/html; charset=utf-8",
                    body: infergate_release::report::html(&r.record).into_bytes(),
                },
                Some(r) => Answer {
                    status: StatusCode::OK,
                    content_type: "application/json",
                    body: infergate_release::report::json(&r.record).into_bytes(),
                },
                None => refused(Refusal::NotFound(format!("no release {name:?}"))),
            }
        }
        (&Method::POST, [name, action @ ("abort" | "promote")]) => {
            match releases.end(name, *action == "promote") {
                Ok(r) => json_answer(StatusCode::OK, &view(&r)),
                Err(e) => refused(e),
            }
        }
        (&Method::DELETE, [name]) => match releases.delete(name) {
            Ok(r) => json_answer(StatusCode::OK, &view(&r)),
            Err(e) => refused(e),
        },
        _ => json_answer(
            StatusCode::NOT_FOUND,
            &json!({"error": format!("no route {method} {path}")}),
        ),
    }
}
