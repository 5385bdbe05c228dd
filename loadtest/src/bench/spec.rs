//! Parsers for the command-line values of `infergate-bench`: length distributions
//! (`MEAN[:STDDEV]`), durations (`30s`, `500ms`), SLOs (`ttft=500ms,tpot=50ms`) and headers
//! (`name: value`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::random::standard_normal;

/// A length distribution: a normal draw around `mean` with `stddev`, rounded and at least 1.
/// `stddev` 0 gives `mean` (rounded) every time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    pub mean: f64,
    pub stddev: f64,
}

impl Dist {
    pub const fn fixed(mean: f64) -> Self {
        Self { mean, stddev: 0.0 }
    }

    /// One draw: `round(normal(mean, stddev))`, clamped to `[1, 1_000_000]`.
    pub fn sample(&self, rng: &mut impl Rng) -> u32 {
        let x = if self.stddev > 0.0 {
            self.mean + self.stddev * standard_normal(rng)
        } else {
            self.mean
        };
        // Finite by construction (both parsed finite); the clamp keeps the cast exact.
        x.round().clamp(1.0, 1_000_000.0) as u32
    }
}

impl FromStr for Dist {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (mean, stddev) = match s.split_once(':') {
            Some((m, d)) => (m, Some(d)),
            None => (s, None),
        };
        let mean: f64 = mean
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: expected MEAN[:STDDEV], e.g. 128 or 128:32"))?;
        let stddev: f64 = match stddev {
            Some(d) => d
                .trim()
                .parse()
                .map_err(|_| format!("`{s}`: the standard deviation is not a number"))?,
            None => 0.0,
        };
        if !(mean.is_finite() && (1.0..=1_000_000.0).contains(&mean)) {
            return Err(format!("`{s}`: the mean must be between 1 and 1000000"));
        }
        if !(stddev.is_finite() && (0.0..=1_000_000.0).contains(&stddev)) {
            return Err(format!(
                "`{s}`: the standard deviation must be between 0 and 1000000"
            ));
        }
        Ok(Self { mean, stddev })
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stddev > 0.0 {
            write!(f, "{}:{}", self.mean, self.stddev)
        } else {
            write!(f, "{}", self.mean)
        }
    }
}

/// Parses a duration: a number with a unit `ms`, `s`, `m` or `h` (`500ms`, `30s`, `1.5m`);
/// a bare number is in `bare_unit_secs` (1.0 for seconds, 0.001 for milliseconds).
pub fn parse_duration_with(s: &str, bare_unit_secs: f64) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, bare_unit_secs)
    };
    let value: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 500ms, 30s, 2m)"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("`{s}` must be a finite duration, at least 0"));
    }
    Duration::try_from_secs_f64(value * unit).map_err(|_| format!("`{s}` is too long"))
}

/// A duration where a bare number means seconds (`--duration 30` = 30 s).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_with(s, 1.0)
}

/// A positive duration (bare number = seconds).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("`{s}` must be more than 0"));
    }
    Ok(d)
}

/// Service-level objectives: a request is "good" when it succeeded and meets every one set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slo {
    pub ttft: Option<Duration>,
    pub tpot: Option<Duration>,
    pub e2e: Option<Duration>,
}

impl FromStr for Slo {
    type Err = String;

    /// `ttft=500ms,tpot=50ms,e2e=10s`; a bare number is in milliseconds.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut slo = Slo::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .or_else(|| part.split_once(':'))
                .ok_or_else(|| format!("`{part}`: expected METRIC=DURATION, e.g. ttft=500ms"))?;
            let d = parse_duration_with(value, 0.001)?;
            let slot = match key.trim() {
                "ttft" => &mut slo.ttft,
                "tpot" => &mut slo.tpot,
                "e2e" | "e2el" | "latency" => &mut slo.e2e,
                other => {
                    return Err(format!(
                        "unknown SLO metric `{other}`: expected ttft, tpot or e2e"
                    ))
                }
            };
            *slot = Some(d);
        }
        if slo.ttft.is_none() && slo.tpot.is_none() && slo.e2e.is_none() {
            return Err("an SLO needs at least one of ttft=, tpot=, e2e=".to_owned());
        }
        Ok(slo)
    }
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, v) in [("ttft", self.ttft), ("tpot", self.tpot), ("e2e", self.e2e)] {
            if let Some(d) = v {
                if !first {
                    f.write_str(", ")?;
                }
                first = false;
                write!(f, "{name} ≤ {} ms", fmt_num(d.as_secs_f64() * 1000.0))?;
            }
        }
        Ok(())
    }
}

