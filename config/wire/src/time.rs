//! UTC calendar times of Unix times: RFC 3339 timestamps, as the gateway's access log, the load
//! tester's output and the fake Kubernetes API write them, and the parts for other formats.

/// `2026-01-02T03:04:05Z` of seconds since the Unix epoch.
pub fn rfc3339(unix_secs: u64) -> String {
    let t = utc(unix_secs);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        t.date(),
        t.hour,
        t.minute,
        t.second
    )
}

/// `2026-01-02T03:04:05.678Z` of nanoseconds since the Unix epoch.
pub fn rfc3339_millis(unix_ns: u64) -> String {
    let t = utc(unix_ns / 1_000_000_000);
    let millis = (unix_ns / 1_000_000) % 1000;
    format!(
        "{}T{:02}:{:02}:{:02}.{millis:03}Z",
        t.date(),
        t.hour,
        t.minute,
        t.second
    )
}

/// A Unix time as a UTC date (proleptic Gregorian) and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
}

impl Utc {
    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The UTC date and time of day of seconds since the Unix epoch.
pub fn utc(unix_secs: u64) -> Utc {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    Utc {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_323_045), "2026-01-02T03:04:05Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
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
