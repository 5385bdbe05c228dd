//! What the protocol handlers get from the simulator.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;

use crate::sim::engine::{Engine, Job};
use crate::sim::error::ApiError;

use super::comfy_state::ComfyState;
use super::sd_state::SdState;

/// The simulator's state as the protocol handlers see it.
pub struct Ctx<'a> {
    /// Served model names.
    pub models: &'a [String],
    /// This instance's name, sent in `x-sim-instance`.
    pub instance: &'a HeaderValue,
    pub engine: &'a Arc<Engine>,
    /// Output tokens when a request does not say.
    pub default_max_tokens: u32,
    /// Time of one image sampling step (ComfyUI, WebUI).
    pub image_step: Duration,
    pub deterministic: bool,
    pub comfy: &'a Arc<ComfyState>,
    pub sd: &'a Arc<SdState>,
    /// Streams in flight (see `Simulator::active_streams`).
    pub streams: &'a Arc<AtomicU64>,
}

/// An inference request's body and the headers the handlers read.
pub struct Input {
    pub body: Bytes,
    pub content_type: Option<String>,
    pub request_id: Option<String>,
}

/// How a request ends when it gets no normal response.
#[derive(Debug)]
pub enum Failure {
    /// An error response.
    Api(ApiError),
    /// No response: the connection is aborted (the `drop-after` fault).
    Abort,
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Failure::Api(err)
    }
}

/// Builds the engine job of a request from its prompt texts, prompt length and output
/// length (the fault and random draws are already in it).
pub type MakeJob<'a> = Box<dyn FnOnce(&[String], u64, u32) -> Job + Send + 'a>;
