//! The SSE reading shared with the gateway (`infergate-sse`): token events, usage and error
//! events, with the definitions of `docs/metrics.md`.

pub use infergate_sse::*;
