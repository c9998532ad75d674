//! Durability: an acknowledged write survives the process being killed (SIGKILL) with no clean
//! shutdown, and survives a dropped-without-close store.

#![allow(
    clippy::cloned_ref_to_slice_refs,
    clippy::unwrap_used,
    clippy::manual_is_multiple_of
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use umbra_store::*;

const CHILD_ENV: &str = "UMBRA_STORE_DURABILITY_CHILD_DB";

/// Runs only as the child of `acknowledged_stores_survive_kill_9`: stores messages as fast as it
/// can from several threads and prints each hash once its Reply has resolved.
#[test]
fn durability_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&path, StoreConfig::default()).unwrap();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let o = owner(t + 1);
                for i in 0u32.. {
                    let m = msg(&o, 0, &i.to_be_bytes(), NOW, NOW + DAY);
                    let h = m.hash;
                    store.store(m, NOW).wait().unwrap();
                    println!("ACK {t} {h}");
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn acknowledged_stores_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "durability_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked: Vec<(u8, MessageHash)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (t, h) = rest.split_once(' ').unwrap();
            acked.push((t.parse().unwrap(), h.parse().unwrap()));
            if acked.len() >= 3000 {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no checkpoint, no WAL cleanup.
    child.kill().unwrap();
    let _ = child.wait();
    assert!(acked.len() >= 3000, "child stopped early");

    let store = Store::open(&db, StoreConfig::default()).unwrap();
    for t in 0..4u8 {
        let o = owner(t + 1);
        let mine: Vec<MessageHash> = acked
            .iter()
            .filter(|(x, _)| *x == t)
            .map(|(_, h)| *h)
            .collect();
        let got = store.get_expiries(&o, &mine, NOW).unwrap();
        let lost: Vec<&MessageHash> = mine.iter().filter(|h| !got.contains_key(*h)).collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged stores lost for thread {t}",
            lost.len()
        );
    }
    // The counters are rebuilt from disk and cover at least what was acknowledged.
    assert!(store.stats().unwrap().messages >= acked.len() as u64);
}

/// A crash inside one process cannot be imitated by leaking a handle (RocksDB's lock stays
/// with the process; `acknowledged_stores_survive_kill_9` covers crashes). What a leaked or
/// second handle must do is refuse the directory, not share it; once the first handle is
/// dropped the store reopens with everything.
#[test]
fn a_store_in_use_is_refused_then_reopens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let o = owner(1);
    let mut hashes = Vec::new();
    let first = open(&dir);
    for i in 0..200u32 {
        let m = msg(&o, 0, &i.to_be_bytes(), NOW, NOW + DAY);
        hashes.push(m.hash);
        first.store(m, NOW).wait().unwrap();
    }
    let err = Store::open(dir.path().join("store.db"), StoreConfig::default()).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    drop(first);
    let s = open(&dir);
    let r = s
        .retrieve(&o, 0, None, RetrieveLimits::default(), NOW)
        .unwrap();
    assert_eq!(
        r.messages.iter().map(|m| m.hash).collect::<Vec<_>>(),
        hashes
    );
    assert_eq!(s.stats().unwrap().messages, 200);
}
