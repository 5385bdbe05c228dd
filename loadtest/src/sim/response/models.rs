//! The model list of `GET /v1/models`.

use bytes::Bytes;
use serde::Serialize;

use super::json::to_json;

#[derive(Serialize)]
struct List<T> {
    object: &'static str,
    data: Vec<T>,
}

#[derive(Serialize)]
struct ModelCard<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

/// `GET /v1/models`: `{"object":"list","data":[{"id","object":"model","created","owned_by"}]}`.
pub fn model_list(models: &[String], created: u64) -> Bytes {
    to_json(&List {
        object: "list",
        data: models
            .iter()
            .map(|id| ModelCard {
                id,
                object: "model",
                created,
                owned_by: "infergate-sim",
            })
            .collect(),
    })
}
