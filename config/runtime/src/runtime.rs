//! The tokio runtimes the binaries run on, all with I/O and timers enabled.

use std::io;

use tokio::runtime::{Builder, Runtime};

/// The main runtime of a serving process: one worker per core.
pub fn multi_thread() -> io::Result<Runtime> {
    Builder::new_multi_thread().enable_all().build()
}

/// The runtime of a proxy: one worker per CPU the process may use (its affinity mask and
/// cgroup quota, as [`std::thread::available_parallelism`] reads them). With one CPU it is a
/// runtime on the calling thread: the same work without the work-stealing scheduler's shared
/// queues and idle-worker parking, which have nothing to balance on one CPU.
pub fn proxy() -> io::Result<Runtime> {
    match std::thread::available_parallelism() {
        Ok(n) if n.get() == 1 => current_thread(),
        _ => multi_thread(),
    }
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
