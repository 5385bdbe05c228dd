//! The simulated inference engine: running slots, the FIFO waiting queue, and the token
//! schedule of each request, with vLLM's metrics recorded along the way.
//!
//! A request submitted to the [`Engine`] becomes a [`Run`]. With free capacity (or no limit)
//! it runs at once; otherwise it waits in a FIFO queue (at most `max_waiting` deep, beyond
//! which it is refused with 429) and its clock starts when it gets a slot:
//!
//! | event                 | due at                                                        |
//! |-----------------------|---------------------------------------------------------------|
//! | token 0               | `slot + ttft_draw + prefill_per_1k * prompt_tokens / 1000`    |
//! | token `i + 1`         | `due(i) + itl_draw`                                           |
//!
//! Deadlines are absolute, so a late poll does not push later tokens back (no drift). The
//! slot, and the KV-cache tokens the request holds (prompt plus generated so far), are
//! released when its last token is produced or when the run is dropped (client gone).

mod capacity;
mod job;
mod queue;
mod run;
mod slot;
mod submit;
#[cfg(test)]
mod tests;

pub use capacity::{Engine, EngineConfig};
pub use job::{Cut, Job, Tick};
pub use run::Run;
