//! The tokio runtimes the binaries run on, all with I/O and timers enabled.

use std::io;

use tokio::runtime::{Builder, Runtime};

/// The main runtime of a serving process: one worker per core.
pub fn multi_thread() -> io::Result<Runtime> {
    Builder::new_multi_thread().enable_all().build()
}

/// A runtime of its own for one kind of work: `threads` workers named `name`.
pub fn pool(name: &str, threads: usize) -> io::Result<Runtime> {
    Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .thread_name(name)
        .build()
}

/// A runtime on the calling thread, for a short command.
pub fn current_thread() -> io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}
