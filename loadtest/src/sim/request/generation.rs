//! Chat and completion request bodies.

use serde::Deserialize;

use crate::sim::api::Api;
use crate::sim::error::ApiError;

use super::json::{parse_json, Prompt};
use super::tokens::count_tokens;

/// Most output tokens one request may ask for, so that a client cannot make the simulator
/// build an unbounded response.
pub const MAX_OUTPUT_TOKENS: u32 = 1 << 20;

/// A generation request (chat or completion), reduced to what the simulator uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    pub api: Api,
    pub model: String,
    /// Prompt length by [`count_tokens`].
    pub prompt_tokens: u64,
    /// The prompt's texts, in order: every message's text (chat) or every prompt
    /// (completions); the prefix cache hashes their tokens.
    pub prompt_texts: Vec<String>,
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
        let prompt_texts: Vec<String> = match (api, &body.messages, &body.prompt) {
            (Api::Chat, Some(messages), _) => messages
                .iter()
                .filter_map(|m| m.content.as_ref())
                .flat_map(MessageContent::texts)
                .map(str::to_owned)
                .collect(),
            (Api::Completion, _, Some(prompt)) => prompt.as_slice().to_vec(),
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
        let prompt_tokens = count_tokens(prompt_texts.iter().map(String::as_str));
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
            prompt_texts,
            max_tokens,
            stream,
            include_usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

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
}
