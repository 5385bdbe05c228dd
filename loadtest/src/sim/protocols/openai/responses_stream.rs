//! The SSE events of a streamed `/v1/responses`, released as the engine produces tokens:
//!
//! | event                                   | sent                         |
//! |-----------------------------------------|------------------------------|
//! | `response.created`, `response.in_progress` | at once                   |
//! | `response.output_item.added`, `response.content_part.added` | with the first token |
//! | `response.output_text.delta`            | per token                    |
//! | `response.output_text.done`, `response.content_part.done`, `response.output_item.done`, `response.completed` (with `usage`) | with the last token |

use std::collections::VecDeque;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::sim::body::EventSource;
use crate::sim::engine::{Run, Tick};
use crate::sim::inflight::InFlight;
use crate::sim::stream::dropped;
use crate::sim::words::{output_text, token_text};

use super::response_shape::Shape;

/// The events of one streamed response.
pub struct ResponsesStream {
    shape: Shape,
    run: Run,
    ready: VecDeque<Bytes>,
    sequence: u64,
    ended: bool,
    _in_flight: InFlight,
}

impl ResponsesStream {
    pub fn new(shape: Shape, run: Run, in_flight: InFlight) -> Self {
        let mut stream = Self {
            shape,
            run,
            ready: VecDeque::new(),
            sequence: 0,
            ended: false,
            _in_flight: in_flight,
        };
        let created = stream.shape.object(None);
        stream.push("response.created", json!({"response": created}));
        let progress = stream.shape.object(None);
        stream.push("response.in_progress", json!({"response": progress}));
        stream
    }

    /// Queues one event: `event: <kind>` and its JSON, with `type` and `sequence_number`.
    fn push(&mut self, kind: &str, mut data: Value) {
        if let Some(map) = data.as_object_mut() {
            map.insert("type".into(), Value::from(kind));
            map.insert("sequence_number".into(), Value::from(self.sequence));
        }
        self.sequence += 1;
        self.ready
            .push_back(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    }

    fn token(&mut self, index: u32, last: bool) {
        let item_id = self.shape.item_id.clone();
        let at = |extra: Value| {
            let mut base = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
            if let (Some(map), Value::Object(extra)) = (base.as_object_mut(), extra) {
                map.extend(extra);
            }
            base
        };
        if index == 0 {
            let item = self.shape.message("", "in_progress");
            self.push(
                "response.output_item.added",
                json!({"output_index": 0, "item": item}),
            );
            let part = json!({"type": "output_text", "text": "", "annotations": []});
            self.push("response.content_part.added", at(json!({ "part": part })));
        }
        self.push(
            "response.output_text.delta",
            at(json!({"delta": token_text(index), "logprobs": []})),
        );
        if last {
            let text = output_text(self.shape.output_tokens);
            self.push(
                "response.output_text.done",
                at(json!({"text": text, "logprobs": []})),
            );
            let part = json!({"type": "output_text", "text": text, "annotations": []});
            self.push("response.content_part.done", at(json!({ "part": part })));
            let item = self.shape.message(&text, "completed");
            self.push(
                "response.output_item.done",
                json!({"output_index": 0, "item": item}),
            );
            let done = self.shape.object(Some(&text));
            self.push("response.completed", json!({ "response": done }));
        }
    }
}

impl EventSource for ResponsesStream {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<std::io::Result<Bytes>>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match self.run.poll_tick(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Tick::Token { index, last }) => self.token(index, last),
                Poll::Ready(Tick::Done) => self.ended = true,
                Poll::Ready(Tick::Aborted) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(dropped())));
                }
            }
        }
    }

    fn is_finished(&self) -> bool {
        self.ended && self.ready.is_empty()
    }
}
