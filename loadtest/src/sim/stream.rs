//! The SSE event sequence of a streamed completion, released on an absolute schedule.
//!
//! For a request received at `start` the events fall due at:
//!
//! | event                              | due at                      |
//! |------------------------------------|-----------------------------|
//! | role chunk (chat only)             | `start + ttft`              |
//! | token `i` (0-based)                | `start + ttft + i * itl`    |
//! | usage chunk (if `include_usage`)   | with the last token         |
//! | `data: [DONE]`                     | with the last token         |
//!
//! Deadlines are absolute, so a late poll does not push later tokens back (no drift).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use super::inflight::InFlight;
use super::response::{ChunkEncoder, Usage, DONE_EVENT};

/// The events of one streamed response, produced lazily as they fall due.
pub struct TokenStream {
    encoder: ChunkEncoder,
    first_token_at: Instant,
    itl: Duration,
    tokens: u32,
    usage: Option<Usage>,
    next: Step,
    sleep: Pin<Box<Sleep>>,
    _in_flight: InFlight,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Role,
    Token(u32),
    Usage,
    Done,
    Finished,
}

/// Timing and size of one streamed response.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// When the request was received.
    pub start: Instant,
    pub ttft: Duration,
    pub itl: Duration,
    /// Output tokens to send.
    pub tokens: u32,
}

impl Schedule {
    /// When token `index` is due; saturates instead of overflowing.
    fn token_at(first_token_at: Instant, itl: Duration, index: u32) -> Instant {
        first_token_at
            .checked_add(itl.saturating_mul(index))
            .unwrap_or(first_token_at)
    }

    /// When the last token is due: `start + ttft + (tokens - 1) * itl`. This is also when a
    /// non-streamed response is complete.
    pub fn last_token_at(&self) -> Instant {
        Self::token_at(
            self.first_token_at(),
            self.itl,
            self.tokens.saturating_sub(1),
        )
    }

    fn first_token_at(&self) -> Instant {
        self.start.checked_add(self.ttft).unwrap_or(self.start)
    }
}

impl TokenStream {
    /// Must be called inside a tokio runtime (it arms a timer). `usage` is sent before
    /// `[DONE]` when given. The stream counts in `in_flight` until dropped.
    pub fn new(
        encoder: ChunkEncoder,
        schedule: Schedule,
        usage: Option<Usage>,
        in_flight: InFlight,
    ) -> Self {
        let first_token_at = schedule.first_token_at();
        Self {
            encoder,
            first_token_at,
            itl: schedule.itl,
            tokens: schedule.tokens,
            usage,
            next: Step::Role,
            sleep: Box::pin(tokio::time::sleep_until(first_token_at)),
            _in_flight: in_flight,
        }
    }

    /// True once `[DONE]` has been produced.
    pub fn is_finished(&self) -> bool {
        self.next == Step::Finished
    }

    /// The step after token `index`, or after the role chunk when `index` is `None`.
    fn after_token(&self, index: Option<u32>) -> Step {
        let next = index.map_or(0, |i| i.saturating_add(1));
        if next < self.tokens {
            Step::Token(next)
        } else if self.usage.is_some() {
            Step::Usage
        } else {
            Step::Done
        }
    }

    fn poll_until(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }

    /// The next event once it is due; `None` after `[DONE]`.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            match self.next {
                Step::Role => {
                    ready!(self.poll_until(self.first_token_at, cx));
                    self.next = self.after_token(None);
                    if let Some(role) = self.encoder.role() {
                        return Poll::Ready(Some(role));
                    }
                }
                Step::Token(index) => {
                    let due = Schedule::token_at(self.first_token_at, self.itl, index);
                    ready!(self.poll_until(due, cx));
                    self.next = self.after_token(Some(index));
                    let last = !matches!(self.next, Step::Token(_));
                    return Poll::Ready(Some(self.encoder.token(index, last)));
                }
                Step::Usage => {
                    self.next = Step::Done;
                    if let Some(usage) = &self.usage {
                        return Poll::Ready(Some(self.encoder.usage(usage)));
                    }
                }
                Step::Done => {
                    self.next = Step::Finished;
                    return Poll::Ready(Some(Bytes::from_static(DONE_EVENT)));
                }
                Step::Finished => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::request::Api;
    use std::future::poll_fn;

    const MS: Duration = Duration::from_millis(1);

    fn stream(api: Api, tokens: u32, usage: bool) -> (TokenStream, Instant) {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            ttft: 100 * MS,
            itl: 10 * MS,
            tokens,
        };
        let usage = usage.then(|| Usage::new(3, tokens));
        let encoder = ChunkEncoder::new(
            api,
            "m".to_owned(),
            super::super::response::Stamp::new(api, false, None),
        );
        let in_flight = InFlight::new(Default::default());
        (TokenStream::new(encoder, schedule, usage, in_flight), start)
    }

    /// Every event with the (virtual) time it was released, relative to `start`.
    async fn drain(mut s: TokenStream, start: Instant) -> Vec<(Duration, String)> {
        let mut out = Vec::new();
        while let Some(event) = poll_fn(|cx| s.poll_event(cx)).await {
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
            poll_fn(|cx| s.poll_event(cx)).await.unwrap();
            assert_eq!(start.elapsed(), 135 * MS);
        }
        poll_fn(|cx| s.poll_event(cx)).await.unwrap();
        assert_eq!(start.elapsed(), 140 * MS);
    }

    #[test]
    fn last_token_time() {
        let start = Instant::now();
        let schedule = Schedule {
            start,
            ttft: 50 * MS,
            itl: 10 * MS,
            tokens: 4,
        };
        assert_eq!(schedule.last_token_at() - start, 80 * MS);
    }
}
