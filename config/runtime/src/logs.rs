//! Log lines on stdout, filtered by the `INFERGATE_LOG` environment variable (`EnvFilter`
//! syntax; `info` when unset or invalid).

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// The environment variable that filters log lines.
pub const FILTER_ENV: &str = "INFERGATE_LOG";

/// Installs the process's log subscriber: JSON lines with the event's fields at the top level,
/// or plain text without colours.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env(FILTER_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}
