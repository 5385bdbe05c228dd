//! The other OpenAI paths vLLM serves: `/v1/responses`, `/v1/audio/transcriptions`,
//! `/v1/rerank` and `/v1/score`.

mod multipart;
mod response_shape;
mod responses;
mod responses_stream;
mod score;
mod transcription;

pub use responses::responses;
pub use score::{rerank, score};
pub use transcription::transcription;
