//! Response bodies: a plain full body for responses the gateway makes, and [`ObservedBody`],
//! which passes an upstream body through frame by frame while an observer reads beside it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::accesslog::{ExchangeHooks, Finished, Observation};
use crate::endpoint::{Failure, InFlight};
use crate::gateway::Slot;
use crate::metrics::Outcome;
use crate::observe::{JsonUsageScanner, SseObserver, Usage};
use crate::protocols::Metering;
use crate::route::{ModelRoute, Variant};

pub use crate::pool::BoxError;

/// The body of every response the data listener sends.
pub enum GatewayBody {
    Full(Full<Bytes>),
    Observed(Box<ObservedBody>),
}

impl GatewayBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        GatewayBody::Full(Full::new(b.into()))
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            GatewayBody::Full(f) => Pin::new(f).poll_frame(cx).map_err(|e| match e {}),
            GatewayBody::Observed(o) => Pin::new(o.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Full(f) => f.is_end_stream(),
            GatewayBody::Observed(o) => o.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Full(f) => f.size_hint(),
            GatewayBody::Observed(o) if o.first.is_none() && !o.sse => o.inner.size_hint(),
            GatewayBody::Observed(_) => SizeHint::default(),
        }
    }
}

/// A request that was sent to an endpoint. Records its metrics exactly once, when it ends;
/// dropped before that, it counts as cancelled by the client. Holds the endpoint's in-flight
/// guard until then.
pub struct Exchange {
    route: Arc<ModelRoute>,
    variant: usize,
    /// Position in the variant's members.
    member: usize,
    /// A shadow copy: measured under the shadow metrics, and not a health signal.
    shadow: bool,
    guard: Option<InFlight>,
    start: Instant,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    token_events: u64,
    usage: Option<Usage>,
    /// Time from sending the request to the response head.
    ttfb: Option<Duration>,
    /// The request's place in the listener's in-flight limit.
    slot: Option<Slot>,
    finished: bool,
    /// The access log's and the trace's record, and the overhead's timestamps.
    hooks: ExchangeHooks,
    /// Which events and usage fields the response's observer reads.
    metering: Metering,
    /// Admission's queue to wake on release and rate-limit charge to settle.
    admission: crate::admission::Ticket,
    /// The upstream connection, given back to its pool when the response passed whole; else
    /// dropped (closed) with the exchange.
    conn: Option<crate::pool::Conn>,
}

impl Exchange {
    pub fn new(
        route: Arc<ModelRoute>,
        variant: usize,
        member: usize,
        guard: InFlight,
        start: Instant,
    ) -> Self {
        Exchange {
            route,
            variant,
            member,
            shadow: false,
            guard: Some(guard),
            start,
            first_token: None,
            last_token: None,
            token_events: 0,
            usage: None,
            ttfb: None,
            slot: None,
            finished: false,
            hooks: ExchangeHooks::default(),
            metering: Metering::OpenAi,
            admission: Default::default(),
            conn: None,
        }
    }

    /// Holds the attempt's upstream connection until its response has passed.
    pub fn keep_conn(&mut self, conn: crate::pool::Conn) {
        self.conn = Some(conn);
    }

    /// The response passed whole: its connection goes back to the pool.
    fn release_conn(&mut self) {
        if let Some(c) = self.conn.take() {
            c.release();
        }
    }

    /// Sets how the response is metered (default: OpenAI chat and completions).
    pub fn set_metering(&mut self, metering: Metering) {
        self.metering = metering;
    }

    /// The access log's and the trace's record, and the overhead's timestamps.
    pub fn hooks(&mut self) -> &mut ExchangeHooks {
        &mut self.hooks
    }

    /// Takes the request's record back (for a retry or an error answered by the gateway),
    /// noting the current attempt's failure in it.
    pub fn take_obs(&mut self, failed: Outcome) -> Option<Box<Observation>> {
        let mut obs = self.hooks.obs.take()?;
        obs.attempt_failed(failed.as_str());
        Some(obs)
    }

    /// Keeps the listener slot until the request ends.
    pub fn hold(&mut self, slot: Option<Slot>) {
        self.slot = slot;
    }

    pub fn release_slot(&mut self) -> Option<Slot> {
        self.slot.take()
    }

    /// Admission's part of the request: set before the attempt, its charge taken back for a
    /// retry.
    pub fn admission(&mut self) -> &mut crate::admission::Ticket {
        &mut self.admission
    }

    pub fn set_ttfb(&mut self, ttfb: Duration) {
        self.ttfb = Some(ttfb);
    }

