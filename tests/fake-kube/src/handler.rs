//! Routes one request to discovery, get, list or watch, and logs it.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::discovery;
use crate::kind::Kind;
use crate::list::list;
use crate::query::{route, Query, Route};
use crate::shared::Shared;
use crate::stats::{RequestRecord, Stats};
use crate::status::{self, Body};
use crate::watch::watch;

pub(crate) async fn handle<B>(
    shared: Arc<Shared>,
    req: Request<B>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let resp = respond(&shared, req.method(), &path, &raw_query);
    shared.stats.record(RequestRecord {
        method: req.method().to_string(),
        path,
        query: raw_query,
        status: resp.status().as_u16(),
    });
    Ok(resp)
}

fn respond(shared: &Arc<Shared>, method: &Method, path: &str, raw_query: &str) -> Response<Body> {
    let route = route(path);
    if *method != Method::GET {
        if route == Route::Unknown {
            return status::not_served();
        }
        let msg = "the server does not allow this method on the requested resource";
        return status::error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", msg);
    }
    let ok = |body| status::json_response(StatusCode::OK, &body);
    let q = Query::parse(raw_query);
    match route {
        Route::Version => ok(discovery::version()),
        Route::CoreVersions => ok(discovery::core_versions(&shared.addr.to_string())),
        Route::CoreResources => ok(discovery::core_resources()),
        Route::Groups => ok(discovery::groups()),
        Route::PoolResources => ok(discovery::pool_resources()),
        Route::Collection { kind, namespace } if q.flag("watch") => {
            watch(Arc::clone(shared), kind, namespace, &q)
        }
        Route::Collection { kind, namespace } => list(shared, kind, namespace.as_deref(), &q),
        Route::Object {
            kind,
            namespace,
            name,
        } => get(shared, kind, namespace, name),
        Route::Unknown => status::not_served(),
    }
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
        None => {
            let resource = match kind.group() {
                "" => kind.plural().to_owned(),
                group => format!("{}.{group}", kind.plural()),
            };
            let msg = format!("{resource} \"{name}\" not found");
            let details = json!({"name": name, "group": kind.group(), "kind": kind.plural()});
            let body = status::failure(StatusCode::NOT_FOUND, "NotFound", &msg, details);
            status::json_response(StatusCode::NOT_FOUND, &body)
        }
    }
}
