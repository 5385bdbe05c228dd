//! Reads the few gauges the scheduler needs from a Prometheus text page, line by line, without
//! building anything per line: a line whose name is not one of the wanted ones is skipped at
//! its first bytes.
//!
//! A metric with several series (label sets; an engine serving several models, or one series
//! per engine process): the waiting and running counts are summed, and the KV-cache use is the
//! largest. With `model_name`, only series whose `model_name` label equals it count.

use crate::endpoint::EngineSample;
use crate::pick_policy::MetricNames;

/// The values of the wanted metrics on `page`. The queue metric and one of the KV-cache names
/// must be on it; the running count is 0 when absent. For KV use, the first name of
/// `names.kv` found on the page counts.
pub fn parse(
    page: &[u8],
    names: &MetricNames,
    model_name: Option<&str>,
) -> Result<EngineSample, String> {
    let mut queue: Option<f64> = None;
    let mut running: Option<f64> = None;
    // (rank of the name in `names.kv`, value)
    let mut kv: Option<(usize, f64)> = None;
    for line in page.split(|&b| b == b'\n') {
        let Some(&first) = line.first() else { continue };
        if first == b'#' {
            continue;
        }
        let Some((name, labels, value)) = split_line(line) else {
            continue;
        };
        let which = if name == names.queue.as_bytes() {
            0
        } else if name == names.running.as_bytes() {
            1
        } else if let Some(rank) = names.kv.iter().position(|n| n.as_bytes() == name) {
            2 + rank
        } else {
            continue;
        };
        if let Some(want) = model_name {
            if label(labels, b"model_name") != Some(want.as_bytes()) {
                continue;
            }
        }
        let Some(v) = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        match which {
            0 => *queue.get_or_insert(0.0) += v,
            1 => *running.get_or_insert(0.0) += v,
            _ => {
                let rank = which - 2;
                kv = match kv {
                    Some((r, old)) if r < rank => Some((r, old)),
                    Some((r, old)) if r == rank => Some((r, old.max(v))),
                    _ => Some((rank, v)),
                };
            }
        }
    }
    let queue = queue.ok_or_else(|| format!("no {} on the page", names.queue))?;
    let (_, kv) = kv.ok_or_else(|| {
        let kv: Vec<&str> = names.kv.iter().map(|n| &**n).collect();
        format!("none of {} on the page", kv.join(", "))
    })?;
    let count = |v: f64| v.round().clamp(0.0, f64::from(u32::MAX)) as u32;
    Ok(EngineSample {
        queue: count(queue),
        running: count(running.unwrap_or(0.0)),
        kv: kv.clamp(0.0, 1.0),
    })
}

/// `name{labels} value [timestamp]` -> (name, labels without braces, value).
fn split_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let name_end = line.iter().position(|&b| b == b'{' || b == b' ')?;
    let name = &line[..name_end];
    let (labels, rest) = if line[name_end] == b'{' {
        let close = labels_end(line, name_end + 1)?;
        (&line[name_end + 1..close], &line[close + 1..])
    } else {
        (&line[..0], &line[name_end..])
    };
    let rest = rest.trim_ascii_start();
    let value_end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(rest.len());
    Some((name, labels, &rest[..value_end]))
}

/// The index of the `}` that closes the label set starting at `i` (quotes respected).
fn labels_end(line: &[u8], mut i: usize) -> Option<usize> {
    let mut quoted = false;
    while let Some(&b) = line.get(i) {
        match b {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'}' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The raw value of label `key` in `a="x",key="y"`.
fn label<'a>(labels: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut i = 0;
    while i < labels.len() {
        let eq = i + labels[i..].iter().position(|&b| b == b'=')?;
        let k = labels[i..eq].trim_ascii();
        let start = eq + 2;
        if labels.get(eq + 1) != Some(&b'"') {
            return None;
        }
        let mut j = start;
        while j < labels.len() && labels[j] != b'"' {
            if labels[j] == b'\\' {
                j += 1;
            }
            j += 1;
        }
        if k == key {
            return labels.get(start..j);
        }
        i = j + 1;
        while i < labels.len() && (labels[i] == b',' || labels[i] == b' ') {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use infergate_config::Engine;

    const VLLM: &str = "\
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine=\"0\",model_name=\"llama\"} 3.0
vllm:num_requests_waiting{engine=\"1\",model_name=\"llama\"} 2.0
vllm:num_requests_waiting{engine=\"0\",model_name=\"other\"} 7.0
vllm:num_requests_running{engine=\"0\",model_name=\"llama\"} 4.0
vllm:num_requests_running_total{engine=\"0\",model_name=\"llama\"} 99.0
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"llama\"} 0.25
vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"llama\"} 0.5 1712345678000
vllm:gpu_cache_usage_perc{model_name=\"llama\"} 0.9
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"other\"} 0.1
vllm:time_to_first_token_seconds_bucket{le=\"0.1\",model_name=\"llama\"} 12
";

    #[test]
    fn vllm_series_are_summed_and_the_newer_kv_name_wins() {
        let names = MetricNames::preset(Engine::Vllm);
        let s = parse(VLLM.as_bytes(), &names, None).unwrap();
        assert_eq!(s.queue, 12);
        assert_eq!(s.running, 4);
        assert_eq!(s.kv, 0.5);
        let s = parse(VLLM.as_bytes(), &names, Some("llama")).unwrap();
        assert_eq!(s.queue, 5);
        let s = parse(VLLM.as_bytes(), &names, Some("other")).unwrap();
        assert_eq!((s.queue, s.running, s.kv), (7, 0, 0.1));
        assert!(parse(VLLM.as_bytes(), &names, Some("x")).is_err());
    }

    #[test]
    fn the_older_kv_name_is_read_when_alone() {
        let page = "vllm:num_requests_waiting 1\nvllm:gpu_cache_usage_perc{a=\"}\"} 0.75\n";
        let s = parse(page.as_bytes(), &MetricNames::preset(Engine::Vllm), None).unwrap();
        assert_eq!((s.queue, s.running, s.kv), (1, 0, 0.75));
    }

    #[test]
    fn sglang_and_custom_names() {
        let page = "sglang:num_queue_reqs{model_name=\"m\"} 6\n\
                    sglang:num_running_reqs{model_name=\"m\"} 2\n\
                    sglang:token_usage{model_name=\"m\"} 0.125\n";
        let s = parse(page.as_bytes(), &MetricNames::preset(Engine::Sglang), None).unwrap();
        assert_eq!((s.queue, s.running, s.kv), (6, 2, 0.125));
        let custom = MetricNames {
            queue: "tgi_queue_size".into(),
            running: "tgi_batch_current_size".into(),
            kv: vec!["kv".into()],
        };
        let page = "tgi_queue_size 4\r\nkv 2.5\r\n";
        let s = parse(page.as_bytes(), &custom, None).unwrap();
        assert_eq!((s.queue, s.running, s.kv), (4, 0, 1.0));
    }

    #[test]
    fn missing_or_garbled_metrics_are_errors() {
        let names = MetricNames::preset(Engine::Vllm);
        let e = parse(b"vllm:kv_cache_usage_perc 0.1\n", &names, None).unwrap_err();
        assert!(e.contains("vllm:num_requests_waiting"), "{e}");
        let e = parse(b"vllm:num_requests_waiting 1\n", &names, None).unwrap_err();
        assert!(e.contains("vllm:kv_cache_usage_perc"), "{e}");
        let page =
            b"vllm:num_requests_waiting NaN\nvllm:num_requests_waiting{x=\"1\" 3\n\xff\xfe\n";
        assert!(parse(page, &names, None).is_err());
    }
}