    /// Ends a failed attempt that will be retried elsewhere: the endpoint's failure is
    /// recorded and it is released, but the request is not counted (its last attempt will be).
    pub fn abandon(&mut self, failure: Option<Failure>) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.guard = None;
        self.slot = None;
        self.admission.released();
        if let (Some(f), false) = (failure, self.shadow) {
            self.variant()
                .backend
                .on_failure(self.endpoint(), f, Instant::now());
        }
    }

    /// Marks this exchange as a shadow copy.
    pub fn set_shadow(&mut self) {
        self.shadow = true;
    }

    pub fn variant(&self) -> &Variant {
        &self.route.variants[self.variant]
    }

    /// The backend index of the endpoint.
    pub fn endpoint(&self) -> usize {
        self.variant().members[self.member]
    }

    /// A data frame of `len` bytes goes to the client: counts its bytes and, for the first,
    /// records the gateway's overhead.
    fn client_frame(&mut self, len: usize, now: Instant) {
        self.hooks.bytes_out += len as u64;
        if self.shadow {
            return;
        }
        if let Some(secs) = self.hooks.client_first(now) {
            if let Some(m) = self.route.variants[self.variant].metrics.get(self.member) {
                m.overhead(secs);
            }
        }
    }

    fn tokens(&mut self, events: u32, now: Instant) {
        if events == 0 {
            return;
        }
        self.first_token.get_or_insert(now);
        self.last_token = Some(now);
        self.token_events += u64::from(events);
    }

    /// Records the request's metrics and releases the endpoint.
    pub fn finish(&mut self, outcome: Outcome) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.guard = None;
        self.slot = None;
        let success = outcome == Outcome::Success;
        self.admission
            .finish(self.usage, self.token_events, success);
        let endpoint = self.endpoint();
        let variant = &self.route.variants[self.variant];
        let backend = &variant.backend;
        match outcome.failure() {
            _ if self.shadow => {}
            Some(f) => {
                backend.on_failure(endpoint, f, Instant::now());
            }
            None if outcome.is_success() => {
                if let Some(ep) = backend.endpoints.get(endpoint) {
                    ep.state
                        .record_success(self.ttfb.unwrap_or_else(|| self.start.elapsed()));
                }
            }
            None => {}
        }
        if let Some(obs) = self.hooks.obs.take() {
            obs.finish(self.finished_record(outcome));
        }
        let handles = if self.shadow {
            &variant.shadow_metrics
        } else {
            &variant.metrics
        };
        let Some(m) = handles.get(self.member) else {
            return;
        };
        m.count(outcome);
        m.duration(self.start.elapsed().as_secs_f64());
        let output = self
            .usage
            .and_then(|u| u.completion_tokens)
            .unwrap_or(self.token_events);
        m.tokens(self.usage.and_then(|u| u.prompt_tokens), output);
        m.bytes(self.hooks.bytes_in, self.hooks.bytes_out);
        if let (Some(first), Some(last)) = (self.first_token, self.last_token) {
            m.ttft((first - self.start).as_secs_f64());
            if output >= 2 {
                m.tpot((last - first).as_secs_f64() / (output - 1) as f64);
            }
        }
    }
}

impl Exchange {
    /// The request's end as the access log and the trace see it.
    fn finished_record(&self, outcome: Outcome) -> Finished {
        let output = self
            .usage
            .and_then(|u| u.completion_tokens)
            .or((self.token_events > 0).then_some(self.token_events));
        let ttft = self.first_token.map(|f| (f - self.start).as_secs_f64());
        let tpot = match (self.first_token, self.last_token, output) {
            (Some(f), Some(l), Some(n)) if n >= 2 => Some((l - f).as_secs_f64() / (n - 1) as f64),
            _ => None,
        };
        Finished {
            status: self.hooks.status.map_or(0, |s| s.as_u16()),
            outcome: outcome.as_str(),
            success: outcome.is_success(),
            error: None,
            first_token: self.first_token,
            ttft,
            tpot,
            input_tokens: self.usage.and_then(|u| u.prompt_tokens),
            output_tokens: output,
            bytes_out: self.hooks.bytes_out,
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.finish(Outcome::ClientCancelled);
    }
}

/// What reads the body as it passes.
pub enum Observer {
    Sse(SseObserver),
    Json(JsonUsageScanner),
    /// A protocol that carries no tokens (KServe v2, ComfyUI, path routes): nothing is read.
    Untokenized,
}

impl Observer {
    fn observe(&mut self, data: &[u8]) -> u32 {
        match self {
            Observer::Sse(o) => o.observe(data).token_events,
            Observer::Json(j) => {
                j.observe(data);
                0
            }
            Observer::Untokenized => 0,
        }
    }

