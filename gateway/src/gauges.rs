//! The per-endpoint gauges of the metrics page, rendered from the live snapshot at each scrape:
//! one series per endpoint that exists now (an endpoint that left the table has none), and
//! nothing to update on the request path.

use std::io::Write as _;

use tokio::time::Instant;

use crate::endpoint::EndpointState;
use crate::table::Table;

type Read<'a> = &'a dyn Fn(&EndpointState) -> u32;

/// Appends `infergate_endpoint_in_flight` and `infergate_endpoint_ejected` in the Prometheus
/// text format.
pub fn render(table: &Table, now: Instant, out: &mut Vec<u8>) {
    let families: [(&str, &str, Read<'_>); 2] = [
        (
            "infergate_endpoint_in_flight",
            "Requests in flight on an endpoint, counted until their response ends.",
            &|s| s.in_flight(),
        ),
        (
            "infergate_endpoint_ejected",
            "1 while the endpoint is ejected (outlier detection, GPU health or a cold model), else 0.",
            &|s| u32::from(s.is_ejected(now)),
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for b in table.backends() {
            for e in &b.endpoints {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"{backend=\"");
                escape(&b.name, out);
                out.extend_from_slice(b"\",endpoint=\"");
                escape(&e.state.url, out);
                let _ = writeln!(out, "\"}} {}", value(&e.state));
            }
        }
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(v: &str, out: &mut Vec<u8>) {
    for c in v.bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = Vec::new();
        escape("a\"b\\c\nd", &mut out);
        assert_eq!(out, b"a\\\"b\\\\c\\nd");
    }
}
