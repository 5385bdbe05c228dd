//! Shadow traffic: copies of requests sent to another variant, measured and thrown away.

use std::sync::Arc;

use bytes::Bytes;
use http::header::HeaderValue;
use http::Request;
use http_body_util::BodyExt;
use rand::Rng;
use tokio::time::Instant;

use crate::attempt::{attempt, Failed};
use crate::body::Exchange;
use crate::gateway::Gateway;
use crate::headers::X_INFERGATE_SHADOW;
use crate::route::{ModelRoute, ShadowRt};

/// Sends a copy of the request to the rule's shadow variant, for `percent` of requests and
/// while fewer than `max_concurrency` copies are in flight. The copy runs on its own task: it
/// never delays, changes or fails the client's request. Its response is read to the end,
/// measured under the variant label `shadow:<name>`, and thrown away.
pub fn maybe_shadow(
    gw: &Gateway,
    route: &Arc<ModelRoute>,
    shadow: &ShadowRt,
    parts: &http::request::Parts,
    body: &Bytes,
    request_id: &HeaderValue,
) {
    if rand::rng().random::<f64>() * 100.0 >= shadow.percent {
        return;
    }
    let variant = &route.variants[shadow.variant];
    let Ok(permit) = shadow.permits.clone().try_acquire_owned() else {
        gw.metrics().shadow(&route.name, &variant.name, "skipped");
        return;
    };
    gw.metrics().shadow(&route.name, &variant.name, "sent");
    let (mut copy, ()) = Request::new(()).into_parts();
    copy.method = parts.method.clone();
    copy.uri = parts.uri.clone();
    copy.headers = parts.headers.clone();
    copy.headers
        .insert(X_INFERGATE_SHADOW.clone(), HeaderValue::from_static("1"));
    let (route, body, request_id, v) = (
        route.clone(),
        body.clone(),
        request_id.clone(),
        shadow.variant,
    );
    tokio::spawn(async move {
        let _permit = permit;
        let start = Instant::now();
        let variant = &route.variants[v];
        let backend = variant.backend.clone();
        let Some((pos, guard)) = backend.pick(&variant.members, &[], start) else {
            return;
        };
        let mut exchange = Exchange::new(route.clone(), v, pos, guard, start);
        exchange.set_shadow();
        let deadline = start + backend.timeouts.total;
        match attempt(
            &backend,
            variant.members[pos],
            &copy,
            body,
            &request_id,
            exchange,
            deadline,
        )
        .await
        {
            Ok(resp) => {
                let mut b = resp.into_body();
                while let Some(f) = b.frame().await {
                    if f.is_err() {
                        break;
                    }
                }
            }
            Err(failed) => {
                let Failed {
                    error,
                    mut exchange,
                    passthrough,
                    ..
                } = *failed;
                match passthrough {
                    Some((parts, _)) => {
                        exchange.finish(crate::metrics::Outcome::for_status(parts.status))
                    }
                    None => exchange.finish(error.outcome()),
                }
            }
        }
    });
}
