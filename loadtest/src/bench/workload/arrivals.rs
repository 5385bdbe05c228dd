//! The arrival schedule of an open-loop run.

use rand::rngs::SmallRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::seed::{rng_for, Stream};

/// How open-loop arrivals are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process): arrivals at random, `rate` per second on average.
    Poisson,
    /// Evenly spaced: request `i` at `i / rate`.
    Constant,
}

/// The arrival times of an open-loop run, in seconds from its start.
///
/// Poisson: the gaps are unit-rate exponential draws (from the seed only) divided by the rate,
/// so the schedules of a sweep's rates are scaled copies of one another. The first arrival
/// comes after one gap, so the number of arrivals in `[0, T)` is Poisson with mean `rate * T`.
/// Constant: request `i` at `i / rate`.
pub struct Arrivals {
    kind: Arrival,
    rate: f64,
    rng: SmallRng,
    /// Sum of the unit-rate gaps so far.
    unit_time: f64,
    index: u64,
}

impl Arrivals {
    pub fn new(kind: Arrival, rate: f64, seed: u64, stream: Stream) -> Self {
        Self {
            kind,
            rate,
            rng: rng_for(seed, Stream::Arrivals, stream as u64),
            unit_time: 0.0,
            index: 0,
        }
    }
}

impl Iterator for Arrivals {
    type Item = f64;

    fn next(&mut self) -> Option<f64> {
        let t = match self.kind {
            Arrival::Constant => self.index as f64 / self.rate,
            Arrival::Poisson => {
                let u: f64 = 1.0 - self.rng.random::<f64>(); // (0, 1]
                self.unit_time += -u.ln();
                self.unit_time / self.rate
            }
        };
        self.index += 1;
        Some(t)
    }
}
