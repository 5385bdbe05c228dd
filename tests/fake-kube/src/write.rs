//! Writes through the API for the writable kinds (ConfigMaps, Leases, Events): create (409
//! `AlreadyExists`; `generateName`), update with a `resourceVersion` precondition (409 `Conflict` on a
//! mismatch; none given: unconditional) and delete.

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::clock;
use crate::handler::not_found;
use crate::kind::Kind;
use crate::shared::Shared;
use crate::stats::Stats;
use crate::status::{self, ApiError, Body};
use crate::store::Key;

/// `POST /.../namespaces/{ns}/{plural}`: 201 with the stored object. A body with
/// `metadata.generateName` and no name gets that prefix and five characters, unique in the
/// namespace, as the real server names it.
pub(crate) fn create(shared: &Shared, kind: Kind, namespace: &str, body: &[u8]) -> Response<Body> {
    let (name, obj) = match parse(kind, namespace, None, body) {
        Ok(x) => x,
        Err(e) => return e.response(),
    };
    let stored = shared.write(|s| {
        let name = match name.clone() {
            Name::Given(name) => name,
            Name::Generate(prefix) => (0..)
                .map(|attempt| format!("{prefix}{}", suffix(s.rv(), attempt)))
                .find(|n| s.get(&(kind, namespace.to_owned(), n.clone())).is_none())?,
        };
        let key: Key = (kind, namespace.to_owned(), name.clone());
        if s.get(&key).is_some() {
            return None;
        }
        let mut obj = obj;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("name".into(), Value::String(name));
        }
        s.apply(key.clone(), &clock::now(), |_| obj);
        s.get(&key).cloned()
    });
    match stored {
        Some(obj) => {
            Stats::bump(&shared.stats.writes);
            status::json_response(StatusCode::CREATED, &obj)
        }
        None => {
            Stats::bump(&shared.stats.conflicts);
            let name = match name {
                Name::Given(n) | Name::Generate(n) => n,
            };
            let msg = format!("{} \"{name}\" already exists", kind.resource());
            failure(kind, &name, StatusCode::CONFLICT, "AlreadyExists", &msg)
        }
    }
}

/// The name a create asks for.
#[derive(Clone)]
enum Name {
    /// `metadata.name`.
    Given(String),
    /// `metadata.generateName`: a prefix.
    Generate(String),
}

/// Five characters of the real server's alphabet for generated names, from the version the
/// store is at and the attempt (spread so that consecutive names differ in every place).
fn suffix(rv: u64, attempt: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut x = rv
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(attempt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 31;
    (0..5)
        .map(|_| {
            let c = ALPHABET[(x % ALPHABET.len() as u64) as usize];
            x /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

/// `PUT /.../namespaces/{ns}/{plural}/{name}`: 200 with the stored object.
pub(crate) fn replace(
    shared: &Shared,
    kind: Kind,
    namespace: &str,
    name: &str,
    body: &[u8],
) -> Response<Body> {
    let (_, obj) = match parse(kind, namespace, Some(name), body) {
        Ok(x) => x,
        Err(e) => return e.response(),
    };
    let wanted = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let key: Key = (kind, namespace.to_owned(), name.to_owned());
    let outcome = shared.write(|s| {
        let current = s
            .get(&key)?
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if wanted.is_some() && wanted != current {
            return Some(Err(()));
        }
        let mut obj = obj;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        s.apply(key.clone(), &clock::now(), |_| obj);
        s.get(&key).cloned().map(Ok)
    });
    match outcome {
        Some(Ok(obj)) => {
            Stats::bump(&shared.stats.writes);
            status::json_response(StatusCode::OK, &obj)
        }
        Some(Err(())) => {
            Stats::bump(&shared.stats.conflicts);
            let msg = format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                kind.resource()
            );
            failure(kind, name, StatusCode::CONFLICT, "Conflict", &msg)
        }
        None => not_found(kind, name),
    }
}

/// `DELETE /.../namespaces/{ns}/{plural}/{name}`: 200 with the object's last state.
pub(crate) fn delete(shared: &Shared, kind: Kind, namespace: &str, name: &str) -> Response<Body> {
    let key: Key = (kind, namespace.to_owned(), name.to_owned());
    let deleted = shared.write(|s| {
        let last = s.get(&key).cloned()?;
        s.delete(key.clone()).ok().map(|_| last)
    });
    match deleted {
        Some(obj) => {
            Stats::bump(&shared.stats.writes);
            status::json_response(StatusCode::OK, &obj)
        }
        None => not_found(kind, name),
    }
}

/// The object's name (or, for a create, the prefix of one to generate) and body, with its
/// `apiVersion`, `kind` and namespace checked and set, and the server-set fields (uid,
/// creationTimestamp) dropped for the store to set.
fn parse(
    kind: Kind,
    namespace: &str,
    path_name: Option<&str>,
    body: &[u8],
) -> Result<(Name, Value), ApiError> {
    let mut obj: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a JSON object: {e}")))?;
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request("the body is not a JSON object"));
    };
    for (field, want) in [("apiVersion", kind.api_version()), ("kind", kind.kind())] {
        match map.get(field).and_then(Value::as_str) {
            None => {
                map.insert(field.into(), Value::String(want.into()));
            }
            Some(got) if got == want => {}
            Some(got) => {
                return Err(ApiError::bad_request(format!(
                    "{field} {got:?} does not match the path ({want:?})"
                )));
            }
        }
    }
    let meta = map
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata is not an object"))?;
    let text = |field: &str| {
        meta.get(field)
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    };
    let name = match (text("name"), text("generateName"), path_name) {
        (Some(name), _, _) => Name::Given(name),
        (None, Some(prefix), None) => Name::Generate(prefix),
        _ => {
            return Err(ApiError::invalid(
                kind,
                "metadata.name: Required value: name or generateName is required",
            ))
        }
    };
    if let (Name::Given(name), Some(p)) = (&name, path_name) {
        if p != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL"
            )));
        }
    }
    match meta.get("namespace").and_then(Value::as_str) {
        Some(ns) if ns != namespace => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => {
            meta.insert("namespace".into(), Value::String(namespace.into()));
        }
    }
    meta.remove("uid");
    meta.remove("creationTimestamp");
    Ok((name, obj))
}

fn failure(
    kind: Kind,
    name: &str,
    code: StatusCode,
    reason: &str,
    message: &str,
) -> Response<Body> {
    let details = json!({"name": name, "group": kind.group(), "kind": kind.plural()});
    status::json_response(code, &status::failure(code, reason, message, details))
}
