//! Request bodies: what the simulator reads from them, and its dummy tokenizer.
//!
//! Unknown fields (`temperature`, `top_p`, ...) are accepted and ignored, as vLLM accepts
//! them. Prompt length is measured with a dummy tokenizer, [`count_tokens`].

mod embedding;
mod generation;
mod json;
mod read;
mod tokens;

pub use embedding::EmbeddingRequest;
pub use generation::Generation;
pub use read::read_body;
pub use tokens::count_tokens;
