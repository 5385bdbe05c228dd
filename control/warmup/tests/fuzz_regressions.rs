//! Replays the `manifest` fuzz target's saved inputs through its check (`fuzz/src/manifest.rs`,
//! included here by path): the seeds in `fuzz/corpus/manifest/` and every input that once made
//! the target fail, in `fuzz/regressions/manifest/`.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

#[path = "../../../fuzz/src/manifest.rs"]
mod manifest;

#[test]
fn manifest_inputs() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut read = 0;
    let mut failed = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join("manifest")) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            read += 1;
            if let Err(why) = manifest::check(&std::fs::read(&path).unwrap()) {
                failed.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert!(read > 0, "no saved inputs under {}", fuzz.display());
    assert!(failed.is_empty(), "manifest:\n{}", failed.join("\n"));
}
