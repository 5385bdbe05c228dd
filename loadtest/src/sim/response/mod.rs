//! Response bodies in vLLM's JSON shapes: streaming chunks (SSE events), complete
//! completions, the model list and embeddings.

mod chunk;
mod completion;
mod embeddings;
mod json;
mod models;
mod stamp;
mod usage;

pub use chunk::{ChunkEncoder, DONE_EVENT};
pub use completion::completion;
pub use embeddings::embeddings;
pub use json::to_json;
pub use models::model_list;
pub use stamp::{response_id, unix_now, Stamp};
pub use usage::Usage;
