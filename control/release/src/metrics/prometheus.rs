//! Metrics read from Prometheus: instant queries of the cumulative series summed over every
//! gateway replica, so the snapshot has the same shape as a direct read.

use super::http::{encode, Http};
use super::snapshot::Snapshot;
use super::text::{parse_le, Sample};
use super::{direct::add_sample, BoxFuture, MetricsSource, REQUESTS, TPOT_BUCKET, TTFT_BUCKET};

/// Reads from the Prometheus at `url`.
pub struct PromSource {
    pub http: Http,
    pub url: String,
    pub timeout: std::time::Duration,
}

/// The three queries for `model`: metric name, the `sum by` labels, the query.
pub fn queries(model: &str) -> Vec<(&'static str, String)> {
    let m = model.replace('\\', "\\\\").replace('"', "\\\"");
    vec![
        (
            REQUESTS,
            format!("sum by (variant, outcome) ({REQUESTS}{{model=\"{m}\"}})"),
        ),
        (
            TTFT_BUCKET,
            format!("sum by (variant, le) ({TTFT_BUCKET}{{model=\"{m}\"}})"),
        ),
        (
            TPOT_BUCKET,
            format!("sum by (variant, le) ({TPOT_BUCKET}{{model=\"{m}\"}})"),
        ),
    ]
}

impl MetricsSource for PromSource {
    fn read<'a>(&'a self, model: &'a str) -> BoxFuture<'a, Result<Snapshot, String>> {
        Box::pin(async move {
            let mut snap = Snapshot::default();
            for (name, q) in queries(model) {
                let url = format!(
                    "{}/api/v1/query?query={}",
                    self.url.trim_end_matches('/'),
                    encode(&q)
                );
                let body = self.http.get(&url, self.timeout).await?;
                for s in parse_vector(&body, name).map_err(|e| format!("GET {url}: {e}"))? {
                    add_sample(&mut snap, &s);
                }
            }
            Ok(snap)
        })
    }
}

/// The samples of an instant query's answer (`resultType` `vector`), named `name`.
pub fn parse_vector(body: &[u8], name: &str) -> Result<Vec<Sample>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "query failed: {}",
            v["error"].as_str().unwrap_or("no error given")
        ));
    }
    let result = v["data"]["result"]
        .as_array()
        .ok_or("the answer has no data.result")?;
    let mut out = Vec::with_capacity(result.len());
    for r in result {
        let labels: Vec<(String, String)> = r["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        let Some(value) = r["value"][1].as_str().and_then(parse_le) else {
            continue;
        };
        out.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    Ok(out)
}
