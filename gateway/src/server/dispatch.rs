//! The data listener's dispatch by path, as the proxy uses it: the protocol's plan
//! ([`crate::protocols`]) with its refusals as error responses, the request's model, its
//! ComfyUI pin, `GET /v1/models`, and the ComfyUI prompt ids read from `/prompt` responses.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;

use crate::body::GatewayBody;
use crate::error::{echo, ErrorKind, ProxyError};
use crate::model_field::{extract_model, ModelFieldError};
use crate::protocols::comfyui::{self, CallKind, PromptMap};
use crate::protocols::multipart::{form_model, FormError};
use crate::protocols::pin::Pin;
use crate::protocols::{dispatch, Dispatch, ModelFrom, Plan, Refusal};
use crate::table::Table;

/// Longest `/prompt` response read for its `prompt_id`.
pub const MAX_PROMPT_RESPONSE: usize = 256 * 1024;

/// The plan for a request, `Ok(None)` for `GET /v1/models`, or the error response's cause.
pub fn plan<B>(req: &Request<B>, table: &Table) -> Result<Option<Plan>, ProxyError> {
    let path = req.uri().path();
    match dispatch(
        req.method(),
        path,
        req.uri().query(),
        req.headers(),
        &table.path_routes,
    ) {
        Dispatch::ListModels => Ok(None),
        Dispatch::Route(plan) => Ok(Some(plan)),
        Dispatch::Refuse(Refusal::Method(want)) => Err(ProxyError::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "{} is not allowed on {}; use {want}",
                echo(req.method().as_str()),
                echo(path)
            ),
        )),
        Dispatch::Refuse(Refusal::NotFound) => Err(ProxyError::new(
            ErrorKind::NotFound,
            format!(
                "no route for {} {}",
                echo(req.method().as_str()),
                echo(path)
            ),
        )),
    }
}

/// `GET /v1/models`: every configured model once, in the OpenAI list shape.
pub fn models_list(table: &Table) -> Response<GatewayBody> {
    let mut resp = Response::new(GatewayBody::full(table.models_json.clone()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The request's model name, from where its plan says.
pub fn model<'b>(
    plan: &'b Plan,
    headers: &HeaderMap,
    body: &'b [u8],
) -> Result<Cow<'b, str>, ProxyError> {
    match &plan.model {
        ModelFrom::Named(m) => Ok(Cow::Borrowed(m)),
        ModelFrom::JsonBody => extract_model(body).map_err(|e| match e {
            ModelFieldError::Malformed(why) => ProxyError::new(
                ErrorKind::MalformedBody,
                format!("request body is not a JSON object: {}", echo(&why)),
            ),
            ModelFieldError::Missing => ProxyError::new(
                ErrorKind::MissingModel,
                "request body has no \"model\" string",
            ),
            ModelFieldError::Duplicate => ProxyError::new(
                ErrorKind::DuplicateModel,
                "request body has more than one top-level \"model\" key",
            ),
        }),
        ModelFrom::Multipart => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            form_model(ct, body).map(Cow::Owned).map_err(|e| match e {
                FormError::Malformed(why) => ProxyError::new(
                    ErrorKind::MalformedBody,
                    format!("request body is not a usable form: {}", echo(&why)),
                ),
                FormError::Missing => ProxyError::new(
                    ErrorKind::MissingModel,
                    "request form has no \"model\" field",
                ),
            })
        }
    }
}

/// Where a pinned request goes: its client id (query, header, or a `/prompt` body's
/// `client_id`), else the endpoint that took its prompt. `None`: not pinned.
pub fn pin(plan: &Plan, body: &[u8], prompts: &PromptMap, now: Instant) -> Option<Pin> {
    let call = plan.pinned.as_ref()?;
    let client = call.client_id.clone().or_else(|| {
        (call.kind == CallKind::Prompt)
            .then(|| comfyui::body_client_id(body))
            .flatten()
    });
    if let Some(c) = client {
        return Some(Pin::Client(c));
    }
    let prompt = call.prompt_id.as_deref()?;
    prompts.endpoint(prompt, now).map(Pin::Endpoint)
}