/// A number with at most 3 decimals and no trailing zeros.
pub fn fmt_num(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// An extra request header, `name: value`.
#[derive(Clone, Debug)]
pub struct Header {
    pub name: HeaderName,
    pub value: HeaderValue,
}

impl FromStr for Header {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected 'name: value'"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("`{}` is not a valid header name", name.trim()))?;
        let value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of header `{name}` is not valid"))?;
        Ok(Self { name, value })
    }
}

/// Header names whose values are secrets: redacted in the saved command line and config.
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || n == "proxy-authorization"
        || n == "cookie"
        || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("token")
        || n.contains("secret")
}

/// A positive, finite request rate (requests per second).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a rate (requests per second)"))?;
    if !r.is_finite() || r <= 0.0 || r > 1e7 {
        return Err(format!("`{s}`: a rate must be more than 0 and finite"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dists() {
        assert_eq!("128".parse::<Dist>(), Ok(Dist::fixed(128.0)));
        assert_eq!(
            "128:32".parse::<Dist>(),
            Ok(Dist {
                mean: 128.0,
                stddev: 32.0
            })
        );
        assert!("0".parse::<Dist>().is_err());
        assert!("x".parse::<Dist>().is_err());
        assert!("10:-1".parse::<Dist>().is_err());
        assert!("nan".parse::<Dist>().is_err());
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        assert_eq!(Dist::fixed(7.4).sample(&mut rng), 7);
        let d = Dist {
            mean: 100.0,
            stddev: 10.0,
        };
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| f64::from(d.sample(&mut rng))).collect();
        let mean = xs.iter().sum::<f64>() / f64::from(n);
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / f64::from(n);
        assert!((mean - 100.0).abs() < 0.5, "{mean}");
        assert!((var.sqrt() - 10.0).abs() < 0.5, "{}", var.sqrt());
        let wide = Dist {
            mean: 2.0,
            stddev: 50.0,
        };
        assert!((0..1000).all(|_| wide.sample(&mut rng) >= 1));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("abc").is_err());
        assert!(parse_duration("infs").is_err());
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn slos() {
        let s: Slo = "ttft=500ms,tpot=50ms".parse().unwrap();
        assert_eq!(s.ttft, Some(Duration::from_millis(500)));
        assert_eq!(s.tpot, Some(Duration::from_millis(50)));
        assert_eq!(s.e2e, None);
        let s: Slo = "e2e=2s, ttft:200".parse().unwrap();
        assert_eq!(s.e2e, Some(Duration::from_secs(2)));
        assert_eq!(s.ttft, Some(Duration::from_millis(200)));
        assert!("itl=5ms".parse::<Slo>().is_err());
        assert!("".parse::<Slo>().is_err());
        assert_eq!(s.to_string(), "ttft ≤ 200 ms, e2e ≤ 2000 ms");
    }

    #[test]
    fn headers() {
        let h: Header = "X-Team: infra: a".parse().unwrap();
        assert_eq!(h.name.as_str(), "x-team");
        assert_eq!(h.value, "infra: a");
        assert!("nocolon".parse::<Header>().is_err());
        assert!("bad name: x".parse::<Header>().is_err());
        assert!(is_secret_header("Authorization"));
        assert!(is_secret_header("x-api-key"));
        assert!(!is_secret_header("x-sim-fault"));
    }

    #[test]
    fn rates_and_numbers() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("inf").is_err());
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(0.25), "0.25");
        assert_eq!(fmt_num(1.23456), "1.235");
    }
}
