//! The other OpenAI paths vLLM serves: `/v1/responses`, `/v1/audio/transcriptions`,
//! `/v1/rerank` and `/v1/score`.

mod multipart;
mod responses;
mod responses_stream;
mod score;
mod transcription;

pub use responses::responses;
pub use score::{rerank, score};
pub use transcription::transcription;

/// A random id with `prefix`, or one built from the request id in deterministic mode.
fn response_id(prefix: &str, deterministic: bool, request_id: Option<&str>) -> String {
    if deterministic {
        let rid: String = request_id
            .unwrap_or("0")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        format!("{prefix}-{rid}")
    } else {
        format!("{prefix}-{:016x}", rand::random::<u64>())
    }
}