/// Reads a `/prompt` response (at most [`MAX_PROMPT_RESPONSE`] bytes) and remembers which
/// endpoint took its `prompt_id`; the client gets the same response.
pub async fn remember_prompt(
    resp: Response<GatewayBody>,
    endpoint: &str,
    prompts: &PromptMap,
) -> Result<Response<GatewayBody>, ProxyError> {
    let (parts, body) = resp.into_parts();
    let bytes: Bytes = match Limited::new(body, MAX_PROMPT_RESPONSE).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Err(ProxyError::new(
                ErrorKind::UpstreamFailed,
                format!("{endpoint} sent a /prompt response that could not be read whole (at most {MAX_PROMPT_RESPONSE} bytes): {e}"),
            ))
        }
    };
    if parts.status.is_success() {
        if let Some(id) = comfyui::response_prompt_id(&bytes) {
            prompts.remember(id, endpoint, Instant::now());
        }
    }
    Ok(Response::from_parts(parts, GatewayBody::full(bytes)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::HeaderValue;

    use super::*;
    use crate::protocols::comfyui::ComfyCall;
    use crate::protocols::Metering;

    fn comfy(kind: CallKind, client_id: Option<&str>, prompt_id: Option<&str>) -> Plan {
        Plan {
            model: ModelFrom::Named("comfy".into()),
            metering: Metering::Untokenized,
            pinned: Some(ComfyCall {
                kind,
                client_id: client_id.map(Into::into),
                prompt_id: prompt_id.map(Into::into),
            }),
            upgrade: false,
        }
    }

    #[test]
    fn comfyui_pins_by_client_then_by_remembered_prompt() {
        let prompts = PromptMap::default();
        let now = Instant::now();
        prompts.remember("p1".into(), "http://127.0.0.1:2", now);
        let body = br#"{"client_id":"from-body","prompt":{}}"#;
        let pin_of = |plan: &Plan| pin(plan, body, &prompts, now);
        assert_eq!(
            pin_of(&comfy(CallKind::Prompt, None, None)),
            Some(Pin::Client("from-body".into()))
        );
        // The query's or header's client id comes first.
        assert_eq!(
            pin_of(&comfy(CallKind::Prompt, Some("q"), None)),
            Some(Pin::Client("q".into()))
        );
        // Only /prompt's body is read for a client id.
        assert_eq!(pin_of(&comfy(CallKind::Other, None, None)), None);
        assert_eq!(
            pin_of(&comfy(CallKind::History, None, Some("p1"))),
            Some(Pin::Endpoint("http://127.0.0.1:2".into()))
        );
        assert_eq!(pin_of(&comfy(CallKind::History, None, Some("p2"))), None);
        let openai = Plan {
            pinned: None,
            ..comfy(CallKind::Prompt, None, None)
        };
        assert_eq!(pin_of(&openai), None);
    }

    #[test]
    fn the_model_comes_from_where_the_plan_says() {
        let mut headers = HeaderMap::new();
        let named = comfy(CallKind::Other, None, None);
        assert_eq!(model(&named, &headers, b"").unwrap(), "comfy");
        let json = Plan {
            model: ModelFrom::JsonBody,
            ..named.clone()
        };
        assert_eq!(model(&json, &headers, br#"{"model":"m"}"#).unwrap(), "m");
        assert_eq!(
            model(&json, &headers, b"{}").unwrap_err().kind,
            ErrorKind::MissingModel
        );
        let form = Plan {
            model: ModelFrom::Multipart,
            ..named
        };
        let e = model(&form, &headers, b"").unwrap_err();
        assert_eq!(e.kind, ErrorKind::MalformedBody);
        assert!(
            e.message.contains("not multipart/form-data"),
            "{}",
            e.message
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=b"),
        );
        let body = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nw\r\n--b--\r\n";
        assert_eq!(model(&form, &headers, body).unwrap(), "w");
        let e = model(&form, &headers, b"--b--\r\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingModel);
    }
}
