//! The admin listener: metrics and health.

use std::convert::Infallible;
use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::GatewayBody;
use crate::gateway::Gateway;

pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            for b in gw.table().backends() {
                for e in &b.endpoints {
                    e.metrics.in_flight.set(i64::from(e.state.in_flight()));
                }
            }
            let mut r = Response::new(GatewayBody::full(gw.metrics().encode()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (&Method::GET, "/healthz") => json(StatusCode::OK, r#"{"status":"ok"}"#),
        (&Method::GET, "/readyz") => {
            if gw.is_ready() {
                json(StatusCode::OK, r#"{"status":"ready"}"#)
            } else {
                json(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"not ready"}"#)
            }
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#),
    };
    Ok(resp)
}

fn json(status: StatusCode, body: &'static str) -> Response<GatewayBody> {
    let mut r = Response::new(GatewayBody::full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
