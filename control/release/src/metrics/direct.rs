//! Metrics read directly from every gateway's `/metrics` (admin listener) and summed.

use super::http::Http;
use super::snapshot::Snapshot;
use super::text::{parse, parse_le, Sample};
use super::{BoxFuture, MetricsSource, REQUESTS, TPOT_BUCKET, TTFT_BUCKET};

/// Scrapes `gateways` (admin base URLs) and sums their series.
pub struct Direct {
    pub http: Http,
    pub gateways: Vec<String>,
    pub timeout: std::time::Duration,
}

impl MetricsSource for Direct {
    fn read<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Result<Snapshot, String>> {
        Box::pin(async move {
            let reads = self.gateways.iter().map(|g| {
                let url = format!("{}/metrics", g.trim_end_matches('/'));
                async move { self.http.get(&url, self.timeout).await }
            });
            let mut snap = Snapshot::default();
            // Every gateway must answer: a sum over some of them would make a false window.
            for body in futures::future::join_all(reads).await {
                let body = body?;
                add_text(&mut snap, &String::from_utf8_lossy(&body), model);
            }
            Ok(snap)
        })
    }
}

/// Adds the model's series in one `/metrics` text to `snap`.
pub fn add_text(snap: &mut Snapshot, text: &str, model: &str) {
    for s in parse(text, &[REQUESTS, TTFT_BUCKET, TPOT_BUCKET]) {
        if s.label("model") != Some(model) {
            continue;
        }
        add_sample(snap, &s);
    }
}

/// Adds one sample (of the requests counter or a bucket) to `snap`.
pub fn add_sample(snap: &mut Snapshot, s: &Sample) {
    let Some(variant) = s.label("variant") else {
        return;
    };
    if s.name == REQUESTS {
        snap.add_requests(variant, s.label("outcome").unwrap_or(""), s.value);
        return;
    }
    let Some(le) = s.label("le").and_then(parse_le) else {
        return;
    };
    let v = snap.variants.entry(variant.to_owned()).or_default();
    let h = if s.name == TTFT_BUCKET {
        &mut v.ttft
    } else {
        &mut v.tpot
    };
    h.add(le, s.value);
}
