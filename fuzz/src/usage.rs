//! The usage scanner of non-streamed responses (`infergate_gateway::observe::JsonUsageScanner`):
//! on a body `serde_json` reads as an object, the scanner reports the `usage` that `serde_json`
//! keeps (the last top-level `usage` key, compared after unescaping) read as `Usage`, or none
//! where that value is not an object or does not read as `Usage`; on any body, it gives the same
//! answer however the body is cut into frames.

use infergate_gateway::observe::{JsonUsageScanner, Usage, MAX_USAGE};
use serde_json::Value;

/// Scans `body` whole, byte by byte and in uneven frames, and compares with `serde_json`.
pub fn check(body: &[u8]) -> Result<(), String> {
    let whole = scan(&[body]);
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    let by_byte = scan(&bytes);
    if by_byte != whole {
        return Err(format!("whole: {whole:?}, byte by byte: {by_byte:?}"));
    }
    let step = usize::from(body.first().copied().unwrap_or(0) % 13) + 2;
    let uneven = scan(&frames(body, step));
    if uneven != whole {
        return Err(format!(
            "whole: {whole:?}, in frames from {step} bytes: {uneven:?}"
        ));
    }
    // Within MAX_USAGE bytes the whole body, so any usage value, is short enough to be read.
    if body.len() <= MAX_USAGE {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            let want = match map.get("usage") {
                Some(v @ Value::Object(_)) => serde_json::from_value::<Usage>(v.clone()).ok(),
                _ => None,
            };
            if want != whole {
                return Err(format!("serde_json: {want:?}, scanner: {whole:?}"));
            }
        }
    }
    Ok(())
}

fn scan(frames: &[&[u8]]) -> Option<Usage> {
    let mut s = JsonUsageScanner::default();
    for f in frames {
        s.observe(f);
    }
    s.usage
}

/// `body` cut into frames of growing length: `step`, `step + 1`, ... bytes.
fn frames(body: &[u8], step: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut rest, mut n) = (body, step);
    while !rest.is_empty() {
        let (a, b) = rest.split_at(n.min(rest.len()));
        out.push(a);
        rest = b;
        n += 1;
    }
    out
}
