//! The workload: the body of each request of a run.

use std::sync::Arc;

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::bench::spec::Dist;

use super::api::Api;
use super::body::{join_messages, Body, Messages, StreamOptions, UserMessage};
use super::dataset::{Dataset, Prompt};
use super::seed::{fnv1a, rng_for, Stream};
use super::words::WORDS;

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
