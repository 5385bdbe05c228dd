//! The access log's queue and its writer thread.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::mpsc::{sync_channel, SyncSender, TryRecvError};

use prometheus::IntCounter;

/// Where access-log lines go. Cloned handles share one queue and one writer.
#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Vec<u8>>,
    sample: f64,
    dropped: IntCounter,
}

impl AccessLog {
    /// Opens `cfg.path` (`stdout`, or a file appended to) and starts the writer thread.
    pub fn open(cfg: &infergate_config::AccessLog, dropped: IntCounter) -> Result<Self, String> {
        let sink: Box<dyn Write + Send> = if cfg.path == "stdout" {
            Box::new(std::io::stdout())
        } else {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&cfg.path)
                .map_err(|e| format!("access_log.path: cannot open {:?}: {e}", cfg.path))?;
            Box::new(f)
        };
        let queue = usize::try_from(cfg.queue).unwrap_or(usize::MAX);
        AccessLog::with_sink(queue, cfg.sample, sink, dropped)
            .map_err(|e| format!("access_log: cannot start the writer thread: {e}"))
    }

    /// An access log writing to `sink` from a queue of `queue` lines.
    pub fn with_sink(
        queue: usize,
        sample: f64,
        sink: Box<dyn Write + Send>,
        dropped: IntCounter,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Vec<u8>>(queue.max(1));
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = BufWriter::with_capacity(64 * 1024, sink);
                // Ends when every sender is gone (the gateway stopped).
                while let Ok(line) = rx.recv() {
                    let _ = out.write_all(&line);
                    loop {
                        match rx.try_recv() {
                            Ok(line) => {
                                let _ = out.write_all(&line);
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => {
                                let _ = out.flush();
                                return;
                            }
                        }
                    }
                    // Nothing more waiting: the lines reach the file now, not at the next burst.
                    let _ = out.flush();
                }
                let _ = out.flush();
            })?;
        Ok(AccessLog {
            tx,
            sample,
            dropped,
        })
    }

    /// Whether a request is logged: every request that did not succeed, and the configured
    /// share of the others.
    pub fn keeps(&self, success: bool) -> bool {
        !success || self.sample >= 1.0 || (self.sample > 0.0 && rand::random::<f64>() < self.sample)
    }

    /// Queues one line (a newline is appended); drops it, counted, when the queue is full.
    pub fn write(&self, mut line: Vec<u8>) {
        line.push(b'\n');
        if self.tx.try_send(line).is_err() {
            self.dropped.inc();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use super::*;

    /// A sink that says when a write reached it, then blocks until the test lets it go.
    struct Gate {
        entered: std::sync::mpsc::Sender<()>,
        open: std::sync::mpsc::Receiver<()>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.send(());
            let _ = self.open.recv();
            self.got.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (open_tx, open) = std::sync::mpsc::channel();
        let (entered, entered_rx) = std::sync::mpsc::channel();
        let got = Arc::new(Mutex::new(Vec::new()));
        let dropped = IntCounter::new("d", "d").unwrap();
        let sink = Gate {
            entered,
            open,
            got: got.clone(),
        };
        let log = AccessLog::with_sink(4, 1.0, Box::new(sink), dropped.clone()).unwrap();
        // The first line goes to the writer, which then hangs in the sink.
        log.write(b"{\"n\":0}".to_vec());
        entered_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let t = Instant::now();
        for i in 1..=100 {
            log.write(format!("{{\"n\":{i}}}").into_bytes());
        }
        assert!(t.elapsed() < Duration::from_secs(2), "writes blocked");
        // The queue holds 4 lines; the other 96 were dropped and counted.
        assert_eq!(dropped.get(), 96);
        for _ in 0..64 {
            let _ = open_tx.send(());
        }
        drop(log);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
            if text.lines().count() == 5 {
                let want: String = (0..=4).map(|i| format!("{{\"n\":{i}}}\n")).collect();
                assert_eq!(text, want);
                break;
            }
            assert!(Instant::now() < deadline, "lines so far: {text}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn sampling_keeps_every_failure() {
        let dropped = IntCounter::new("d", "d").unwrap();
        let log = AccessLog::with_sink(1, 0.0, Box::new(std::io::sink()), dropped).unwrap();
        assert!(log.keeps(false));
        assert!(!log.keeps(true));
    }
}
