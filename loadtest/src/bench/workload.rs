//! What is sent and when: request bodies (synthetic prompts or a dataset) and the arrival
//! schedule of an open-loop run.
//!
//! Everything random is drawn from generators seeded by the run's seed and a stream number,
//! and, for a request, its index: request `i` of a step has the same prompt and lengths
//! whatever the timing, the load or the number of threads, and the arrival schedule of a rate
//! depends on the seed only. Warm-up requests draw from their own stream, so `--warmup` does
//! not change the measured requests.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::Dist;

/// Which OpenAI API the requests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `POST /v1/chat/completions` with `messages`.
    Chat,
    /// `POST /v1/completions` with `prompt`.
    Completions,
}

impl Api {
    /// The path appended to a base URL.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        }
    }
}

/// Random streams: measured requests, warm-up requests, arrivals, dataset order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Measured = 0,
    Warmup = 1,
    Arrivals = 2,
    DatasetOrder = 3,
}

/// SplitMix64: a fast, well-mixed hash of a 64-bit value.
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The generator of `stream` (and `index` within it) for `seed`.
pub fn rng_for(seed: u64, stream: Stream, index: u64) -> SmallRng {
    let s = splitmix64(seed ^ splitmix64(((stream as u64) << 56) ^ index));
    SmallRng::seed_from_u64(s)
}

/// FNV-1a, 64 bits: the digest of request bodies.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Words of synthetic prompts. The simulator (like any whitespace tokenizer) counts one
/// token per word; a real tokenizer gives about 1–1.5 tokens per word of this list.
const WORDS: [&str; 64] = [
    "time",
    "year",
    "people",
    "way",
    "day",
    "man",
    "thing",
    "woman",
    "life",
    "child",
    "world",
    "school",
    "state",
    "family",
    "student",
    "group",
    "country",
    "problem",
    "hand",
    "part",
    "place",
    "case",
    "week",
    "company",
    "system",
    "program",
    "question",
    "work",
    "government",
    "number",
    "night",
    "point",
    "home",
    "water",
    "room",
    "mother",
    "area",
    "money",
    "story",
    "fact",
    "month",
    "lot",
    "right",
    "study",
    "book",
    "eye",
    "job",
    "word",
    "business",
    "issue",
    "side",
    "kind",
    "head",
    "house",
    "service",
    "friend",
    "father",
    "power",
    "hour",
    "game",
    "line",
    "end",
    "member",
    "law",
];

/// One line of a dataset.
#[derive(Clone, Debug)]
pub struct Entry {
    pub prompt: Prompt,
    pub max_tokens: Option<u32>,
}

#[derive(Clone, Debug)]
pub enum Prompt {
    Text(String),
    Messages(Value),
}

/// A JSONL dataset: one object per line with `prompt` (a string) or `messages` (a chat
/// message list), and optionally `max_tokens`.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<Value>>,
    #[serde(default)]
    max_tokens: Option<u32>,
}

impl Dataset {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read dataset {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("dataset {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let l: Line = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            let prompt = match (l.prompt, l.messages) {
                (Some(p), None) => Prompt::Text(p),
                (None, Some(m)) if !m.is_empty() => Prompt::Messages(Value::Array(m)),
                (Some(_), Some(_)) => {
                    return Err(format!("line {}: has both `prompt` and `messages`", n + 1))
                }
                _ => {
                    return Err(format!(
                        "line {}: needs `prompt` (a string) or `messages` (a non-empty list)",
                        n + 1
                    ))
                }
            };
            if l.max_tokens == Some(0) {
                return Err(format!("line {}: `max_tokens` must be at least 1", n + 1));
            }
            entries.push(Entry {
                prompt,
                max_tokens: l.max_tokens,
            });
        }
        if entries.is_empty() {
            return Err("no requests in the dataset".to_owned());
        }
        Ok(Self { entries })
    }
}

/// Where prompts come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Random words; the count drawn from the distribution.
    Synthetic(Dist),
    /// Dataset lines in a seeded random order, cycled.
    Dataset {
        data: Arc<Dataset>,
        order: Arc<[u32]>,
    },
}

