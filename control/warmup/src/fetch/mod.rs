//! Fetching one file: chunks in parallel into `<path>.partial`, a resume sidecar, SHA-256 of
//! the bytes written, `fsync` and an atomic rename.

mod chunk;
mod file;
mod hasher;
mod source;
mod workers;

pub(crate) use file::fetch_file;
pub(crate) use source::SourceImpl;

#[cfg(test)]
mod tests;
