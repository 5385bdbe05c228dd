//! The SSE event sequence of a streamed completion, released as the engine produces tokens.
//!
//! | event                              | sent                                   |
//! |------------------------------------|----------------------------------------|
//! | role chunk (chat only)             | with the first token                   |
//! | token `i` (0-based)                | when the engine produces it            |
//! | usage chunk (if `include_usage`)   | with the last token                    |
//! | `data: [DONE]`                     | with the last token                    |
//!
//! Timing (queueing, time to first token, inter-token latency) is the engine's, see
//! [`super::engine`]. A `drop` cut ends the stream with an error, which makes hyper abort
//! the connection (an incomplete body); a stall leaves it open and silent.

use std::task::{Context, Poll};

use bytes::Bytes;

use super::engine::{Run, Tick};
use super::inflight::InFlight;
use super::response::{ChunkEncoder, Usage, DONE_EVENT};

/// The events of one streamed response, produced lazily as they fall due.
pub struct TokenStream {
    encoder: ChunkEncoder,
    usage: Option<Usage>,
    run: Run,
    next: Step,
    _in_flight: InFlight,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for the engine.
    Run,
    /// The role chunk went out; this token follows it at once.
    Token {
        index: u32,
        last: bool,
    },
    Usage,
    Done,
    Finished,
}

/// The error a response ends with when a fault drops its connection.
pub(super) fn dropped() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "infergate-sim: simulated connection drop",
    )
}

impl TokenStream {
    /// `usage` is sent before `[DONE]` when given. The stream counts in `in_flight` until
    /// dropped; dropping it drops `run` (leaving the queue or freeing the slot).
    pub fn new(encoder: ChunkEncoder, run: Run, usage: Option<Usage>, in_flight: InFlight) -> Self {
        Self {
            encoder,
            usage,
            run,
            next: Step::Run,
            _in_flight: in_flight,
        }
    }

    /// True once `[DONE]` has been produced, or the stream was dropped by a fault.
    pub fn is_finished(&self) -> bool {
        self.next == Step::Finished
    }

    /// The next event once it is due; `None` after `[DONE]`; an error when a fault drops
    /// the stream.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        loop {
            match self.next {
                Step::Run => match self.run.poll_tick(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Tick::Token { index, last }) => {
                        if index == 0 {
                            if let Some(role) = self.encoder.role() {
                                self.next = Step::Token { index, last };
                                return Poll::Ready(Some(Ok(role)));
                            }
                        }
                        return Poll::Ready(Some(Ok(self.encoder.token(index, last))));
                    }
                    Poll::Ready(Tick::Done) => {
                        self.next = if self.usage.is_some() {
                            Step::Usage
                        } else {
                            Step::Done
                        };
                    }
                    Poll::Ready(Tick::Aborted) => {
                        self.next = Step::Finished;
                        return Poll::Ready(Some(Err(dropped())));
                    }
                },
                Step::Token { index, last } => {
                    self.next = Step::Run;
                    return Poll::Ready(Some(Ok(self.encoder.token(index, last))));
                }
                Step::Usage => {
                    self.next = Step::Done;
                    if let Some(usage) = &self.usage {
                        return Poll::Ready(Some(Ok(self.encoder.usage(usage))));
                    }
                }
                Step::Done => {
                    self.next = Step::Finished;
                    return Poll::Ready(Some(Ok(Bytes::from_static(DONE_EVENT))));
                }
                Step::Finished => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::api::Api;
    use crate::sim::engine::{Cut, Engine, EngineConfig, Job};
    use crate::sim::metrics::Metrics;
    use crate::sim::timing::Latency;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::time::Instant;

    const MS: Duration = Duration::from_millis(1);

