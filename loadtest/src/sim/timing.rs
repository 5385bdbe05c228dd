//! Random latencies: normal draws clamped around their mean, like llm-d-inference-sim.

use std::time::Duration;

use rand::Rng;

use crate::random::standard_normal;

/// A latency with a mean and a standard deviation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    pub mean: Duration,
    pub stddev: Duration,
}

/// Draws are clamped to `[LOW * mean, HIGH * mean]`.
const LOW: f64 = 0.3;
const HIGH: f64 = 1.7;

impl Latency {
    pub fn new(mean: Duration, stddev: Duration) -> Self {
        Self { mean, stddev }
    }

    /// One draw: exactly `mean` when `stddev` is zero, else a normal sample clamped to
    /// `[0.3 * mean, 1.7 * mean]`.
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        if self.stddev.is_zero() {
            return self.mean;
        }
        let mean = self.mean.as_secs_f64();
        let value = mean + self.stddev.as_secs_f64() * standard_normal(rng);
        let clamped = value.clamp(LOW * mean, HIGH * mean);
        Duration::try_from_secs_f64(clamped).unwrap_or(self.mean)
    }
}

/// Prefill time of a prompt: `per_1k_tokens * prompt_tokens / 1000`, saturating.
pub fn prefill(per_1k_tokens: Duration, prompt_tokens: u64) -> Duration {
    if per_1k_tokens.is_zero() {
        return Duration::ZERO;
    }
    let secs = per_1k_tokens.as_secs_f64() * prompt_tokens as f64 / 1000.0;
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn zero_stddev_is_exact() {
        let mut rng = SmallRng::seed_from_u64(1);
        let l = Latency::new(200 * MS, Duration::ZERO);
        assert!((0..100).all(|_| l.sample(&mut rng) == 200 * MS));
    }

    #[test]
    fn draws_have_the_mean_and_spread_and_stay_clamped() {
        let mut rng = SmallRng::seed_from_u64(42);
        let l = Latency::new(200 * MS, 40 * MS);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| l.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        let n = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let sd = (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!((mean - 200.0).abs() < 2.0, "{mean}");
        assert!((sd - 40.0).abs() < 2.0, "{sd}");

        // A wide spread is clamped to [0.3, 1.7] x mean.
        let wide = Latency::new(100 * MS, 200 * MS);
        for _ in 0..10_000 {
            let d = wide.sample(&mut rng);
            assert!(d >= 30 * MS && d <= 170 * MS, "{d:?}");
        }
    }

    #[test]
    fn seeded_draws_repeat() {
        let l = Latency::new(20 * MS, 5 * MS);
        let a: Vec<Duration> = {
            let mut rng = SmallRng::seed_from_u64(9);
            (0..50).map(|_| l.sample(&mut rng)).collect()
        };
        let mut rng = SmallRng::seed_from_u64(9);
        let b: Vec<Duration> = (0..50).map(|_| l.sample(&mut rng)).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn prefill_scales_with_prompt_length() {
        assert_eq!(prefill(100 * MS, 2000), 200 * MS);
        assert_eq!(prefill(Duration::ZERO, 2000), Duration::ZERO);
        assert_eq!(prefill(10 * MS, 0), Duration::ZERO);
        assert_eq!(prefill(Duration::MAX, u64::MAX), Duration::MAX);
    }
}
