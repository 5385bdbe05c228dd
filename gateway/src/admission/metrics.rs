//! Admission's series on the metrics page, rendered from the live snapshot at each scrape (as
//! the per-endpoint gauges are). Labels are bounded by the config: `class` is a configured
//! class name, `reason` and `limit` are fixed sets.
//!
//! - `infergate_admission_queue_depth{class}`: requests waiting now, all backends.
//! - `infergate_admission_queued_total{class}`: requests that waited in a queue.
//! - `infergate_admission_shed_total{class,reason}`: requests answered 429 by priority
//!   admission; `reason` is `queue_full`, `displaced` or `timeout`.
//! - `infergate_rate_limited_total{limit}`: requests answered 429 by a rate limit; `limit` is
//!   `requests` or `tokens`.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::limiter::Exceeded;
use super::queue::Shed;

/// The counters. Kept across reloads while the class names stay the same.
pub struct Counters {
    classes: Vec<Box<str>>,
    queued: Vec<AtomicU64>,
    shed: Vec<[AtomicU64; Shed::ALL.len()]>,
    rate_limited: [AtomicU64; 2],
}

impl Counters {
    pub fn new(classes: Vec<Box<str>>) -> Counters {
        Counters {
            queued: classes.iter().map(|_| AtomicU64::new(0)).collect(),
            shed: classes.iter().map(|_| Default::default()).collect(),
            classes,
            rate_limited: Default::default(),
        }
    }

    pub fn classes(&self) -> &[Box<str>] {
        &self.classes
    }

    pub fn queued(&self, class: usize) {
        if let Some(c) = self.queued.get(class) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn shed(&self, class: usize, reason: Shed) {
        if let Some(c) = self.shed.get(class) {
            c[reason as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rate_limited(&self, exceeded: Exceeded) {
        self.rate_limited[exceeded as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the series in the Prometheus text format; `depth` is the waiters by class.
    pub fn render(&self, depth: &[usize], priority: bool, limits: bool, out: &mut Vec<u8>) {
        if priority {
            family(
                out,
                "infergate_admission_queue_depth",
                "gauge",
                "Requests waiting in a priority class's queue, all backends.",
            );
            for (i, c) in self.classes.iter().enumerate() {
                series(
                    out,
                    "infergate_admission_queue_depth",
                    &[("class", c)],
                    depth.get(i).copied().unwrap_or(0) as u64,
                );
            }
            family(
                out,
                "infergate_admission_queued_total",
                "counter",
                "Requests that found their variant saturated and waited in their class's queue.",
            );
            for (i, c) in self.classes.iter().enumerate() {
                series(
                    out,
                    "infergate_admission_queued_total",
                    &[("class", c)],
                    self.queued[i].load(Ordering::Relaxed),
                );
            }
            family(out, "infergate_admission_shed_total", "counter", "Requests answered 429 by priority admission, by class and reason (queue_full, displaced, timeout).");
            for (i, c) in self.classes.iter().enumerate() {
                for r in Shed::ALL {
                    let v = self.shed[i][r as usize].load(Ordering::Relaxed);
                    series(
                        out,
                        "infergate_admission_shed_total",
                        &[("class", c), ("reason", r.as_str())],
                        v,
                    );
                }
            }
        }
        if limits {
            family(
                out,
                "infergate_rate_limited_total",
                "counter",
                "Requests answered 429 by a tenant's rate limit, by the limit that refused them.",
            );
            for e in [Exceeded::Requests, Exceeded::Tokens] {
                let v = self.rate_limited[e as usize].load(Ordering::Relaxed);
                series(
                    out,
                    "infergate_rate_limited_total",
                    &[("limit", e.as_str())],
                    v,
                );
            }
        }
    }
}

fn family(out: &mut Vec<u8>, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn series(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)], v: u64) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'{');
    for (i, (k, val)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{k}=\"");
        for ch in val.chars() {
            match ch {
                '\\' => out.extend_from_slice(b"\\\\"),
                '"' => out.extend_from_slice(b"\\\""),
                '\n' => out.extend_from_slice(b"\\n"),
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        out.push(b'"');
    }
    let _ = writeln!(out, "}} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_bounded_series_with_escaped_class_names() {
        let c = Counters::new(vec!["high".into(), "lo\"w".into()]);
        c.shed(1, Shed::Timeout);
        c.shed(1, Shed::Timeout);
        c.queued(0);
        c.rate_limited(Exceeded::Tokens);
        let mut out = Vec::new();
        c.render(&[3, 0], true, true, &mut out);
        let text = String::from_utf8(out).unwrap_or_default();
        assert!(
            text.contains("infergate_admission_queue_depth{class=\"high\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("infergate_admission_queued_total{class=\"high\"} 1\n"));
        assert!(text
            .contains("infergate_admission_shed_total{class=\"lo\\\"w\",reason=\"timeout\"} 2\n"));
        assert!(text
            .contains("infergate_admission_shed_total{class=\"high\",reason=\"queue_full\"} 0\n"));
        assert!(text.contains("infergate_rate_limited_total{limit=\"tokens\"} 1\n"));
        assert!(text.contains("infergate_rate_limited_total{limit=\"requests\"} 0\n"));
        // 2 classes: 2 depth, 2 queued, 6 shed; 2 rate-limited series.
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 12);
    }
}
