//! List requests: consistent snapshots at a resourceVersion, selectors and pagination.

use http::{Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::kind::Kind;
use crate::query::Query;
use crate::selector::{FieldSelector, LabelSelector};
use crate::shared::Shared;
use crate::stats::Stats;
use crate::status::{self, ApiError, Body};

const CONTINUE_TOO_OLD: &str =
    "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter.";

/// Label and field selectors of a list or watch, from its query.
pub(crate) struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    /// Parses `labelSelector` and `fieldSelector`; the error is a 400 response.
    pub(crate) fn from_query(q: &Query, kind: Kind) -> Result<Filter, ApiError> {
        let bad = ApiError::bad_request;
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or("")).map_err(bad)?;
        let fields =
            FieldSelector::parse(q.get("fieldSelector").unwrap_or(""), kind).map_err(bad)?;
        Ok(Filter { labels, fields })
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

/// Parses a resourceVersion parameter; the error is a 400 response.
pub(crate) fn parse_rv(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid resource version {text:?}: must be a number"
        ))
    })
}

pub(crate) fn list(
    shared: &Shared,
    kind: Kind,
    namespace: Option<&str>,
    q: &Query,
) -> Response<Body> {
    match try_list(shared, kind, namespace, q) {
        Ok(body) => {
            Stats::bump(&shared.stats.lists);
            status::json_response(StatusCode::OK, &body)
        }
        Err(err) => {
            if err.code == StatusCode::GONE {
                Stats::bump(&shared.stats.gone);
            }
            err.response()
        }
    }
}

fn try_list(
    shared: &Shared,
    kind: Kind,
    namespace: Option<&str>,
    q: &Query,
) -> Result<Value, ApiError> {
    let filter = Filter::from_query(q, kind)?;
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid limit {text:?}: must be a number"
                )));
            }
        },
    };
    let store = shared.store();
    let (at, after) = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let Some((rv, after)) = parse_token(token) else {
                return Err(ApiError::bad_request(format!(
                    "invalid continue token {token:?}"
                )));
            };
            if rv < store.compacted_rv() {
                return Err(ApiError::expired(CONTINUE_TOO_OLD));
            }
            (rv, Some(after))
        }
        None => (snapshot_version(&store, q)?, None),
    };
    let mut items: Vec<Value> = store
        .snapshot(kind, namespace, at)
        .into_iter()
        .filter(|o| filter.matches(o))
        .filter(|o| after.as_ref().is_none_or(|a| position(o) > *a))
        .collect();
    drop(store);
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), Value::String(at.to_string()));
    if let Some(limit) = limit.filter(|l| items.len() > *l) {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            let (ns, name) = position(last);
            meta.insert(
                "continue".into(),
                Value::String(format!("{at}/{ns}/{name}")),
            );
            meta.insert("remainingItemCount".into(), Value::from(remaining));
        }
    }
    if !kind.list_items_typed() {
        for item in &mut items {
            if let Some(obj) = item.as_object_mut() {
                obj.remove("apiVersion");
                obj.remove("kind");
            }
        }
    }
    Ok(json!({
        "apiVersion": kind.api_version(),
        "kind": format!("{}List", kind.kind()),
        "metadata": meta,
        "items": items,
    }))
}

/// The version a list without a continue token is served at, from `resourceVersion` and
/// `resourceVersionMatch`.
fn snapshot_version(store: &crate::store::Store, q: &Query) -> Result<u64, ApiError> {
    let rv = q.get("resourceVersion").filter(|v| !v.is_empty());
    let exact = match q.get("resourceVersionMatch").filter(|m| !m.is_empty()) {
        None | Some("NotOlderThan") => false,
        Some("Exact") => true,
        Some(other) => {
            let msg =
                format!("invalid resourceVersionMatch {other:?}: must be Exact or NotOlderThan");
            return Err(ApiError::bad_request(msg));
        }
    };
    let Some(rv) = rv else {
        if q.get("resourceVersionMatch").is_some_and(|m| !m.is_empty()) {
            let msg = "resourceVersionMatch is forbidden unless resourceVersion is provided";
            return Err(ApiError::bad_request(msg));
        }
        return Ok(store.rv());
    };
    let rv = parse_rv(rv)?;
    if rv > store.rv() {
        let msg = format!("Too large resource version: {rv}, current: {}", store.rv());
        return Err(ApiError::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", msg));
    }
    if !exact {
        return Ok(store.rv());
    }
    if rv < store.compacted_rv() {
        let msg = format!("too old resource version: {rv} ({})", store.compacted_rv());
        return Err(ApiError::expired(msg));
    }
    Ok(rv)
}

/// Where an object sorts in a list: namespace, then name.
fn position(obj: &Value) -> (String, String) {
    let field = |f: &str| {
        obj.pointer(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    (field("/metadata/namespace"), field("/metadata/name"))
}

/// A continue token: `<rv>/<namespace>/<name>` of the last item served.
fn parse_token(token: &str) -> Option<(u64, (String, String))> {
    let mut parts = token.splitn(3, '/');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, (parts.next()?.to_owned(), parts.next()?.to_owned())))
}
