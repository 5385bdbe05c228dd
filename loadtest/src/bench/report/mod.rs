//! The HTML report: one self-contained file (inline CSS and SVG, no script, no external
//! asset) with the summary tables and charts: per step the TTFT, TPOT and E2E histograms and
//! a time series of the run (TTFT per request and output tokens/s); for a sweep, throughput and
//! p50/p99 latencies against the rate or concurrency.

mod axis;
mod histogram;
mod line_chart;
mod page;
mod step;
mod svg;
mod sweep;
mod tables;
#[cfg(test)]
mod tests;
mod timeline;

pub use histogram::histogram;
pub use line_chart::{line_chart, Series};
pub use page::{render, write};
