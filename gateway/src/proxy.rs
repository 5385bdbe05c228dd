//! The data path: from a client request to an upstream response passing through.
//! The steps are listed in the crate documentation (`lib.rs`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::accesslog::{self, Observation};
use crate::attempt::{attempt, finish_response, Failed};
use crate::body::{Exchange, GatewayBody};
use crate::error::{echo, ErrorKind, ProxyError};
use crate::gateway::Gateway;
use crate::headers::{request_id, X_INFERGATE_VARIANT, X_REQUEST_ID};
use crate::pick::Choice;
use crate::protocols::comfyui::CallKind;
use crate::protocols::pin::{exclude_for, pinned_variant};
use crate::route::RequestView;
use crate::server::{dispatch, upgrade, BodyDeadline, ConnHold};
use crate::shadow::maybe_shadow;

/// Serves one request on the data listener. Never fails: errors become OpenAI error bodies.
pub async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let start = Instant::now();
    let request_id = request_id(req.headers());
    let http1 = req.version() < Version::HTTP_2;
    let mut obs = accesslog::begin(gw.observers(), &req, &request_id, start);
    // Boxed: hyper keeps the service's future allocated for the connection's life, so the
    // proxy's state (kilobytes) is held only while a request is being routed, not while its
    // response streams or the connection waits for the next request.
    let mut resp = match Box::pin(proxy(&gw, req, start, &request_id, &mut obs)).await {
        Ok(r) => {
            accesslog::finish_local(obs, r.status());
            r
        }
        Err(e) => {
            tracing::debug!(request_id = ?request_id, error = %e, "request failed");
            accesslog::finish_error(obs, e.status(), e.outcome().as_str(), &e);
            // The rest of a late body would be read as the next request: hyper closes an
            // HTTP/1.1 connection after a `Connection: close` response. On HTTP/2 the stream
            // ends with the response and the connection serves other streams.
            let close = http1 && e.kind == ErrorKind::BodyTimeout;
            let mut resp = e.into_response();
            if close {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            resp
        }
    };

    resp.headers_mut().insert(X_REQUEST_ID.clone(), request_id);
    Ok(resp)
}

