//! The SSE events of a streamed completion.

use bytes::Bytes;
use serde::Serialize;

use crate::sim::api::Api;
use crate::sim::words;

use super::stamp::Stamp;
use super::usage::Usage;

/// The `[DONE]` event that ends every stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

#[derive(Serialize)]
struct Chunk<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<&'a Usage>,
}

#[derive(Serialize)]
struct ChatChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    content: &'a str,
}

#[derive(Serialize)]
struct TextChunkChoice<'a> {
    index: u32,
    text: &'a str,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

/// Encodes the SSE events of one streamed response; id, model and `created` are fixed per
/// response, so each event costs one buffer.
pub struct ChunkEncoder {
    api: Api,
    id: String,
    model: String,
    created: u64,
}

impl ChunkEncoder {
    pub fn new(api: Api, model: String, stamp: Stamp) -> Self {
        Self {
            api,
            id: stamp.id,
            model,
            created: stamp.created,
        }
    }

    fn object(&self) -> &'static str {
        match self.api {
            Api::Chat => "chat.completion.chunk",
            Api::Completion => "text_completion",
        }
    }

    fn event<C: Serialize>(&self, choices: C, usage: Option<&Usage>) -> Bytes {
        let chunk = Chunk {
            id: &self.id,
            object: self.object(),
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        let mut buf = Vec::with_capacity(160 + self.id.len() + self.model.len());
        buf.extend_from_slice(b"data: ");
        if let Err(err) = serde_json::to_writer(&mut buf, &chunk) {
            tracing::error!(%err, "failed to serialize a stream chunk");
            return Bytes::new();
        }
        buf.extend_from_slice(b"\n\n");
        Bytes::from(buf)
    }

    /// The chat role chunk, `delta: {"role":"assistant","content":""}`. Completions have none.
    pub fn role(&self) -> Option<Bytes> {
        match self.api {
            Api::Chat => Some(self.event(
                [ChatChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: Some("assistant"),
                        content: "",
                    },
                    logprobs: (),
                    finish_reason: None,
                }],
                None,
            )),
            Api::Completion => None,
        }
    }

    /// The chunk of output token `index`; the last one carries `finish_reason: "length"`.
    pub fn token(&self, index: u32, last: bool) -> Bytes {
        let text = words::token_text(index);
        let finish_reason = last.then_some("length");
        match self.api {
            Api::Chat => self.event(
                [ChatChunkChoice {
                    index: 0,
                    delta: Delta {
                        role: None,
                        content: text,
                    },
                    logprobs: (),
                    finish_reason,
                }],
                None,
            ),
            Api::Completion => self.event(
                [TextChunkChoice {
                    index: 0,
                    text,
                    logprobs: (),
                    finish_reason,
                }],
                None,
            ),
        }
    }

    /// The usage chunk: `"choices":[]` and `usage`.
    pub fn usage(&self, usage: &Usage) -> Bytes {
        self.event([(); 0], Some(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(event: &[u8]) -> Value {
        let text = std::str::from_utf8(event).unwrap();
        let payload = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap();
        serde_json::from_str(payload).unwrap()
    }

    #[test]
    fn chat_chunks_match_vllm_field_order() {
        let enc = ChunkEncoder::new(
            Api::Chat,
            "m".to_owned(),
            Stamp::new(Api::Chat, false, None),
        );
        let role = enc.role().unwrap();
        let text = std::str::from_utf8(&role).unwrap();
        let expected = format!(
            "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n",
            enc.id, enc.created
        );
        assert_eq!(text, expected);
        assert!(enc.id.starts_with("chatcmpl-"));
        assert_eq!(enc.id.len(), "chatcmpl-".len() + 16);

        let last = json(&enc.token(1, true));
        assert_eq!(last["choices"][0]["delta"]["content"], " quick");
        assert!(last["choices"][0]["delta"].get("role").is_none());
        assert_eq!(last["choices"][0]["finish_reason"], "length");

        let usage = json(&enc.usage(&Usage::new(11, 3)));
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(
            usage["usage"],
            serde_json::json!({"prompt_tokens":11,"total_tokens":14,"completion_tokens":3})
        );
    }

    #[test]
    fn completion_chunks_have_text_and_no_role() {
        let enc = ChunkEncoder::new(
            Api::Completion,
            "m\"x".to_owned(),
            Stamp::new(Api::Completion, false, None),
        );
        assert!(enc.role().is_none());
        let tok = json(&enc.token(0, false));
        assert_eq!(tok["object"], "text_completion");
        assert_eq!(tok["model"], "m\"x");
        assert_eq!(tok["choices"][0]["text"], " the");
        assert_eq!(tok["choices"][0]["finish_reason"], Value::Null);
        assert!(tok["id"].as_str().unwrap().starts_with("cmpl-"));
    }
}
