//! Request bodies: what the simulator reads from them, and its dummy tokenizer.
//!
//! Unknown fields (`temperature`, `top_p`, ...) are accepted and ignored, as vLLM accepts
//! them. Prompt length is measured with a dummy tokenizer, [`count_tokens`].

use serde::Deserialize;

use super::api::Api;
use super::error::ApiError;

/// Most output tokens one request may ask for, so that a client cannot make the simulator
/// build an unbounded response.
pub const MAX_OUTPUT_TOKENS: u32 = 1 << 20;

/// Most inputs one embeddings request may carry (OpenAI's limit).
pub const MAX_EMBEDDING_INPUTS: usize = 2048;

/// The dummy tokenizer: the number of whitespace-separated words across `texts`, at least 1.
///
/// It stands in for a real tokenizer: `prompt_tokens` in `usage` is this count over all
/// message contents (chat), prompts (completions) or inputs (embeddings).
pub fn count_tokens<'a>(texts: impl IntoIterator<Item = &'a str>) -> u64 {
    let words: usize = texts
        .into_iter()
        .map(|text| text.split_whitespace().count())
        .sum();
    (words as u64).max(1)
}

/// A generation request (chat or completion), reduced to what the simulator uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub api: Api,
    pub model: String,
    /// Prompt length by [`count_tokens`].
    pub prompt_tokens: u64,
    /// Output length: `max_completion_tokens`, else `max_tokens`, else the configured default.
    pub max_tokens: u32,
    pub stream: bool,
    /// `stream_options.include_usage`: send a usage chunk before `[DONE]`.
    pub include_usage: bool,
}

/// The body of either generation API; which of `messages` / `prompt` is required depends on
/// the API. Output parameters set to `null` count as absent.
#[derive(Deserialize)]
struct GenerationBody {
    model: String,
    messages: Option<Vec<ChatMessage>>,
    prompt: Option<Prompt>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    content: Option<MessageContent>,
}

/// Message content: a string, or an array of parts of which the text parts count.
#[derive(Deserialize)]
#[serde(untagged)]
enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(default)]
    text: Option<String>,
}

/// A prompt or embeddings input: one string or an array of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum Prompt {
    One(String),
    Many(Vec<String>),
}

impl Prompt {
    fn as_slice(&self) -> &[String] {
        match self {
            Prompt::One(text) => std::slice::from_ref(text),
            Prompt::Many(texts) => texts,
        }
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            Prompt::One(text) => vec![text],
            Prompt::Many(texts) => texts,
        }
    }
}

impl MessageContent {
    fn texts(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            MessageContent::Text(text) => Box::new(std::iter::once(text.as_str())),
            MessageContent::Parts(parts) => {
                Box::new(parts.iter().filter_map(|part| part.text.as_deref()))
            }
        }
    }
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError::bad_request(format!("Invalid request body: {err}")))
}

impl GenerationBody {
    fn output_tokens(&self, default_max_tokens: u32) -> Result<u32, ApiError> {
        let tokens = self
            .max_completion_tokens
            .or(self.max_tokens)
            .unwrap_or(default_max_tokens);
        if tokens == 0 {
            return Err(ApiError::bad_request("max_tokens must be at least 1."));
        }
        if tokens > MAX_OUTPUT_TOKENS {
            return Err(ApiError::bad_request(format!(
                "max_tokens must be at most {MAX_OUTPUT_TOKENS}."
            )));
        }
        Ok(tokens)
    }
}

impl Generation {
    /// Reads a `POST /v1/chat/completions` or `POST /v1/completions` body. Malformed JSON,
    /// missing fields and out-of-range values are 400s.
    pub fn parse(api: Api, body: &[u8], default_max_tokens: u32) -> Result<Self, ApiError> {
        let body: GenerationBody = parse_json(body)?;
        let prompt_tokens = match (api, &body.messages, &body.prompt) {
            (Api::Chat, Some(messages), _) => count_tokens(
                messages
                    .iter()
                    .filter_map(|m| m.content.as_ref())
                    .flat_map(MessageContent::texts),
            ),
            (Api::Completion, _, Some(prompt)) => {
                count_tokens(prompt.as_slice().iter().map(String::as_str))
            }
            (Api::Chat, None, _) => {
                return Err(ApiError::bad_request(
                    "Invalid request body: missing field `messages`",
                ))
            }
            (Api::Completion, _, None) => {
                return Err(ApiError::bad_request(
                    "Invalid request body: missing field `prompt`",
                ))
            }
        };
        let max_tokens = body.output_tokens(default_max_tokens)?;
        let stream = body.stream.unwrap_or(false);
        let include_usage = body
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let model = body.model;
        Ok(Self {
            api,
            model,
            prompt_tokens,
            max_tokens,
            stream,
            include_usage,
        })
    }
}

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
    use http::StatusCode;

    #[test]
    fn dummy_tokenizer_counts_words_with_a_floor_of_one() {
        assert_eq!(count_tokens(["hello world", "  a\tb\nc "]), 5);
        assert_eq!(count_tokens([""]), 1);
        assert_eq!(count_tokens(std::iter::empty()), 1);
    }

    #[test]
    fn chat_request_counts_all_message_text() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hello there world"},{"type":"image_url","image_url":{"url":"x"}}]},
            {"role":"assistant","content":null}
        ],"max_tokens":3,"stream":true,"stream_options":{"include_usage":true},"temperature":0}"#;
        let g = Generation::parse(Api::Chat, body, 16).unwrap();
        assert_eq!(g.model, "m");
        assert_eq!(g.prompt_tokens, 5);
        assert_eq!(g.max_tokens, 3);
        assert!(g.stream);
        assert!(g.include_usage);
    }

    #[test]
    fn max_completion_tokens_wins_and_default_applies() {
        let body =
            br#"{"model":"m","prompt":["a b","c"],"max_tokens":3,"max_completion_tokens":5}"#;
        let g = Generation::parse(Api::Completion, body, 16).unwrap();
        assert_eq!((g.max_tokens, g.prompt_tokens, g.stream), (5, 3, false));

        let body = br#"{"model":"m","prompt":"x","max_tokens":null,"stream":null}"#;
        let g = Generation::parse(Api::Completion, body, 7).unwrap();
        assert_eq!((g.max_tokens, g.stream, g.include_usage), (7, false, false));
    }

    #[test]
    fn bad_bodies_are_400() {
        for body in [
            &b"{not json"[..],
            br#"{"messages":[]}"#,
            br#"{"model":"m"}"#,
            br#"{"model":"m","messages":[],"max_tokens":-1}"#,
            br#"{"model":"m","messages":[],"max_tokens":0}"#,
            br#"{"model":"m","messages":[],"max_tokens":4000000}"#,
            br#"{"model":"m","messages":"hi"}"#,
        ] {
            let err = Generation::parse(Api::Chat, body, 16).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{body:?}");
        }
        assert!(Generation::parse(Api::Completion, br#"{"model":"m","prompt":3}"#, 16).is_err());
    }

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
