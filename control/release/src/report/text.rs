//! Text for the page: HTML escaping, numbers, units, dates and the "–" of a missing value.

/// Shown where a figure is missing (no samples, no requests, not judged yet).
pub(super) const DASH: &str = "–";

/// `s` with `& < > " '` escaped, safe in element text and in quoted attribute values.
pub(super) fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number with at most three decimals and no trailing zeros; "–" when not finite.
pub(super) fn num(x: f64) -> String {
    if !x.is_finite() {
        return DASH.to_owned();
    }
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Seconds shown as milliseconds ("212.5 ms"), with one decimal below 100 ms.
pub(super) fn ms(seconds: Option<f64>) -> String {
    match seconds.filter(|s| s.is_finite()) {
        None => DASH.to_owned(),
        Some(s) => {
            let v = s * 1000.0;
            if v.abs() < 100.0 {
                format!("{v:.1} ms")
            } else {
                format!("{v:.0} ms")
            }
        }
    }
}

/// A rate (0.0123) shown as a percentage ("1.23 %").
pub(super) fn percent(rate: Option<f64>) -> String {
    match rate.filter(|r| r.is_finite()) {
        None => DASH.to_owned(),
        Some(r) => format!("{} %", num((r * 100.0 * 100.0).round() / 100.0)),
    }
}

/// A gate's value or limit in the gate's unit: latencies (`ttft*`, `tpot*`) in ms, error
/// rates in percent, anything else as a plain number.
pub(super) fn gate_figure(gate: &str, v: Option<f64>) -> String {
    if gate.contains("ttft") || gate.contains("tpot") {
        ms(v)
    } else if gate.contains("error") {
        percent(v)
    } else {
        v.map_or_else(|| DASH.to_owned(), num)
    }
}

/// An error rate only where there were requests: zero requests have no rate.
pub(super) fn error_rate(requests: u64, rate: f64) -> Option<f64> {
    (requests > 0 && rate.is_finite()).then_some(rate)
}

/// A duration in seconds: "3 s", "2 min 5 s", "1 h 2 min".
pub(super) fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return DASH.to_owned();
    }
    if seconds < 60.0 {
        return format!("{} s", num((seconds * 10.0).round() / 10.0));
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// Unix milliseconds as UTC, e.g. "2026-03-01 14:05:09 UTC".
pub(super) fn utc(ms: u64) -> String {
    let t = infergate_wire::time::utc(ms / 1000);
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        t.date(),
        t.hour,
        t.minute,
        t.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn formats_figures_and_missing_values() {
        assert_eq!(ms(Some(0.2125)), "212 ms");
        assert_eq!(ms(Some(0.0155)), "15.5 ms");
        assert_eq!(ms(None), DASH);
        assert_eq!(ms(Some(f64::NAN)), DASH);
        assert_eq!(percent(Some(0.05)), "5 %");
        assert_eq!(percent(Some(0.01234)), "1.23 %");
        assert_eq!(percent(None), DASH);
        assert_eq!(num(1.5), "1.5");
        assert_eq!(num(f64::INFINITY), DASH);
        assert_eq!(gate_figure("ttft_p95", Some(0.15)), "150 ms");
        assert_eq!(gate_figure("error_rate", Some(0.02)), "2 %");
        assert_eq!(gate_figure("gpu_healthy", Some(1.0)), "1");
        assert_eq!(error_rate(0, 0.0), None);
        assert_eq!(error_rate(10, 0.1), Some(0.1));
        assert_eq!(duration(3.0), "3 s");
        assert_eq!(duration(125.0), "2 min 5 s");
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56 UTC");
    }
}
