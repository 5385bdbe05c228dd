//! [`Runner`]: runs NVML calls on a worker thread, each bounded in time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nvml_wrapper::error::NvmlError;

use super::call::CallError;
use super::lock::lock;

type Job = Box<dyn FnOnce() + Send>;

struct HungCall {
    since: Instant,
    done: Arc<AtomicBool>,
}

/// Runs NVML calls on a worker thread, each bounded by `timeout`.
pub(super) struct Runner {
    pub(super) timeout: Duration,
    worker: Mutex<Option<Sender<Job>>>,
    hung: Mutex<HashMap<(Option<u32>, &'static str), HungCall>>,
}

fn spawn_worker() -> Result<Sender<Job>, String> {
    let (tx, rx) = mpsc::channel::<Job>();
    thread::Builder::new()
        .name("nvml-call".into())
        .spawn(move || {
            for job in rx {
                job();
            }
        })
        .map_err(|e| format!("cannot start an NVML worker thread: {e}"))?;
    Ok(tx)
}

impl Runner {
    pub(super) fn new(timeout: Duration) -> Self {
        Runner {
            timeout,
            worker: Mutex::new(None),
            hung: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn call<T, F>(
        &self,
        gpu: Option<u32>,
        name: &'static str,
        f: F,
    ) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, NvmlError> + Send + 'static,
    {
        {
            let mut hung = lock(&self.hung);
            if let Some(h) = hung.get(&(gpu, name)) {
                if !h.done.load(Ordering::Acquire) {
                    return Err(CallError::StillHung(h.since.elapsed()));
                }
                hung.remove(&(gpu, name));
            }
        }
        let done = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::sync_channel(1);
        let job_done = Arc::clone(&done);
        let job: Job = Box::new(move || {
            let result = f();
            job_done.store(true, Ordering::Release);
            // The caller may have given up: nobody to tell.
            let _ = tx.send(result);
        });

        let mut worker = lock(&self.worker);
        let job = match worker.as_ref() {
            Some(w) => match w.send(job) {
                Ok(()) => None,
                Err(mpsc::SendError(job)) => Some(job),
            },
            None => Some(job),
        };
        if let Some(job) = job {
            let fresh = spawn_worker().map_err(CallError::Internal)?;
            fresh
                .send(job)
                .map_err(|_| CallError::Internal("the NVML worker thread exited".into()))?;
            *worker = Some(fresh);
        }
        let started = Instant::now();
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result.map_err(CallError::Nvml),
            Err(RecvTimeoutError::Timeout) => {
                // The hung call keeps the old thread; the next call starts a new one.
                *worker = None;
                lock(&self.hung).insert(
                    (gpu, name),
                    HungCall {
                        since: started,
                        done,
                    },
                );
                Err(CallError::Timeout(self.timeout))
            }
            Err(RecvTimeoutError::Disconnected) => {
                *worker = None;
                Err(CallError::Internal(format!("{name} panicked")))
            }
        }
    }
}
