//! Gateway component tests: the gateway library started in process (`infergate_gateway::start`)
//! in front of simulators started in process (`infergate_loadtest::sim`), driven over HTTP on
//! loopback, on tokio's paused clock.
//!
//! Time moves only when a test calls [`common::advance`]: [`common::ManualClock`] keeps tokio from
//! advancing the paused clock by itself while tasks wait on sockets. Timeouts, ejections, the
//! hold-down of a health feed and the retry budget's window are then checked at their exact
//! instants, however busy the machine is. See docs/testing.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bodies;
mod body_deadline;
mod common;
mod disconnect;
mod health_feed;
mod outlier;
mod release_feed;
mod retry_budget;
mod streaming;
mod timeouts;
