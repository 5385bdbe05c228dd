//! Differential tests of the readers that look at bodies as they pass, each against an oracle
//! built on `serde_json` (or, for SSE, a line-by-line reference of what the reader is documented
//! to produce), on seeded random and adversarial inputs.
//!
//! Each case has its own seed (`BASE_SEED + case`); a failure prints the seed, the case and the
//! input. `INFERGATE_DIFF_CASES=N` runs N cases per test instead of the default,
//! `INFERGATE_DIFF_SEED=S` runs the one case with seed S.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The `model` oracle shared with the fuzz target (`fuzz/src/model.rs`).
#[path = "../../../fuzz/src/model.rs"]
mod fuzz_model;
mod gen;
mod model;
mod sse;
mod usage;
