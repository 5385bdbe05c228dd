//! What both request bodies share: JSON parsing, and prompts or inputs.

use serde::Deserialize;

use crate::sim::error::ApiError;

/// Parses a request body; malformed JSON or a missing field is a 400.
pub fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))
}

/// A prompt or embeddings input: one string or an array of strings.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    One(String),
    Many(Vec<String>),
}

impl Prompt {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Prompt::One(text) => std::slice::from_ref(text),
            Prompt::Many(texts) => texts,
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        match self {
            Prompt::One(text) => vec![text],
            Prompt::Many(texts) => texts,
        }
    }
}
