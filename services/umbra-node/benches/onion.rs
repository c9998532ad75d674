//! Onion requests through in-process nodes on loopback, measured next to one X25519 scalar
//! multiplication in the same run:
//!
//! - round trip of a 3-hop `retrieve` (client → N1 → N2 → N3 → destination and back), p50/p99
//!   over sequential requests, Umbra (padded) and Session-style (unpadded);
//! - one node's relay throughput: onion requests/s it forwards (to a destination answering
//!   `info`), with many requests in flight from a client that prepared them beforehand.
//!
//! `cargo bench -p umbra-node --bench onion [-- --requests 1000 --relay 4000 --inflight 32]`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use umbra_clock::{Clock as _, SystemClock};
use umbra_crypto::SeededRandom;
use umbra_crypto::keys::X25519KeyPair;
use umbra_node::onion::Outcome;
use umbra_node::testing::{TestAccount, TestNode, https_client, now_ms, share_view};
use umbra_onion::{Destination, Hop, Reply, RequestBuilder};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn x25519_micros() -> f64 {
    let mut rng = SeededRandom::new(1);
    let a = X25519KeyPair::generate(&mut rng);
    let b = X25519KeyPair::generate(&mut rng).public();
    let mut batches = Vec::new();
    for _ in 0..7 {
        let t = SystemClock.instant();
        for _ in 0..500 {
            std::hint::black_box(a.dh(std::hint::black_box(&b)).unwrap());
        }
        batches.push(SystemClock.since(t).as_secs_f64() * 1e6 / 500.0);
    }
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    let i = (sorted.len() * p / 100).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let mean = v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64 * 1e3;
    println!(
        "{name:<44} n={:<5} p50 {:>6.2} ms  p99 {:>6.2} ms  mean {:>6.2} ms",
        v.len(),
        pct(&v, 50),
        pct(&v, 99),
        mean
    );
}

async fn network(n: usize) -> (Vec<TestNode>, Vec<Hop>) {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(
            TestNode::start_with(|c| c.rate_limit.enabled = false)
                .await
                .unwrap(),
        );
    }
    let infos = share_view(nodes.iter().map(|t| (t, 1u64 << 60)));
    let hops = infos
        .iter()
        .map(|i| Hop {
            ed25519: i.pubkey_ed25519,
            x25519: i.pubkey_x25519,
        })
        .collect();
    (nodes, hops)
}

fn rpc(method: &str, params: Value) -> Vec<u8> {
    json!({"method": method, "params": params})
        .to_string()
        .into_bytes()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests = arg("--requests", 1000);
    let relay_requests = arg("--relay", 4000);
    let inflight = arg("--inflight", 32);

    let x = x25519_micros();
    println!("X25519 scalar multiplication: {x:.1} µs (median of 7 × 500)");

    let (nodes, hops) = network(4).await;
    let client = https_client().unwrap();
    let url = format!("{}/onion_req/v2", nodes[0].base_url());
    let mut rng = SeededRandom::new(42);
    let acct = TestAccount::new(5);

    // One message to retrieve (100 bytes), stored through the same path.
    let store = rpc(
        "store",
        acct.store_params(0, now_ms(), 3_600_000, &[7u8; 100]),
    );
    let req = RequestBuilder::umbra()
        .build(
            &hops[..3],
            Destination::Node {
                node: hops[3],
                request: &store,
            },
            &mut rng,
        )
        .unwrap();
    let r = client.post(&url).body(req.body).send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    match req.reply.open(status, &body).unwrap() {
        Reply::Storage(s) if s.status == 200 => {}
        other => panic!("store failed: {other:?}"),
    }

    for (label, builder) in [
        ("Umbra (padded, hop errors)", RequestBuilder::umbra()),
        ("Session-style (RequestBuilder::new)", RequestBuilder::new()),
    ] {
        let mut rtt = Vec::with_capacity(requests);
        let mut total = Vec::with_capacity(requests);
        for i in 0..requests + 50 {
            let retrieve = rpc("retrieve", acct.retrieve_params(0, now_ms()));
            let t0 = SystemClock.instant();
            let req = builder
                .build(
                    &hops[..3],
                    Destination::Node {
                        node: hops[3],
                        request: &retrieve,
                    },
                    &mut rng,
                )
                .unwrap();
            let t1 = SystemClock.instant();
            let r = client.post(&url).body(req.body).send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.bytes().await.unwrap();
            let t2 = SystemClock.instant();
            match req.reply.open(status, &body).unwrap() {
                Reply::Storage(s) if s.status == 200 => {}
                other => panic!("retrieve failed: {other:?}"),
            }
            let t3 = SystemClock.instant();
            if i >= 50 {
                rtt.push(t2 - t1);
                total.push(t3 - t0);
            }
        }
        println!("3-hop retrieve, {label}:");
        summary("  round trip (POST to reply)", rtt);
        summary("  client total (build + round trip + open)", total);
    }

    // Relay throughput of N0: client → N0 → destination N3 (`info`), requests built first.
    let info = rpc("info", json!({}));
    let bodies: Vec<Vec<u8>> = (0..relay_requests)
        .map(|_| {
            RequestBuilder::new()
                .build(
                    &hops[..1],
                    Destination::Node {
                        node: hops[3],
                        request: &info,
                    },
                    &mut rng,
                )
                .unwrap()
                .body
        })
        .collect();
    let before = nodes[0]
        .node()
        .unwrap()
        .state()
        .onion
        .outcome_count(Outcome::Forwarded);
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let t = SystemClock.instant();
    let mut tasks = Vec::new();
    for _ in 0..inflight {
        let queue = queue.clone();
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    break;
                };
                let r = client.post(&url).body(body).send().await.unwrap();
                if r.status().as_u16() == 200 {
                    let _ = r.bytes().await.unwrap();
                    ok += 1;
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += task.await.unwrap();
    }
    let secs = SystemClock.since(t).as_secs_f64();
    let forwarded = nodes[0]
        .node()
        .unwrap()
        .state()
        .onion
        .outcome_count(Outcome::Forwarded)
        - before;
    assert_eq!(ok, relay_requests);
    assert_eq!(forwarded as usize, relay_requests);
    println!(
        "relay throughput of one node: {:.0} onion requests/s forwarded ({relay_requests} requests, {inflight} in flight, {secs:.2} s)",
        forwarded as f64 / secs
    );
    println!(
        "  per forwarded request: {:.1} µs of wall time on 2 cores = {:.1} X25519",
        secs * 1e6 / forwarded as f64,
        secs * 1e6 / forwarded as f64 / x
    );
    for n in nodes {
        let _ = n.stop().await;
    }
}
