//! Routes one request to discovery, get, list, watch or a write, and logs it.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;

use crate::discovery;
use crate::kind::Kind;
use crate::list::list;
use crate::query::{route, Query, Route};
use crate::shared::Shared;
use crate::stats::{RequestRecord, Stats};
use crate::status::{self, Body};
use crate::watch::watch;
use crate::write;

pub(crate) async fn handle<B>(
    shared: Arc<Shared>,
    req: Request<B>,
) -> Result<Response<Body>, Infallible>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let resp = match body.collect().await {
        Ok(body) => respond(&shared, &parts.method, &path, &raw_query, &body.to_bytes()),
        Err(e) => status::error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("cannot read the request body: {e}"),
        ),
    };
    shared.stats.record(RequestRecord {
        method: parts.method.to_string(),
        path,
        query: raw_query,
        status: resp.status().as_u16(),
    });
    Ok(resp)
}

fn respond(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    raw_query: &str,
    body: &[u8],
) -> Response<Body> {
    let route = route(path);
    let writable = match &route {
        Route::Collection { kind, .. } | Route::Object { kind, .. } => kind.writable(),
        _ => false,
    };
    if *method != Method::GET && !writable {
        if route == Route::Unknown {
            return status::not_served();
        }
        return not_allowed();
    }
    let ok = |body| status::json_response(StatusCode::OK, &body);
    let q = Query::parse(raw_query);
    match (method, route) {
        (_, Route::Unknown) => status::not_served(),
        (&Method::GET, Route::Version) => ok(discovery::version()),
        (&Method::GET, Route::CoreVersions) => {
            ok(discovery::core_versions(&shared.addr.to_string()))
        }
        (&Method::GET, Route::CoreResources) => ok(discovery::core_resources()),
        (&Method::GET, Route::Groups) => ok(discovery::groups()),
        (&Method::GET, Route::GroupResources(group)) => ok(discovery::group_resources(&group)),
        (&Method::GET, Route::Collection { kind, namespace }) if q.flag("watch") => {
            watch(Arc::clone(shared), kind, namespace, &q)
        }
        (&Method::GET, Route::Collection { kind, namespace }) => {
            list(shared, kind, namespace.as_deref(), &q)
        }
        (
            &Method::GET,
            Route::Object {
                kind,
                namespace,
                name,
            },
        ) => get(shared, kind, namespace, name),
        (
            &Method::POST,
            Route::Collection {
                kind,
                namespace: Some(ns),
            },
        ) => write::create(shared, kind, &ns, body),
        (
            &Method::PUT,
            Route::Object {
                kind,
                namespace,
                name,
            },
        ) => write::replace(shared, kind, &namespace, &name, body),
        (
            &Method::DELETE,
            Route::Object {
                kind,
                namespace,
                name,
            },
        ) => write::delete(shared, kind, &namespace, &name),
        _ => not_allowed(),
    }
}

fn not_allowed() -> Response<Body> {
    let msg = "the server does not allow this method on the requested resource";
    status::error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", msg)
}

fn get(shared: &Shared, kind: Kind, namespace: String, name: String) -> Response<Body> {
    let found = shared
        .store()
        .get(&(kind, namespace, name.clone()))
        .cloned();
    match found {
        Some(obj) => {
            Stats::bump(&shared.stats.gets);
            status::json_response(StatusCode::OK, &obj)
        }
        None => not_found(kind, &name),
    }
}

/// 404 for an object that does not exist, as the real server words it.
pub(crate) fn not_found(kind: Kind, name: &str) -> Response<Body> {
    let msg = format!("{} \"{name}\" not found", kind.resource());
    let details = json!({"name": name, "group": kind.group(), "kind": kind.plural()});
    let body = status::failure(StatusCode::NOT_FOUND, "NotFound", &msg, details);
    status::json_response(StatusCode::NOT_FOUND, &body)
}
