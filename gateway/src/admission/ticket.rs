//! Admission's part of a request in flight, carried by its exchange (`body::Exchange`).

use std::sync::Arc;

use crate::observe::Usage;

use super::charge::Charge;
use super::queue::Queue;

/// The backend's queue to wake when the request releases its endpoint, and the rate-limit
/// charge to settle when its response ends. Empty without admission.
#[derive(Default)]
pub struct Ticket {
    wake: Option<Arc<Queue>>,
    charge: Option<Charge>,
}

impl Ticket {
    pub fn new(wake: Option<Arc<Queue>>, charge: Option<Charge>) -> Ticket {
        Ticket { wake, charge }
    }

    /// The charge, for the next attempt on another endpoint.
    pub fn take_charge(&mut self) -> Option<Charge> {
        self.charge.take()
    }

    /// The request's endpoint place was released: the first waiter that can take it gets it.
    pub fn released(&self) {
        if let Some(q) = &self.wake {
            q.released();
        }
    }

    /// The request ended (its endpoint place already released): wakes the queue and settles
    /// the charge on `usage` (else on the `events` counted), `success` when it ended well.
    pub fn finish(&mut self, usage: Option<Usage>, events: u64, success: bool) {
        self.released();
        if let Some(c) = self.charge.take() {
            let (prompt, completion) =
                usage.map_or((None, None), |u| (u.prompt_tokens, u.completion_tokens));
            c.settle(prompt, completion, events, success);
        }
    }
}
