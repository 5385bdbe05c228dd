//! Tests of hashing in file order.

#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::hasher::hash_chunks;
use crate::cancel::CancelToken;
use crate::ctx::{hash_in_order, write_vectored, HashState};
use crate::digest::hex;
use crate::hooks::Hooks;
use crate::sync::lock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashes_in_order_as_written_and_reads_back_the_rest() {
    let dir = std::env::temp_dir().join(format!("infergate-warmup-hash-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.partial");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 7)) as u8).collect();
    let (size, chunk) = (data.len() as u64, 64 << 10);
    let file = Arc::new(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap(),
    );
    file.set_len(size).unwrap();
    let hash = Arc::new(Mutex::new(HashState::new()));
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(hash_chunks(
        file.clone(),
        hash.clone(),
        size,
        chunk,
        vec![false; 5],
        rx,
        CancelToken::new(),
    ));
    let write = |from: u64, to: u64| {
        let bytes = Bytes::copy_from_slice(&data[from as usize..to as usize]);
        write_vectored(
            &Hooks::default(),
            &file,
            "f",
            &path,
            std::slice::from_ref(&bytes),
            from,
        )
        .unwrap();
        hash_in_order(&hash, from, &[bytes]);
        lock(&hash).pos
    };
    // Ahead of the hash: written, not hashed.
    assert_eq!(write(2 * chunk, 3 * chunk), 0);
    assert_eq!(write(4 * chunk, size), 0);
    // At the hash position: hashed as written, in pieces.
    assert_eq!(write(0, 1000), 1000);
    assert_eq!(write(1000, chunk), chunk);
    assert_eq!(write(chunk, chunk + 5), chunk + 5);
    // Finish chunks out of order; the hasher reads back what was not hashed.
    let rest = write(chunk + 5, 2 * chunk);
    assert!(rest == 2 * chunk, "{rest}");
    for c in [4, 2, 0, 1] {
        tx.send(c).unwrap();
    }
    assert_eq!(write(3 * chunk, 4 * chunk) % chunk, 0);
    tx.send(3).unwrap();
    let digest = task.await.unwrap().unwrap().unwrap();
    assert_eq!(digest, hex(&Sha256::digest(&data)));
    assert_eq!(lock(&hash).pos, size);

    // A job that stops before every chunk is finished has no digest.
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(hash_chunks(
        file,
        Arc::new(Mutex::new(HashState::new())),
        size,
        chunk,
        vec![false; 5],
        rx,
        CancelToken::new(),
    ));
    tx.send(0).unwrap();
    drop(tx);
    assert_eq!(task.await.unwrap().unwrap(), None);
    let _ = fs::remove_dir_all(&dir);
}