/// Builds the request bodies.
#[derive(Clone, Debug)]
pub struct Workload {
    pub api: Api,
    pub model: String,
    pub source: Source,
    /// Output length for synthetic prompts and for dataset lines without `max_tokens`;
    /// `None` for a dataset sends no `max_tokens` for such lines.
    pub output: Option<Dist>,
    /// Send `ignore_eos: true` with every `max_tokens`.
    pub ignore_eos: bool,
    pub seed: u64,
}

/// One request, ready to send.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub body: Bytes,
    pub max_tokens: Option<u32>,
    /// FNV-1a of the body.
    pub digest: u64,
}

impl Workload {
    pub fn new(
        api: Api,
        model: String,
        input: Dist,
        output: Option<Dist>,
        dataset: Option<Dataset>,
        ignore_eos: bool,
        seed: u64,
    ) -> Self {
        let source = match dataset {
            None => Source::Synthetic(input),
            Some(mut data) => {
                if api == Api::Completions {
                    // Sent as a prompt: joined once here rather than for every request.
                    for e in &mut data.entries {
                        if let Prompt::Messages(m) = &e.prompt {
                            e.prompt = Prompt::Text(join_messages(m));
                        }
                    }
                }
                let n = u32::try_from(data.entries.len()).unwrap_or(u32::MAX);
                let mut order: Vec<u32> = (0..n).collect();
                order.shuffle(&mut rng_for(seed, Stream::DatasetOrder, 0));
                Source::Dataset {
                    data: Arc::new(data),
                    order: order.into(),
                }
            }
        };
        let output = match (&source, output) {
            (Source::Synthetic(_), None) => Some(Dist::fixed(128.0)),
            (_, o) => o,
        };
        Self {
            api,
            model,
            source,
            output,
            ignore_eos,
            seed,
        }
    }

    /// Request `index` of `stream` (measured or warm-up).
    pub fn request(&self, stream: Stream, index: u64) -> Prepared {
        let mut rng = rng_for(self.seed, stream, index);
        let owned;
        let (prompt, line_max) = match &self.source {
            Source::Synthetic(dist) => {
                let n = dist.sample(&mut rng);
                let mut p = String::with_capacity(n as usize * 7);
                for i in 0..n {
                    if i > 0 {
                        p.push(' ');
                    }
                    p.push_str(WORDS[rng.random_range(0..WORDS.len())]);
                }
                owned = Prompt::Text(p);
                (&owned, None)
            }
            Source::Dataset { data, order } => {
                let len = order.len().max(1);
                let pos = (index % len as u64) as usize;
                let line = order.get(pos).copied().unwrap_or(0) as usize;
                match data.entries.get(line) {
                    Some(e) => (&e.prompt, e.max_tokens),
                    None => {
                        owned = Prompt::Text(String::new());
                        (&owned, None)
                    }
                }
            }
        };
        // The output draw comes after the prompt draws, from the same generator.
        let max_tokens = line_max.or_else(|| self.output.map(|d| d.sample(&mut rng)));
        let joined;
        let (messages, prompt) = match (self.api, prompt) {
            (Api::Chat, Prompt::Text(p)) => (
                Some(Messages::User([UserMessage {
                    content: p,
                    role: "user",
                }])),
                None,
            ),
            (Api::Chat, Prompt::Messages(m)) => (Some(Messages::List(m)), None),
            (Api::Completions, Prompt::Text(p)) => (None, Some(p.as_str())),
            // `Workload::new` joins them once; this is for a workload built otherwise.
            (Api::Completions, Prompt::Messages(m)) => {
                joined = join_messages(m);
                (None, Some(joined.as_str()))
            }
        };
        let body = Body {
            ignore_eos: (self.ignore_eos && max_tokens.is_some()).then_some(true),
            max_tokens,
            messages,
            model: &self.model,
            prompt,
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
        };
        let body = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
        Prepared {
            digest: fnv1a(&body),
            body,
            max_tokens,
        }
    }
}

