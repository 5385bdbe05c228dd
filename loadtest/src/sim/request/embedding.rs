//! Embeddings request bodies.

use serde::Deserialize;

use crate::sim::error::ApiError;

use super::json::{parse_json, Prompt};
use super::tokens::count_tokens;

/// Most inputs one embeddings request may carry (OpenAI's limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// A `POST /v1/embeddings` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddingRequest {
    pub model: String,
    pub inputs: Vec<String>,
}

#[derive(Deserialize)]
struct EmbeddingBody {
    model: String,
    input: Prompt,
}

impl EmbeddingRequest {
    /// Reads the body; `input` must hold 1 to [`MAX_EMBEDDING_INPUTS`] strings.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let req: EmbeddingBody = parse_json(body)?;
        let inputs = req.input.into_vec();
        if inputs.is_empty() {
            return Err(ApiError::bad_request("input must not be empty."));
        }
        if inputs.len() > MAX_EMBEDDING_INPUTS {
            return Err(ApiError::bad_request(format!(
                "input must hold at most {MAX_EMBEDDING_INPUTS} items."
            )));
        }
        Ok(Self {
            model: req.model,
            inputs,
        })
    }

    /// Prompt length of all inputs by [`count_tokens`].
    pub fn prompt_tokens(&self) -> u64 {
        count_tokens(self.inputs.iter().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_input_forms() {
        let one = EmbeddingRequest::parse(br#"{"model":"m","input":"a b c"}"#).unwrap();
        assert_eq!(one.inputs, vec!["a b c"]);
        assert_eq!(one.prompt_tokens(), 3);
        let many = EmbeddingRequest::parse(br#"{"model":"m","input":["a","b c"]}"#).unwrap();
        assert_eq!(many.inputs.len(), 2);
        assert_eq!(many.prompt_tokens(), 3);
        assert!(EmbeddingRequest::parse(br#"{"model":"m","input":[]}"#).is_err());
    }
}
