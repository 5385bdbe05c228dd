//! Warmup from a local (or NFS) directory, and `write_manifest`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use infergate_warmup::testing::{run_with_hooks, Hooks};
use infergate_warmup::{
    run, write_manifest, CancelToken, Manifest, Progress, Source, Tuning, WarmupError,
};

const MIB: usize = 1024 * 1024;

fn write_tree(root: &std::path::Path, files: &BTreeMap<String, Bytes>) {
    for (path, data) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

fn model() -> BTreeMap<String, Bytes> {
    model_files(&[
        ("model-00001-of-00002.safetensors", 2 * MIB + 777),
        ("model-00002-of-00002.safetensors", MIB),
        ("config.json", 321),
        ("sub/dir/tokenizer.model", 50_000),
    ])
}

#[test]
fn write_manifest_lists_hashes_and_skips_hidden_and_temporary_files() {
    let files = model();
    let src = TempDir::new("manifest");
    write_tree(src.path(), &files);
    for junk in [
        ".hidden",
        ".git/config",
        "x.safetensors.partial",
        "x.safetensors.partial.state",
        "notes.tmp",
        "config.json~",
    ] {
        let p = src.path().join(junk);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"junk").unwrap();
    }
    std::fs::write(src.path().join("manifest.json"), b"old").unwrap();
    let m = write_manifest(src.path()).unwrap();
    assert_eq!(m, manifest_of(&files));
    let written = std::fs::read(src.path().join("manifest.json")).unwrap();
    assert_eq!(Manifest::from_slice(&written, "t").unwrap(), m);
    // Idempotent: the manifest does not list itself.
    assert_eq!(write_manifest(src.path()).unwrap(), m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_source_copies_verifies_and_skips() {
    let files = model();
    let src = TempDir::new("local-src");
    write_tree(src.path(), &files);
    write_manifest(src.path()).unwrap();
    let dest = TempDir::new("local-dest");
    let progress = Arc::new(Progress::new());
    let report = run(
        job(Source::Local(src.path().into()), dest.path(), tuning()),
        progress.clone(),
        CancelToken::new(),
    )
    .await
    .unwrap();
    assert_dest_matches(dest.path(), &files);
    assert!(progress.snapshot().is_warm());
    assert_eq!(report.bytes_transferred, report.bytes_total);
    let again = run_ok(Source::Local(src.path().into()), dest.path(), tuning())
        .await
        .0;
    assert_eq!((again.files_skipped, again.bytes_transferred), (4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_source_that_differs_from_its_manifest_fails_cleanly() {
    let files = model();
    let src = TempDir::new("local-bad-src");
    write_tree(src.path(), &files);
    write_manifest(src.path()).unwrap();
    // Same size, different bytes.
    let victim = src.path().join("model-00002-of-00002.safetensors");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[10] ^= 0x55;
    std::fs::write(&victim, &bytes).unwrap();
    let dest = TempDir::new("local-bad-dest");
    let t = Tuning {
        retries: 1,
        ..tuning()
    };
    let err = run_err(Source::Local(src.path().into()), dest.path(), t)
        .await
        .0;
    assert!(
        matches!(&err, WarmupError::ChecksumMismatch { path, attempts: 2, .. } if path == "model-00002-of-00002.safetensors"),
        "{err:?}"
    );
    assert!(!dest
        .path()
        .join("model-00002-of-00002.safetensors")
        .exists());
    assert!(!dest
        .path()
        .join("model-00002-of-00002.safetensors.partial")
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_missing_file_and_missing_manifest_are_named() {
    let files = model();
    let src = TempDir::new("local-missing");
    write_tree(src.path(), &files);
    let dest = TempDir::new("local-missing-dest");
    let err = run_err(Source::Local(src.path().into()), dest.path(), tuning())
        .await
        .0;
    assert!(matches!(err, WarmupError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("manifest.json"), "{err}");

    write_manifest(src.path()).unwrap();
    std::fs::remove_file(src.path().join("config.json")).unwrap();
    let err = run_err(Source::Local(src.path().into()), dest.path(), tuning())
        .await
        .0;
    assert!(matches!(err, WarmupError::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("config.json: not found"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_disk_full_then_resume() {
    let files = model_files(&[("w.safetensors", 3 * MIB)]);
    let src = TempDir::new("local-enospc");
    write_tree(src.path(), &files);
    write_manifest(src.path()).unwrap();
    let dest = TempDir::new("local-enospc-dest");
    let t = Tuning {
        parallel_ranges: 2,
        ..tuning()
    };
    let hooks = Hooks {
        before_write: Some(Arc::new(|_: &str, offset: u64, _: usize| {
            if offset >= 2 * MIB as u64 {
                Err(std::io::Error::from_raw_os_error(28))
            } else {
                Ok(())
            }
        })),
    };
    let err = run_with_hooks(
        job(Source::Local(src.path().into()), dest.path(), t.clone()),
        Arc::new(Progress::new()),
        CancelToken::new(),
        hooks,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, WarmupError::NoSpace { .. }), "{err:?}");
    assert!(dest.path().join("w.safetensors.partial.state").exists());
    let report = run_ok(Source::Local(src.path().into()), dest.path(), t)
        .await
        .0;
    assert_dest_matches(dest.path(), &files);
    assert!(report.bytes_resumed >= MIB as u64, "{report:?}");
    assert_eq!(
        report.bytes_resumed + report.bytes_transferred,
        3 * MIB as u64
    );
}

#[tokio::test]
async fn source_and_dest_must_differ() {
    let src = TempDir::new("local-same");
    let err = run_err(
        Source::Local(src.path().into()),
        src.path(),
        Tuning::default(),
    )
    .await
    .0;
    assert_eq!(err.code(), "invalid_job");
}
