//! Throughput of the message store alone (no HTTP, no signatures).
//!
//! `cargo run -p umbra-store --release --example store_bench [messages] [data_bytes]`
//!
//! Several client threads each keep a window of stores in flight (as an async node with many
//! concurrent requests would), then read back with paged retrieves.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::VecDeque;

use blake2::{Blake2b256, Digest};
use umbra_clock::{Clock as _, SystemClock};
use umbra_store::{
    AccountId, Durability, MessageHash, NewMessage, Quota, RetrieveLimits, Store, StoreConfig,
};

const NOW: i64 = 1_700_000_000_000;
const CLIENTS: usize = 8;
const WINDOW: usize = 256;
const OWNERS: u32 = 1000;

fn owner(n: u32) -> AccountId {
    let mut b = [0u8; 33];
    b[0] = 5;
    b[1..5].copy_from_slice(&n.to_be_bytes());
    AccountId::new(b)
}

fn hash(data: &[u8]) -> MessageHash {
    MessageHash::from_digest(&Blake2b256::digest(data).into())
}

fn run(durability: Durability, total: usize, data_len: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path().join("bench.db"),
        StoreConfig {
            durability,
            quota: Quota {
                max_messages: u64::MAX,
                max_bytes: u64::MAX,
            },
            max_db_bytes: None,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let per_client = total / CLIENTS;
    let start = SystemClock.instant();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut inflight = VecDeque::with_capacity(WINDOW);
                for i in 0..per_client {
                    let n = (c * per_client + i) as u64;
                    let mut data = vec![0xAB; data_len];
                    data[..8].copy_from_slice(&n.to_be_bytes());
                    let m = NewMessage {
                        owner: owner((n % u64::from(OWNERS)) as u32),
                        namespace: 0,
                        hash: hash(&data),
                        data,
                        timestamp_ms: NOW,
                        expiry_ms: NOW + 14 * 86_400_000,
                    };
                    inflight.push_back(store.store(m, NOW));
                    if inflight.len() >= WINDOW {
                        inflight.pop_front().unwrap().wait().unwrap();
                    }
                }
                for r in inflight {
                    r.wait().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = SystemClock.since(start).as_secs_f64();
    let stored = per_client * CLIENTS;
    println!(
        "{durability:?}: {stored} stores of {data_len} B in {secs:.2} s = {:.0} stores/s",
        stored as f64 / secs
    );

    let reads = 20_000usize;
    let start = SystemClock.instant();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let limits = RetrieveLimits {
                    max_count: Some(20),
                    max_size: None,
                };
                let mut got = 0usize;
                for i in 0..reads / 4 {
                    let o = owner(((t * 7919 + i * 104_729) % OWNERS as usize) as u32);
                    got += store
                        .retrieve(&o, 0, None, limits, NOW)
                        .unwrap()
                        .messages
                        .len();
                }
                got
            })
        })
        .collect();
    let got: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let secs = SystemClock.since(start).as_secs_f64();
    println!(
        "{durability:?}: {reads} retrieves (max_count 20, {got} messages) in {secs:.2} s = {:.0} retrieves/s",
        reads as f64 / secs
    );
    let st = store.stats().unwrap();
    println!(
        "  db: {} messages, {} data bytes, {} file bytes",
        st.messages, st.bytes, st.db_bytes
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let data_len: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    run(Durability::ProcessCrash, total, data_len);
    run(Durability::PowerLoss, total / 4, data_len);
}