/// A request body, serialized as it is. The fields are in alphabetical order, the order in
/// which `serde_json` writes the keys of a `Value` object, so the bytes (and the workload
/// digest) are those of the same body built as a `Value`.
#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ignore_eos: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<Messages<'a>>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<&'a str>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Messages<'a> {
    /// The prompt as one user message.
    User([UserMessage<'a>; 1]),
    /// A dataset line's messages, as read.
    List(&'a Value),
}

/// Fields in alphabetical order, like [`Body`].
#[derive(Serialize)]
struct UserMessage<'a> {
    content: &'a str,
    role: &'static str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// The text contents of chat messages, one per line (for a dataset of messages sent to the
/// completions API).
fn join_messages(m: &Value) -> String {
    let mut out = String::new();
    for msg in m.as_array().into_iter().flatten() {
        let text = match msg.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            _ => continue,
        };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&text);
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn synth(seed: u64) -> Workload {
        Workload::new(
            Api::Chat,
            "demo".into(),
            Dist {
                mean: 20.0,
                stddev: 5.0,
            },
            Some(Dist {
                mean: 8.0,
                stddev: 2.0,
            }),
            None,
            true,
            seed,
        )
    }

    #[test]
    fn synthetic_requests_repeat_with_the_seed() {
        let a = synth(7);
        let b = synth(7);
        let c = synth(8);
        for i in 0..20 {
            let (x, y) = (
                a.request(Stream::Measured, i),
                b.request(Stream::Measured, i),
            );
            assert_eq!(x.body, y.body);
            assert_eq!(x.max_tokens, y.max_tokens);
        }
        assert_ne!(
            a.request(Stream::Measured, 0).body,
            c.request(Stream::Measured, 0).body
        );
        assert_ne!(
            a.request(Stream::Measured, 0).body,
            a.request(Stream::Warmup, 0).body
        );
        let v: Value = serde_json::from_slice(&a.request(Stream::Measured, 3).body).unwrap();
        assert_eq!(v["model"], "demo");
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["ignore_eos"], true);
        assert!(v["max_tokens"].as_u64().unwrap() >= 1);
        let words = v["messages"][0]["content"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count();
        assert!((1..=60).contains(&words), "{words}");
    }

    #[test]
    fn datasets() {
        let d = Dataset::parse(
            "{\"prompt\":\"a b c\",\"max_tokens\":3}\n\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n",
        )
        .unwrap();
        assert_eq!(d.entries.len(), 2);
        assert!(Dataset::parse("{\"x\":1}").is_err());
        assert!(Dataset::parse("not json").is_err());
        assert!(Dataset::parse("").is_err());
        assert!(Dataset::parse("{\"prompt\":\"a\",\"max_tokens\":0}").is_err());
        let w = Workload::new(
            Api::Completions,
            "m".into(),
            Dist::fixed(1.0),
            None,
            Some(d),
            false,
            1,
        );
        let mut seen = Vec::new();
        for i in 0..4 {
            let p = w.request(Stream::Measured, i);
            let v: Value = serde_json::from_slice(&p.body).unwrap();
            assert!(v.get("ignore_eos").is_none());
            seen.push((v["prompt"].as_str().unwrap().to_owned(), p.max_tokens));
        }
        // Cycled: lines repeat with period 2.
        assert_eq!(seen[0], seen[2]);
        assert_eq!(seen[1], seen[3]);
        assert!(seen.contains(&("a b c".to_owned(), Some(3))));
        assert!(seen.contains(&("hi".to_owned(), None)));
    }

    #[test]
    fn arrivals() {
        let c: Vec<f64> = Arrivals::new(Arrival::Constant, 4.0, 1, Stream::Measured)
            .take(3)
            .collect();
        assert_eq!(c, vec![0.0, 0.25, 0.5]);
        let rate = 100.0;
        let p: Vec<f64> = Arrivals::new(Arrival::Poisson, rate, 1, Stream::Measured)
            .take(10_000)
            .collect();
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        let mean_gap = p[p.len() - 1] / p.len() as f64;
        assert!((mean_gap - 0.01).abs() < 0.0005, "{mean_gap}");
        // The schedules of two rates are scaled copies.
        let q: Vec<f64> = Arrivals::new(Arrival::Poisson, 2.0 * rate, 1, Stream::Measured)
            .take(10)
            .collect();
        for (a, b) in p.iter().zip(&q) {
            assert!((a / 2.0 - b).abs() < 1e-12);
        }
    }
}
