//! The JSON request body, serialized from borrowed fields.

use serde::Serialize;
use serde_json::Value;

/// A request body, serialized as it is. The fields are in alphabetical order, the order in
/// which `serde_json` writes the keys of a `Value` object, so the bytes (and the workload
/// digest) are those of the same body built as a `Value`.
#[derive(Serialize)]
pub struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Messages<'a>>,
    pub model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<&'a str>,
    pub stream: bool,
    pub stream_options: StreamOptions,
}

#[derive(Serialize)]
#[serde(untagged)]
pub enum Messages<'a> {
    /// The prompt as one user message.
    User([UserMessage<'a>; 1]),
    /// A dataset line's messages, as read.
    List(&'a Value),
}

/// Fields in alphabetical order, like [`Body`].
#[derive(Serialize)]
pub struct UserMessage<'a> {
    pub content: &'a str,
    pub role: &'static str,
}

#[derive(Serialize)]
pub struct StreamOptions {
    pub include_usage: bool,
}

/// The text contents of chat messages, one per line (for a dataset of messages sent to the
/// completions API).
pub fn join_messages(m: &Value) -> String {
    let mut out = String::new();
    for msg in m.as_array().into_iter().flatten() {
        let text = match msg.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            _ => continue,
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text);
    }
    out
}
