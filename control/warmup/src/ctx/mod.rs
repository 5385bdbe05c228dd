//! What the tasks of a job share: the job's context, the file being fetched, and the path of
//! received bytes into it (positioned writes, SHA-256 in file order).

mod file;
mod hash;
mod job;
mod write;
mod writer;

pub(crate) use file::FileCtx;
pub(crate) use hash::HashState;
pub(crate) use job::JobCtx;
pub(crate) use writer::Writer;

#[cfg(test)]
pub(crate) use hash::hash_in_order;
#[cfg(test)]
pub(crate) use write::write_vectored;

#[cfg(test)]
mod tests;
