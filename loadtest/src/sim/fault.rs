//! Faults injected on demand: by configuration (`--fault SPEC[@RATE]`, drawn per request)
//! or by a request's `x-sim-fault: SPEC` header (always applied, overriding the flags).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;

/// Name of the request header that picks a fault for one request.
pub const FAULT_HEADER: &str = "x-sim-fault";

/// One way of misbehaving. See the `SPEC` syntax on [`Fault::from_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `status=CODE`: answer at once with this status (400..=599) and an OpenAI error body.
    Status(u16),
    /// `hang`: never send the response head; hold the request until the client goes away.
    Hang,
    /// `hang-body`: send a 200 event-stream head, then never send an event.
    HangBody,
    /// `stall-after=N`: send N token events normally, then nothing more while keeping the
    /// connection (and the running slot) open. A non-streamed request hangs instead.
    StallAfter(u32),
    /// `drop-after=N`: send N token events, then abort the connection (an incomplete body).
    /// A non-streamed request is aborted without a response.
    DropAfter(u32),
    /// `delay=MS`: wait this long before handling the request (before the response head).
    Delay(Duration),
}

/// Why a fault `SPEC` (or `SPEC@RATE`) was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultParseError(String);

impl fmt::Display for FaultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultParseError {}

fn number<T: FromStr>(spec: &str, value: &str) -> Result<T, FaultParseError> {
    value.trim().parse().map_err(|_| {
        FaultParseError(format!(
            "invalid fault `{spec}`: `{value}` is not a valid number"
        ))
    })
}

impl FromStr for Fault {
    type Err = FaultParseError;

    /// `status=CODE` (CODE in 400..=599), `hang`, `hang-body`, `stall-after=N`,
    /// `drop-after=N` or `delay=MS`. Surrounding whitespace is ignored.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let trimmed = spec.trim();
        let (kind, value) = match trimmed.split_once('=') {
            Some((kind, value)) => (kind.trim(), Some(value)),
            None => (trimmed, None),
        };
        let fault = match (kind, value) {
            ("hang", None) => Fault::Hang,
            ("hang-body", None) => Fault::HangBody,
            ("status", Some(v)) => {
                let code: u16 = number(spec, v)?;
                if !(400..=599).contains(&code) {
                    return Err(FaultParseError(format!(
                        "invalid fault `{spec}`: the status must be in 400..=599"
                    )));
                }
                Fault::Status(code)
            }
            ("stall-after", Some(v)) => Fault::StallAfter(number(spec, v)?),
            ("drop-after", Some(v)) => Fault::DropAfter(number(spec, v)?),
            ("delay", Some(v)) => Fault::Delay(Duration::from_millis(number(spec, v)?)),
            _ => {
                return Err(FaultParseError(format!(
                    "invalid fault `{spec}`: expected status=CODE, hang, hang-body, \
                     stall-after=N, drop-after=N or delay=MS"
                )))
            }
        };
        Ok(fault)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(code) => write!(f, "status={code}"),
            Fault::Hang => f.write_str("hang"),
            Fault::HangBody => f.write_str("hang-body"),
            Fault::StallAfter(n) => write!(f, "stall-after={n}"),
            Fault::DropAfter(n) => write!(f, "drop-after={n}"),
            Fault::Delay(d) => write!(f, "delay={}", d.as_millis()),
        }
    }
}

/// A configured fault and the fraction of requests it hits: `SPEC[@RATE]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultRule {
    pub fault: Fault,
    /// Probability in `[0, 1]` that the fault hits a given request.
    pub rate: f64,
}

impl FaultRule {
    /// A rule that hits every request.
    pub fn always(fault: Fault) -> Self {
        Self { fault, rate: 1.0 }
    }
}

impl FromStr for FaultRule {
    type Err = FaultParseError;

    /// `SPEC` (rate 1) or `SPEC@RATE` with RATE a fraction in `[0, 1]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (spec, rate) = match s.rsplit_once('@') {
            Some((spec, rate)) => {
                let rate: f64 = number(s, rate)?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err(FaultParseError(format!(
                        "invalid fault `{s}`: the rate must be a fraction in [0, 1]"
                    )));
                }
                (spec, rate)
            }
            None => (s, 1.0),
        };
        Ok(Self {
            fault: spec.parse()?,
            rate,
        })
    }
}

impl fmt::Display for FaultRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.fault, self.rate)
    }
}

/// Reads an `x-sim-fault` header value: a fault `SPEC`, or `none` for no fault (which also
/// overrides the configured rules).
pub fn parse_header(value: &str) -> Result<Option<Fault>, FaultParseError> {
    if value.trim().eq_ignore_ascii_case("none") {
        Ok(None)
    } else {
        value.parse().map(Some)
    }
}

/// Draws the configured rules in order; the first that hits applies. Every rule draws one
/// number until one hits, so the draws are repeatable for a seeded `rng`.
pub fn draw(rules: &[FaultRule], rng: &mut impl Rng) -> Option<Fault> {
    rules
        .iter()
        .find(|rule| rule.rate >= 1.0 || rng.random::<f64>() < rule.rate)
        .map(|rule| rule.fault)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn specs_parse_and_print_back() {
        for (spec, fault) in [
            ("status=503", Fault::Status(503)),
            ("hang", Fault::Hang),
            ("hang-body", Fault::HangBody),
            ("stall-after=3", Fault::StallAfter(3)),
            ("drop-after=0", Fault::DropAfter(0)),
            ("delay=250", Fault::Delay(Duration::from_millis(250))),
        ] {
            assert_eq!(spec.parse::<Fault>(), Ok(fault));
            assert_eq!(fault.to_string(), spec);
        }
        assert_eq!(" status = 429 ".parse::<Fault>(), Ok(Fault::Status(429)));
        for bad in [
            "",
            "status",
            "status=200",
            "status=600",
            "status=abc",
            "hang=1",
            "stall-after=-1",
            "delay=1.5",
            "explode",
        ] {
            assert!(bad.parse::<Fault>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rules_take_an_optional_rate() {
        let rule: FaultRule = "status=500@0.25".parse().unwrap();
        assert_eq!(rule.fault, Fault::Status(500));
        assert_eq!(rule.rate, 0.25);
        assert_eq!("hang".parse::<FaultRule>().unwrap().rate, 1.0);
        for bad in ["hang@1.5", "hang@-0.1", "hang@x", "hang@NaN", "nope@0.5"] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn header_none_means_no_fault() {
        assert_eq!(parse_header("none"), Ok(None));
        assert_eq!(parse_header("hang"), Ok(Some(Fault::Hang)));
        assert!(parse_header("nope").is_err());
    }

    #[test]
    fn draws_follow_rates_and_order() {
        let mut rng = SmallRng::seed_from_u64(7);
        let never = FaultRule {
            fault: Fault::Hang,
            rate: 0.0,
        };
        let always = FaultRule::always(Fault::Status(503));
        assert_eq!(draw(&[never, always], &mut rng), Some(Fault::Status(503)));
        assert_eq!(draw(&[always, never], &mut rng), Some(Fault::Status(503)));
        assert_eq!(draw(&[never], &mut rng), None);
        let half = FaultRule {
            fault: Fault::Hang,
            rate: 0.5,
        };
        let hits = (0..10_000)
            .filter(|_| draw(&[half], &mut rng).is_some())
            .count();
        assert!((4_500..5_500).contains(&hits), "{hits}");
    }
}
