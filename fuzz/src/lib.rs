//! The checks of the fuzz targets, one module per target. Each `check` returns `Err` with the
//! reason when a property does not hold; a panic in the code under test is a crash as well.
//!
//! The modules use only the project's crates and `serde`/`serde_json`, and nothing of each
//! other: the regression tests of the project include them by path and run the same checks on
//! the saved inputs (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`).

pub mod config;
pub mod feed;
pub mod manifest;
pub mod model;
pub mod sse;
pub mod usage;
