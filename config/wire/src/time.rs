//! RFC 3339 UTC timestamps, as the gateway's access log and the load tester's output write them.

/// `2026-01-02T03:04:05Z` of seconds since the Unix epoch.
pub fn rfc3339(unix_secs: u64) -> String {
    let (date, h, mi, s) = utc(unix_secs);
    format!("{date}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2026-01-02T03:04:05.678Z` of nanoseconds since the Unix epoch.
pub fn rfc3339_millis(unix_ns: u64) -> String {
    let (date, h, mi, s) = utc(unix_ns / 1_000_000_000);
    let millis = (unix_ns / 1_000_000) % 1000;
    format!("{date}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
}

/// The date (`YYYY-MM-DD`) and the hour, minute and second of a Unix time.
fn utc(unix_secs: u64) -> (String, u64, u64, u64) {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}-{m:02}-{d:02}");
    (date, rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_323_045), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn milliseconds() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_251_199_123_000_000),
            "2024-02-29T23:59:59.123Z"
        );
        assert_eq!(
            rfc3339_millis(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