    fn usage(&self) -> Option<Usage> {
        match self {
            Observer::Sse(o) => o.usage(),
            Observer::Json(j) => j.usage,
            Observer::Untokenized => None,
        }
    }
}

/// An upstream response body on its way to the client, frame by frame, unbuffered.
pub struct ObservedBody {
    inner: Incoming,
    /// The first frame, read before the response was committed to the client.
    first: Option<Frame<Bytes>>,
    observer: Observer,
    exchange: Exchange,
    status: StatusCode,
    sse: bool,
    idle: Duration,
    total_deadline: Instant,
    /// When the last frame arrived (or the body was made): the idle deadline counts from it.
    last: Instant,
    /// One timer for both deadlines. Never later than the earlier of them; a frame does not
    /// move it: when it fires before the idle deadline (frames came since it was set) it is
    /// set again, so that a stream of frames costs no timer work per frame.
    timer: Pin<Box<Sleep>>,
    done: bool,
}

impl ObservedBody {
    /// `timer` may be the attempt's, at any deadline: it is moved to the idle or total
    /// deadline when later.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        inner: Incoming,
        first: Option<Frame<Bytes>>,
        sse: bool,
        exchange: Exchange,
        status: StatusCode,
        idle: Duration,
        total_deadline: Instant,
        mut timer: Pin<Box<Sleep>>,
    ) -> Self {
        let observer = if exchange.metering == Metering::Untokenized {
            Observer::Untokenized
        } else if sse && exchange.metering == Metering::Responses {
            Observer::Sse(SseObserver::responses())
        } else if sse {
            Observer::Sse(SseObserver::default())
        } else {
            Observer::Json(JsonUsageScanner::default())
        };
        let mut exchange = exchange;
        let now = Instant::now();
        exchange.hooks.status = Some(status);
        exchange.hooks.upstream_first(now);
        let due = (now + idle).min(total_deadline);
        if timer.deadline() > due {
            timer.as_mut().reset(due);
        }
        let mut body = ObservedBody {
            inner,
            first,
            observer,
            exchange,
            status,
            sse,
            idle,
            total_deadline,
            last: now,
            timer,
            done: false,
        };
        // An empty body (KServe's `ready`, a 204) ends here: with a known length of 0 the
        // server may never poll it, and it would count as cancelled when dropped.
        if body.first.is_none() && body.inner.is_end_stream() {
            body.exchange.release_conn();
            body.end(Outcome::for_status(status));
        }
        body
    }

    fn pass(&mut self, frame: Frame<Bytes>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(data) = frame.data_ref() {
            let events = self.observer.observe(data);
            let now = Instant::now();
            self.exchange.client_frame(data.len(), now);
            self.exchange.tokens(events, now);
            self.last = now;
        }
        // A body of known length may be dropped by the server as soon as its last byte is
        // written, without being polled to its end: finish here when nothing is left.
        if self.first.is_none() && self.inner.is_end_stream() {
            self.exchange.release_conn();
            self.end(Outcome::for_status(self.status));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    /// Records the stream's usage and finishes the exchange with `outcome`.
    fn end(&mut self, outcome: Outcome) {
        self.done = true;
        self.exchange.usage = self.observer.usage();
        self.exchange.finish(outcome);
    }

    /// Ends the body after a failure. An event stream gets a final SSE error event (the client
    /// already has a 200); any other body ends with an error, which aborts the response.
    fn fail(
        &mut self,
        outcome: Outcome,
        code: &'static str,
        message: &str,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.end(outcome);
        if self.sse {
            Poll::Ready(Some(Ok(Frame::data(sse_error_event(code, message)))))
        } else {
            Poll::Ready(Some(Err(message.to_owned().into())))
        }
    }
}

/// `data: {"error":{...}}` followed by a blank line: how a stream that fails after it started
/// ends.
pub fn sse_error_event(code: &str, message: &str) -> Bytes {
    let error =
        infergate_wire::openai::ApiError::new(code, message, infergate_wire::openai::SERVER_ERROR);
    Bytes::from(error.sse_event())
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(f) = this.first.take() {
            return this.pass(f);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => this.pass(frame),
            Poll::Ready(Some(Err(e))) => this.fail(
                Outcome::UpstreamError,
                "upstream_error",
                &format!("upstream failed mid-response: {e}"),
            ),
            Poll::Ready(None) => {
                this.exchange.release_conn();
                this.end(Outcome::for_status(this.status));
                Poll::Ready(None)
            }
            Poll::Pending => {
                while this.timer.as_mut().poll(cx).is_ready() {
                    // Frames came since the timer was set: wait for the idle deadline they moved.
                    let now = Instant::now();
                    let due = (this.last + this.idle).min(this.total_deadline);
                    if now < due {
                        this.timer.as_mut().reset(due);
                        continue;
                    }
                    if now >= this.total_deadline {
                        return this.fail(
                            Outcome::TimeoutTotal,
                            "upstream_timeout",
                            "upstream response exceeded the total timeout",
                        );
                    }
                    return this.fail(
                        Outcome::TimeoutIdle,
                        "upstream_stalled",
                        "upstream sent nothing within the idle timeout",
                    );
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

impl Drop for ObservedBody {
    fn drop(&mut self) {
        if !self.done {
            self.exchange.usage = self.observer.usage();
        }
    }
}
