//! The live progress display on stderr: sent, done, errors, in flight and the running TTFT
//! median. On a terminal one line is redrawn with `\r` (at most 10 times a second); otherwise
//! a plain line is printed every second.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::live::Live;
pub use super::live::LiveHist;

/// A running progress display; [`Progress::finish`] prints the last state and stops it.
pub struct Progress {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts the display for a step labelled `label`, with `total` requests when known.
    /// `enabled: false` shows nothing.
    pub fn start(
        live: Arc<Live>,
        label: String,
        total: Option<u64>,
        t0: Instant,
        tty: bool,
        enabled: bool,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        if !enabled {
            return Self { stop, task: None };
        }
        let every = if tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = stopped.changed() => true,
                };
                let line = render(&live, &label, total, t0);
                let mut err = std::io::stderr().lock();
                let _ = if tty {
                    write!(err, "\r\x1b[2K{line}{}", if last { "\n" } else { "" })
                } else {
                    writeln!(err, "{line}")
                };
                let _ = err.flush();
                if last {
                    break;
                }
            }
        });
        Self {
            stop,
            task: Some(task),
        }
    }

    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

fn render(l: &Live, label: &str, total: Option<u64>, t0: Instant) -> String {
    // `done` first: a request counted done was counted sent before it.
    let done = l.done.load(Ordering::Relaxed);
    let sent = l.sent.load(Ordering::Relaxed);
    let total = total.map(|t| format!("/{t}")).unwrap_or_default();
    let ttft = l
        .ttft
        .quantile(0.5)
        .map_or_else(|| "-".to_owned(), |us| format!("{:.1} ms", us / 1000.0));
    format!(
        "{label} {:>6.1}s  sent {sent}{total}  done {}  errors {}  in flight {}  TTFT p50 {ttft}",
        t0.elapsed().as_secs_f64(),
        done,
        l.errors.load(Ordering::Relaxed),
        sent.saturating_sub(done),
    )
}
