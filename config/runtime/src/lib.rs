//! Start-up shared by `infergate` and `infergate-control`: the log subscriber
//! ([`logs::init`]), the tokio runtimes ([`runtime`]) and the shutdown signals
//! ([`signals::Signals`]).

pub mod logs;
pub mod runtime;
pub mod signals;

pub use logs::LogFormat;
pub use signals::{Signal, Signals};
