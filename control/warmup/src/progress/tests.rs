//! Tests of the progress snapshot and the rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::rate::rate;
use super::*;

#[test]
fn snapshot_serialises_flat() {
    let p = Progress::new();
    p.begin("llama", "v3");
    p.set_totals(4, 400);
    p.add_done(100);
    p.file_done();
    p.set_state(WarmupState::Fetching);
    let v = serde_json::to_value(p.snapshot()).unwrap();
    assert_eq!(v["state"], "fetching");
    assert_eq!(v["model"], "llama");
    assert_eq!(v["bytes_done"], 100);
    assert_eq!(v["bytes_total"], 400);
    assert_eq!(v["files_done"], 1);
    assert!(v.get("reason").is_none());
    p.set_state(WarmupState::Failed {
        reason: "boom".into(),
    });
    let v = serde_json::to_value(p.snapshot()).unwrap();
    assert_eq!(v["state"], "failed");
    assert_eq!(v["reason"], "boom");
    let back: ProgressSnapshot = serde_json::from_value(v).unwrap();
    assert!(!back.is_warm());
}

#[test]
fn rate_over_window() {
    let now = Instant::now();
    let mut s = VecDeque::new();
    s.push_back((now - Duration::from_secs(2), 0));
    assert_eq!(rate(&s, now, 2000), 1000);
    s.clear();
    assert_eq!(rate(&s, now, 2000), 0);
}
