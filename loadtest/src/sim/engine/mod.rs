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
//!
//! With a KV model ([`KvConfig`]), the engine admits requests like vLLM's scheduler
//! instead: a request needs blocks of `block_size` tokens for its prompt and for every token
//! it generates; when the cache is full, new requests wait (FIFO) and the newest running one
//! is preempted (its blocks freed, back to the head of the queue, recomputed on
//! readmission). Full prompt blocks are cached by the chained hash of their tokens and
//! evicted least recently used first; prefill covers only the tokens the cache did not hold:
//!
//! | event                 | due at                                                        |
//! |-----------------------|---------------------------------------------------------------|
//! | token `i` (admission) | `admitted + ttft_draw + prefill_per_1k * uncached / 1000`     |

mod capacity;
mod job;
mod kv;
mod queue;
mod run;
mod slot;
mod submit;
#[cfg(test)]
mod tests;
mod ticket;

pub use capacity::{Engine, EngineConfig, KvConfig};
pub use job::{Cut, Job, Tick};
pub use kv::block_hashes;
pub use run::Run;
