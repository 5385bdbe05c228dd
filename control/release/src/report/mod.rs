//! The release report: the record as JSON, and as one self-contained HTML page (inline CSS
//! and hand-written SVG; no script, font or other external asset) that shows the release's
//! state and reason, a table of every step (weights, window, per-variant requests, TTFT/TPOT
//! p50/p95/p99, error rate, each gate's value, limit and verdict), charts of stable against
//! canary per step (TTFT p95, TPOT p95, error rate, with the canary's limit) and the weights
//! over time. Every string from the record is escaped; a missing figure (no samples, no
//! requests) shows as "–".

mod bars;
mod charts;
mod page;
mod svg;
mod table;
mod text;
mod weights;

#[cfg(test)]
mod tests;

use crate::record::ReleaseRecord;

/// The record as pretty-printed JSON, the fields named as in [`ReleaseRecord`].
pub fn json(record: &ReleaseRecord) -> String {
    match serde_json::to_string_pretty(record) {
        Ok(s) => s,
        // Not reached with the record's types (string keys only); kept as valid JSON.
        Err(e) => serde_json::json!({ "error": e.to_string() }).to_string(),
    }
}

/// The record as one self-contained HTML page.
pub fn html(record: &ReleaseRecord) -> String {
    page::render(record)
}
