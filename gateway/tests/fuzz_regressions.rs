//! Replays the fuzz targets' saved inputs through the same checks (`fuzz/src/<target>.rs`,
//! included here by path): the seeds in `fuzz/corpus/<target>/` and every input that once made
//! a target fail, in `fuzz/regressions/<target>/`. `scripts/fuzz` runs the targets themselves.
//! The warmup manifest's inputs are replayed by `control/warmup/tests/fuzz_regressions.rs`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

#[path = "../../fuzz/src/config.rs"]
mod config;
#[path = "../../fuzz/src/feed.rs"]
mod feed;
#[path = "../../fuzz/src/model.rs"]
mod model;
#[path = "../../fuzz/src/sse.rs"]
mod sse;
#[path = "../../fuzz/src/usage.rs"]
mod usage;

/// Runs `check` on every saved input of `target`; fails with each input that does not pass.
fn replay(target: &str, check: fn(&[u8]) -> Result<(), String>) {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut read = 0;
    let mut failed = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let input = std::fs::read(&path).unwrap();
            read += 1;
            if let Err(why) = check(&input) {
                failed.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert!(
        read > 0,
        "no saved inputs for {target} under {}",
        fuzz.display()
    );
    assert!(failed.is_empty(), "{target}:\n{}", failed.join("\n"));
}

#[test]
fn config_inputs() {
    replay("config", config::check);
}

#[test]
fn model_inputs() {
    replay("model", model::check);
}

#[test]
fn sse_inputs() {
    replay("sse", sse::check);
}

#[test]
fn usage_inputs() {
    replay("usage", usage::check);
}

#[test]
fn feed_inputs() {
    replay("feed", feed::check);
}
