//! The admin listener: metrics, health and the admin API.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /healthz` | 200 while the process runs |
//! | `GET /readyz` | 200 when serving, 503 before start and while draining |
//! | `GET /admin/config` | version, hash, load time, last reload error, the live config |
//! | `GET /admin/endpoints` | every endpoint's state, load, latency and ejection |
//! | `GET /admin/routes` | every model's variants and rules, with weights |
//! | `POST /admin/reload` | reloads the config file now; 200 with the version, or 422 with the errors |
//!
//! When a token is configured, every `/admin/*` call needs `Authorization: Bearer <token>`;
//! a wrong or missing token gets 401. The token never appears in logs or responses.

use std::convert::Infallible;
use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::time::Instant;

use crate::body::GatewayBody;
use crate::ejection::ejection_json;
use crate::gateway::Gateway;
use crate::status::Trigger;

pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let gw = &gw;
    let path = req.uri().path();
    if path.starts_with("/admin/") && !authorized(gw, &req) {
        let mut r = json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": "missing or wrong bearer token"}),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Ok(r);
    }
    let resp = match (req.method(), path) {
        (&Method::GET, "/metrics") => metrics(gw),
        (&Method::GET, "/healthz") => json_response(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, "/readyz") => {
            if gw.is_ready() {
                json_response(StatusCode::OK, &json!({"status": "ready"}))
            } else if gw.is_draining() {
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "draining"}),
                )
            } else {
                json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &json!({"status": "starting"}),
                )
            }
        }
        (&Method::GET, "/admin/config") => match serde_json::to_value(&*gw.status()) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": e.to_string()}),
            ),
        },
        (&Method::GET, "/admin/endpoints") => json_response(StatusCode::OK, &endpoints(gw)),
        (&Method::GET, "/admin/routes") => {
            json_response(StatusCode::OK, &crate::explain::routes_json(&gw.snapshot()))
        }
        (&Method::POST, "/admin/reload") => match gw.writer().has_file() {
            true => match gw.writer().reload(Trigger::Admin).await {
                Ok(version) => json_response(
                    StatusCode::OK,
                    &json!({"status": "reloaded", "version": version}),
                ),
                Err(errs) => json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({
                        "status": "failed",
                        "version": gw.status().version,
                        "errors": errs.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    }),
                ),
            },
            false => json_response(
                StatusCode::CONFLICT,
                &json!({"error": "this gateway was not started from a config file"}),
            ),
        },
        (
            _,
            "/metrics" | "/healthz" | "/readyz" | "/admin/config" | "/admin/endpoints"
            | "/admin/routes" | "/admin/reload",
        ) => json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "method not allowed"}),
        ),
        _ => json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})),
    };
    Ok(resp)
}

/// Constant-time comparison of the bearer token, when one is configured.
fn authorized(gw: &Gateway, req: &Request<Incoming>) -> bool {
    let table = gw.snapshot();
    let Some(token) = table.admin_token.as_deref() else {
        return true;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    let want = token.as_bytes();
    let mut diff = u8::from(given.len() != want.len());
    for (i, w) in want.iter().enumerate() {
        diff |= w ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

fn metrics(gw: &Gateway) -> Response<GatewayBody> {
    let mut body = gw.metrics().encode();
    let table = gw.snapshot();
    crate::gauges::render(&table, Instant::now(), &mut body);
    table.admission.render(&mut body);
    let mut r = Response::new(GatewayBody::full(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

fn endpoints(gw: &Gateway) -> serde_json::Value {
    let now = Instant::now();
    let table = gw.snapshot();
    let backends: Vec<_> = table
        .backends()
        .iter()
        .map(|b| {
            let eps: Vec<_> = b
                .endpoints
                .iter()
                .map(|e| {
                    let s = &e.state;
                    let ejection = ejection_json(s, now);
                    json!({
                        "url": s.url,
                        "labels": e.labels,
                        "source": if b.discovered { "kubernetes" } else { "static" },
                        "age_s": now.saturating_duration_since(s.since).as_secs(),
                        "state": if ejection.is_some() { "ejected" } else { "healthy" },
                        "in_flight": s.in_flight(),
                        "latency_ms": s.latency().map(|d| d.as_secs_f64() * 1000.0),
                        "peak_ewma_ms": s.peak.get(now).map(|d| d.as_secs_f64() * 1000.0),
                        "engine": crate::engine::state_json(s, now),
                        "consecutive_failures": s.consecutive_failures(),
                        "ejection": ejection,
                    })
                })
                .collect();
            json!({"name": b.name, "endpoints": eps})
        })
        .collect();
    json!({ "backends": backends })
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response<GatewayBody> {
    let mut r = Response::new(GatewayBody::full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
