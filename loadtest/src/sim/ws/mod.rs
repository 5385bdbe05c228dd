//! WebSockets: RFC 6455 framing, the server side used by the ComfyUI stub's `/ws`, and a
//! small client for tests.

mod base64;
pub mod client;
mod frame;
pub mod server;
mod sha1;

pub use base64::encode as base64_encode;
pub use frame::accept_key;
