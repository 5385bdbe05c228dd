//! Token counts reported in `usage`.

use serde::Serialize;

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