async fn proxy(
    gw: &Gateway,
    req: Request<Incoming>,
    start: Instant,
    request_id: &HeaderValue,
    obs: &mut Option<Box<Observation>>,
) -> Result<Response<GatewayBody>, ProxyError> {
    let reject = |e: ProxyError| {
        gw.metrics().rejected(e.outcome());
        e
    };
    // The one load of the snapshot: everything below comes from it.
    let table = gw.snapshot();
    // Which protocol: where the model comes from, pinning, metering (`server::dispatch`).
    let Some(plan) = dispatch::plan(&req, &table).map_err(reject)? else {
        return Ok(dispatch::models_list(&table));
    };

    let limits = table.limits;
    let (mut parts, body) = req.into_parts();
    let mut client_side = upgrade::ClientSide {
        upgrade: plan
            .upgrade
            .then(|| parts.extensions.remove::<hyper::upgrade::OnUpgrade>())
            .flatten(),
        hold: parts.extensions.remove::<ConnHold>(),
    };
    let deadline = parts.extensions.get::<BodyDeadline>().map(|d| d.0);
    let body = read_body(body, &parts.headers, limits.max_body_bytes, deadline)
        .await
        .map_err(reject)?;
    // From here the gateway works for itself: the overhead histogram counts from now.
    let mut ready = Instant::now();
    // A request counts against `max_in_flight` only once its body is whole: a client slow to
    // send it holds its connection (bounded by `body_read_timeout`), never a place in flight.
    let Some(slot) = gw.try_admit(&table) else {
        return Err(reject(ProxyError::new(
            ErrorKind::Overloaded,
            "the gateway has too many requests in flight; retry shortly",
        )));
    };
    let model = dispatch::model(&plan, &parts.headers, &body).map_err(reject)?;
    let pin = dispatch::pin(&plan, &body, &table.path_routes.prompts, Instant::now());
    let Some(route) = table.route(&model).cloned() else {
        return Err(reject(ProxyError::new(
            ErrorKind::UnknownModel,
            format!("The model `{}` does not exist.", echo(&model)),
        )));
    };
    let view = RequestView {
        headers: &parts.headers,
        labels: &table.labels,
    };
    let Some(decision) = route.decide(&view, &table.pin_header) else {
        return Err(reject(ProxyError::new(
            ErrorKind::NoRoute,
            format!("no route of model `{}` matches this request", echo(&model)),
        )));
    };
    let decision = pinned_variant(decision, &route, pin.as_ref());
    if let Some(o) = obs.as_mut() {
        let v = &route.variants[decision.variant];
        let rule = (decision.rule, &*route.rules[decision.rule].name);
        o.routed(&model, rule, &v.name, &v.backend.name, body.len());
    }
    // Token and request rate limits of the request's tenant (`admission`).
    let (mut charge, rate_headers) = match table.admission.rate_limit(&parts.headers, &body) {
        Ok(a) => (a.charge, a.headers),
        Err(refused) => return Ok(refused.map(GatewayBody::full)),
    };
    let budget = &table.retry_budget;
    budget.deposit();
    if let Some(shadow) = &route.rules[decision.rule].shadow {
        maybe_shadow(gw, &route, shadow, &parts, &body, request_id);
    }

    let variant = &route.variants[decision.variant];
    let backend = variant.backend.clone();
    let t = backend.timeouts;
    let total_deadline = start + t.total;
    let max_attempts = backend.retry.max_attempts as usize;
    let mut tried: Vec<usize> = Vec::new();
    let mut slot = Some(slot);
    let prefix = backend.prefix_of(&body);
    loop {
        let now = Instant::now();
        let exclude = exclude_for(pin.as_ref(), &backend, &variant.members, &tried, now);
        // On engine state, every endpoint can be saturated while one can still be chosen: with
        // priority classes, such a request queues first (`admission::saturated`).
        let queue_first = table.admission.queue(&backend.name).is_some()
            && crate::admission::saturated(&backend, &variant.members, &exclude, now);
        let direct = if queue_first {
            None
        } else {
            backend.choose(&variant.members, &exclude, now, prefix)
        };
        let chosen = match direct {
            // Every endpoint saturated: wait in the priority class's queue (`admission`).
            // Rare paths (a queue wait, an upgrade, a remembered prompt) are boxed so that their
            // state does not grow every request's future.
            None => match Box::pin((table.admission).wait(
                &parts.headers,
                &route,
                decision.variant,
                &exclude,
                total_deadline,
            ))
            .await
            {
                // Saturation passed between the two looks: choose as usual.
                Ok(None) if queue_first => {
                    backend.choose(&variant.members, &exclude, Instant::now(), prefix)
                }
                Ok(place) => {
                    // Time queued for capacity is not the gateway's overhead.
                    ready = Instant::now();
                    place.map(|(pos, guard)| {
                        let in_flight = guard.endpoint().in_flight().saturating_sub(1);
                        let reason = crate::pick_policy::Reason::P2c { in_flight };
                        Choice { pos, guard, reason }
                    })
                }
                Err(shed) => {
                    variant.unrouted.count(crate::metrics::Outcome::Overloaded);
                    return Ok(shed.map(GatewayBody::full));
                }
            },
            chosen => chosen,
        };
        let Some(Choice { pos, guard, reason }) = chosen else {
            let e = ProxyError::new(
                ErrorKind::NoHealthyEndpoint,
                format!(
                    "no endpoint of variant `{}` (backend `{}`) can take the request",
                    variant.name, backend.name
                ),
            );
            variant.unrouted.count(e.outcome());
            return Err(e);
        };
        let idx = variant.members[pos];
        let mut exchange = Exchange::new(route.clone(), decision.variant, pos, guard, start);
        exchange.hold(slot.take());
        exchange.hooks().start(ready, obs.take());
        exchange.hooks().bytes_in = body.len() as u64;
        exchange.set_metering(plan.metering);
        let wake = table.admission.queue(&backend.name).cloned();
        *exchange.admission() = crate::admission::Ticket::new(wake, charge.take());
        let tried_once = if plan.upgrade {
            let up = &mut client_side;
            Box::pin(upgrade::attempt(
                &backend,
                idx,
                &parts,
                request_id,
                exchange,
                total_deadline,
                up,
            ))
            .await
        } else {
            let body = body.clone();
            attempt(
                &backend,
                idx,
                &parts,
                body,
                request_id,
                exchange,
                total_deadline,
            )
            .await
        };
        let failed = match tried_once {
            Ok(mut resp) => {
                if plan
                    .pinned
                    .as_ref()
                    .is_some_and(|c| c.kind == CallKind::Prompt)
                {
                    let url = &backend.endpoints[idx].state.url;
                    let prompts = &table.path_routes.prompts;
                    resp = Box::pin(dispatch::remember_prompt(resp, url, prompts)).await?;
                }
                resp.headers_mut()
                    .insert(X_INFERGATE_VARIANT.clone(), variant.header.clone());
                backend.reason_header(&reason, resp.headers_mut());
                rate_headers.apply(resp.headers_mut());
                return Ok(resp);
            }
            Err(f) => f,
        };
        let Failed {
            error,
            failure,
            mut exchange,
            passthrough,
        } = *failed;
        let retryable = error.retryable() || passthrough.is_some();
        let more_endpoints = tried.len() + 1 < variant.members.len();
        let retry = if !retryable {
            false
        } else if tried.len() + 1 >= max_attempts || !more_endpoints {
            if max_attempts > 1 {
                gw.metrics().retries(&backend.name, "attempts").inc();
            }
            false
        } else if Instant::now() >= total_deadline {
            false
        } else if budget.try_withdraw() {
            gw.metrics().retries(&backend.name, "retried").inc();
            true
        } else {
            gw.metrics().retries(&backend.name, "budget").inc();
            false
        };
        if retry {
            tracing::debug!(
                request_id = ?request_id,
                endpoint = %backend.endpoints[idx].state.url,
                error = %error,
                "retrying on another endpoint"
            );
            slot = exchange.release_slot();
            *obs = exchange.take_obs(error.outcome());
            ready = Instant::now();
            charge = exchange.admission().take_charge();
            exchange.abandon(failure);
            tried.push(pos);
            continue;
        }
        if let Some(resp) = passthrough {
            // The last answer was a retryable status: the client gets it as it is.
            let mut resp = finish_response(resp, exchange, &backend);
            resp.headers_mut()
                .insert(X_INFERGATE_VARIANT.clone(), variant.header.clone());
            backend.reason_header(&reason, resp.headers_mut());
            rate_headers.apply(resp.headers_mut());
            return Ok(resp);
        }
        *obs = exchange.take_obs(error.outcome());
        exchange.finish(error.outcome());
        return Err(error);
    }
}

/// Reads the request body, refusing more than `limit` bytes, and giving up at `deadline` (the
/// listener's [`BodyDeadline`]; none: no limit).
async fn read_body(
    body: Incoming,
    headers: &HeaderMap,
    limit: u64,
    deadline: Option<Instant>,
) -> Result<Bytes, ProxyError> {
    let too_large = || {
        ProxyError::new(
            ErrorKind::BodyTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let collect = Limited::new(body, limit).collect();
    let collected = match deadline {
        Some(at) => tokio::time::timeout_at(at, collect).await.map_err(|_| {
            ProxyError::new(
                ErrorKind::BodyTimeout,
                "the request body did not arrive whole within limits.body_read_timeout",
            )
        })?,
        None => collect.await,
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ProxyError::new(
            ErrorKind::MalformedBody,
            format!("could not read the request body: {e}"),
        )),
    }
}
