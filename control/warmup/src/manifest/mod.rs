//! The manifest: a model version's files with their sizes and SHA-256, its checks, and how a
//! directory's manifest is written.

mod entry;
mod validate;
mod write;

pub use entry::{Manifest, ManifestEntry};
pub use write::write_manifest;

#[cfg(test)]
mod tests;
