//! The id and `created` time of a response.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::sim::api::Api;

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `created` of every response in deterministic mode.
pub const DETERMINISTIC_CREATED: u64 = 1_700_000_000;

/// The id and `created` time of one response.
#[derive(Clone, Debug)]
pub struct Stamp {
    pub id: String,
    pub created: u64,
}

impl Stamp {
    /// A fresh id such as `chatcmpl-9a3b17db895b3ac7` and the current time; in deterministic
    /// mode the id is built from the request's `x-request-id` (or `0`) and `created` is fixed,
    /// so that equal requests get byte-identical responses.
    pub fn new(api: Api, deterministic: bool, request_id: Option<&str>) -> Self {
        let prefix = match api {
            Api::Chat => "chatcmpl",
            Api::Completion => "cmpl",
        };
        Stamp {
            id: response_id(prefix, deterministic, request_id),
            created: if deterministic {
                DETERMINISTIC_CREATED
            } else {
                unix_now()
            },
        }
    }
}

/// A random id with `prefix`, such as `chatcmpl-9a3b17db895b3ac7`, or in deterministic mode one
/// built from the request id (or `0`): `chatcmpl-<request id>`.
pub fn response_id(prefix: &str, deterministic: bool, request_id: Option<&str>) -> String {
    if deterministic {
        let rid: String = request_id
            .unwrap_or("0")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(64)
            .collect();
        format!("{prefix}-{rid}")
    } else {
        format!("{prefix}-{:016x}", rand::random::<u64>())
    }
}
