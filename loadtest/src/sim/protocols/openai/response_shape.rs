//! The Responses API's response object, its message item and its `usage`, shared by the whole
//! answer and the stream.

use serde_json::{json, Value};

/// What a response object is made of.
pub struct Shape {
    pub id: String,
    pub item_id: String,
    pub model: String,
    pub created: u64,
    pub input_tokens: u64,
    pub output_tokens: u32,
}

impl Shape {
    /// `usage` in the Responses API's shape.
    pub fn usage(&self) -> Value {
        let output = u64::from(self.output_tokens);
        json!({
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens.saturating_add(output),
        })
    }

    /// The message output item holding `text`.
    pub fn message(&self, text: &str, status: &str) -> Value {
        json!({
            "type": "message",
            "id": self.item_id,
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        })
    }

    /// The response object; `text` (the whole output) only once completed.
    pub fn object(&self, text: Option<&str>) -> Value {
        let (status, output, usage) = match text {
            Some(text) => (
                "completed",
                json!([self.message(text, "completed")]),
                self.usage(),
            ),
            None => ("in_progress", json!([]), Value::Null),
        };
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "model": self.model,
            "status": status,
            "output": output,
            "usage": usage,
            "max_output_tokens": self.output_tokens,
            "error": null,
            "incomplete_details": null,
        })
    }
}
