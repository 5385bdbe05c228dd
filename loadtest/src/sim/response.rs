//! Response bodies in vLLM's JSON shapes: streaming chunks (SSE events), complete
//! completions, the model list and embeddings.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

use super::api::Api;
use super::words;

/// The `[DONE]` event that ends every stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";

/// Token counts, in vLLM's field order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            total_tokens: prompt_tokens.saturating_add(u64::from(completion_tokens)),
            completion_tokens: u64::from(completion_tokens),
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `created` of every response in deterministic mode.
pub const DETERMINISTIC_CREATED: u64 = 1_700_000_000;

/// The id and `created` time of one response.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub id: String,
    pub created: u64,
}

impl Stamp {
    /// A fresh id such as `chatcmpl-9a3b17db895b3ac7` and the current time; in deterministic
    /// mode the id is built from the request's `x-request-id` (or `0`) and `created` is fixed,
    /// so that equal requests get byte-identical responses.
    pub fn new(api: Api, deterministic: bool, request_id: Option<&str>) -> Self {
        let prefix = match api {
            Api::Chat => "chatcmpl",
            Api::Completion => "cmpl",
        };
        if deterministic {
            let rid: String = request_id
                .unwrap_or("0")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(64)
                .collect();
            Stamp {
                id: format!("{prefix}-{rid}"),
                created: DETERMINISTIC_CREATED,
            }
        } else {
            Stamp {
                id: format!("{prefix}-{:016x}", rand::random::<u64>()),
                created: unix_now(),
            }
        }
    }
}

/// Serializes `value` to JSON bytes. Our response types always serialize; should one not,
/// the failure is logged and the body is empty rather than the server panicking.
fn to_json<T: Serialize>(value: &T) -> Bytes {
    match serde_json::to_vec(value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(err) => {
            tracing::error!(%err, "failed to serialize a response");
            Bytes::new()
        }
    }
}

// === streaming chunks ===

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

// === complete (non-streaming) responses ===

#[derive(Serialize)]
struct Completion<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [C; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    index: u32,
    text: &'a str,
    logprobs: (),
    finish_reason: &'static str,
}

/// A complete `chat.completion` or `text_completion` with `completion_tokens` tokens.
pub fn completion(
    api: Api,
    model: &str,
    prompt_tokens: u64,
    completion_tokens: u32,
    stamp: Stamp,
) -> Bytes {
    let Stamp { id, created } = stamp;
    let text = words::output_text(completion_tokens);
    let usage = Usage::new(prompt_tokens, completion_tokens);
    match api {
        Api::Chat => to_json(&Completion {
            id: &id,
            object: "chat.completion",
            created,
            model,
            choices: [ChatChoice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: &text,
                },
                logprobs: (),
                finish_reason: "length",
            }],
            usage,
        }),
        Api::Completion => to_json(&Completion {
            id: &id,
            object: "text_completion",
            created,
            model,
            choices: [TextChoice {
                index: 0,
                text: &text,
                logprobs: (),
                finish_reason: "length",
            }],
            usage,
        }),
    }
}

// === model list ===

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

// === embeddings ===

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingItem>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingItem {
    object: &'static str,
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// `POST /v1/embeddings`: one item per vector, in input order.
pub fn embeddings(model: &str, vectors: Vec<Vec<f32>>, prompt_tokens: u64) -> Bytes {
    to_json(&EmbeddingList {
        object: "list",
        data: vectors
            .into_iter()
            .enumerate()
            .map(|(index, embedding)| EmbeddingItem {
                object: "embedding",
                index,
                embedding,
            })
            .collect(),
        model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    })
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

    #[test]
    fn complete_chat_response() {
        let body = completion(
            Api::Chat,
            "m",
            4,
            2,
            Stamp::new(Api::Chat, true, Some("r1")),
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert_eq!(v["choices"][0]["message"]["content"], " the quick");
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["total_tokens"], 6);
    }
}
