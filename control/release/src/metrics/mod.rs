//! Where a release's figures come from: a [`MetricsSource`] gives *cumulative* per-variant
//! figures of a model (requests, errors, TTFT and TPOT buckets); a step's window is a later
//! snapshot minus the one taken at the step's start. Two sources: the gateways' `/metrics`
//! read directly ([`Direct`]) and Prometheus ([`PromSource`]).

mod direct;
mod http;
mod prometheus;
pub mod routes;
mod snapshot;
#[cfg(test)]
mod tests;
pub mod text;

use std::future::Future;
use std::pin::Pin;

pub use direct::{add_text, Direct};
pub use http::{encode, Http};
pub use prometheus::{parse_vector, queries, PromSource};
pub use snapshot::{is_error, Histogram, Snapshot, VariantSnapshot, ERROR_OUTCOMES};

use crate::spec::Source;

pub const REQUESTS: &str = "infergate_requests_total";
pub const TTFT_BUCKET: &str = "infergate_time_to_first_token_seconds_bucket";
pub const TPOT_BUCKET: &str = "infergate_time_per_output_token_seconds_bucket";

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Gives cumulative figures of a model, per variant.
pub trait MetricsSource: Send + Sync {
    fn read<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Result<Snapshot, String>>;
}

/// The source a spec names: Prometheus when given, else the gateways.
pub fn from_spec(source: &Source, http: Http) -> Box<dyn MetricsSource> {
    let timeout = source.timeout.get();
    match &source.prometheus {
        Some(p) => Box::new(PromSource {
            http,
            url: p.url.clone(),
            timeout,
        }),
        None => Box::new(Direct {
            http,
            gateways: source.gateways.clone(),
            timeout,
        }),
    }
}
