//! SIGTERM and SIGINT, the signals that stop a binary.
//!
//! Install [`Signals`] before the process announces that it is ready (its listeners), so
//! that a signal sent right after the announcement is not lost: from [`Signals::install`] on,
//! these signals no longer end the process by themselves. [`Signals::next`] waits for the
//! first; [`Signals::or_signal`] runs the shutdown work until it ends or a second signal
//! cuts it short.

use std::future::Future;
use std::io;

use tokio::signal::unix::{signal, SignalKind};

/// Which signal came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Term,
    Int,
}

impl Signal {
    /// `"SIGTERM"` or `"SIGINT"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Term => "SIGTERM",
            Signal::Int => "SIGINT",
        }
    }
}

/// SIGTERM and SIGINT, watched from the moment of [`Signals::install`]. Needs a tokio runtime.
#[derive(Debug)]
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal. Cancel-safe: a signal that comes while no `next` is waiting is kept
    /// for the next call.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Term,
            _ = self.int.recv() => Signal::Int,
        }
    }

    /// Runs `work` until it ends (`Ok`) or a signal comes first (`Err`, and `work` is dropped).
    pub async fn or_signal<F: Future>(&mut self, work: F) -> Result<F::Output, Signal> {
        tokio::select! {
            out = work => Ok(out),
            s = self.next() => Err(s),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn raise(sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[tokio::test]
    async fn signals_are_caught_in_order_and_cut_work_short() {
        let mut signals = Signals::install().unwrap();
        assert_eq!(signals.or_signal(async { 7 }).await, Ok(7));
        raise("-TERM");
        let got = tokio::time::timeout(Duration::from_secs(5), signals.next()).await;
        assert_eq!(got.unwrap(), Signal::Term);
        raise("-INT");
        let never = std::future::pending::<()>();
        let got = tokio::time::timeout(Duration::from_secs(5), signals.or_signal(never)).await;
        assert_eq!(got.unwrap(), Err(Signal::Int));
        assert_eq!(Signal::Int.name(), "SIGINT");
    }
}