    fn stream_with(api: Api, tokens: u32, usage: bool, cut: Option<Cut>) -> (TokenStream, Instant) {
        let cfg = EngineConfig {
            max_running: None,
            max_waiting: 0,
            ttft: Latency::new(100 * MS, Duration::ZERO),
            itl: Latency::new(10 * MS, Duration::ZERO),
            kv: None,
            prefill_per_1k_tokens: Duration::ZERO,
        };
        let metrics = Arc::new(Metrics::new("m", 1000).unwrap());
        let engine = Arc::new(Engine::new(cfg, metrics).unwrap());
        let start = Instant::now();
        let run = engine
            .submit(Job {
                prefix_hashes: Vec::new(),
                arrival: start,
                prompt_tokens: 3,
                tokens,
                cut,
                rng: SmallRng::seed_from_u64(0),
            })
            .unwrap();
        let usage = usage.then(|| Usage::new(3, tokens));
        let encoder = ChunkEncoder::new(
            api,
            "m".to_owned(),
            super::super::response::Stamp::new(api, false, None),
        );
        let in_flight = InFlight::new(Default::default());
        (TokenStream::new(encoder, run, usage, in_flight), start)
    }

    fn stream(api: Api, tokens: u32, usage: bool) -> (TokenStream, Instant) {
        stream_with(api, tokens, usage, None)
    }

    /// Every event with the (virtual) time it was released, relative to `start`.
    async fn drain(mut s: TokenStream, start: Instant) -> Vec<(Duration, String)> {
        let mut out = Vec::new();
        while let Some(event) = poll_fn(|cx| s.poll_event(cx)).await {
            let event = event.unwrap();
            out.push((start.elapsed(), String::from_utf8(event.to_vec()).unwrap()));
        }
        assert!(s.is_finished());
        out
    }

    #[tokio::test(start_paused = true)]
    async fn chat_events_fall_due_on_schedule() {
        let (s, start) = stream(Api::Chat, 3, true);
        let events = drain(s, start).await;
        let times: Vec<Duration> = events.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            times,
            vec![100 * MS, 100 * MS, 110 * MS, 120 * MS, 120 * MS, 120 * MS]
        );
        assert!(events[0].1.contains(r#""role":"assistant""#));
        assert!(events[3].1.contains(r#""finish_reason":"length""#));
        assert!(events[2].1.contains(r#""finish_reason":null"#));
        assert!(events[4].1.contains(r#""choices":[]"#));
        assert_eq!(events[5].1, "data: [DONE]\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn completions_have_no_role_chunk_and_usage_is_optional() {
        let (s, start) = stream(Api::Completion, 2, false);
        let events = drain(s, start).await;
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].0, 100 * MS);
        assert!(events[0].1.contains(r#""text":" the""#));
        assert!(events[1].1.contains(r#""finish_reason":"length""#));
        assert_eq!(events[2].1, "data: [DONE]\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_reader_does_not_shift_later_tokens() {
        let (mut s, start) = stream(Api::Completion, 6, false);
        let first = poll_fn(|cx| s.poll_event(cx)).await;
        assert!(first.is_some());
        // The reader stalls for 35 ms: tokens 1..=3 (due at 110, 120, 130) are overdue.
        tokio::time::sleep(35 * MS).await;
        for _ in 1..=3 {
            poll_fn(|cx| s.poll_event(cx)).await.unwrap().unwrap();
            assert_eq!(start.elapsed(), 135 * MS);
        }
        poll_fn(|cx| s.poll_event(cx)).await.unwrap().unwrap();
        assert_eq!(start.elapsed(), 140 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn a_drop_cut_ends_the_stream_with_an_error_after_n_tokens() {
        let cut = Cut {
            after: 2,
            drop: true,
        };
        let (mut s, start) = stream_with(Api::Chat, 5, true, Some(cut));
        let mut ok = 0;
        let err = loop {
            match poll_fn(|cx| s.poll_event(cx)).await.unwrap() {
                Ok(_) => ok += 1,
                Err(err) => break err,
            }
        };
        assert_eq!(ok, 3, "role + 2 tokens");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
        assert_eq!(start.elapsed(), 120 * MS);
        assert!(poll_fn(|cx| s.poll_event(cx)).await.is_none());
    }
}
