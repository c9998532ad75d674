#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fault scenario of the storage nodes (issue 12 §5) on a real devnet of 7 nodes (one swarm):
//! **a random member is killed with SIGKILL every few seconds while a client stores 20 000
//! messages; in the end every acknowledged message is retrievable from every member.**
//!
//! The client stores signed messages over HTTPS, 32 at a time, each to a random member it
//! believes alive; a store that fails (the member died under it, or is starting) is retried on
//! another member and counts only once a member acknowledged it with `200`. A killer thread
//! meanwhile kills a random member (SIGKILL: no goodbye to the registry, no flush), waits, and
//! starts it again on its data directory with `umbra devnet start-node`. After the last store
//! every member must hold every acknowledged hash: the durability of the store (an
//! acknowledgement means the write-ahead log is synced) and anti-entropy (a member that was
//! down catches up from its peers) together. Kills continue until both the stores are done and
//! at least [`MIN_KILLS`] kills happened, so the scenario is a fault test on a fast machine too.

mod common;

use common::storage::{self, all_hashes, now_ms, signed_store, try_rpc};
use common::{Devnet, devnet_up, umbra};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use umbra_crypto::{Identity, OsRandom, Random as _};

/// Messages stored.
const MESSAGES: usize = 20_000;
/// Stores in flight.
const IN_FLIGHT: usize = 32;
/// The fewest kills of the run.
const MIN_KILLS: usize = 4;
/// Attempts (on different members) before a store is given up as unacknowledged.
const STORE_ATTEMPTS: usize = 20;
/// Time a member stays dead before it is started again.
const DEAD_FOR: Duration = Duration::from_millis(1500);
/// What every member has to hold every acknowledged message, after the last store: one
/// anti-entropy round is 30 s; twice that and a margin for a loaded machine.
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);
/// Hang guard of the whole store phase.
const STORE_GUARD: Duration = Duration::from_secs(600);

/// One member of the swarm as last started.
#[derive(Debug, Clone)]
struct Member {
    key: String,
    https_port: u16,
    pid: i32,
}

/// The running members of the swarm, from `status`.
fn members(status: &Value) -> Vec<Member> {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["running"] == true)
        .map(|n| Member {
            key: n["pubkey_ed25519"].as_str().unwrap().to_owned(),
            https_port: u16::try_from(n["https_port"].as_u64().unwrap()).unwrap(),
            pid: i32::try_from(n["pid"].as_u64().unwrap()).unwrap(),
        })
        .collect()
}

/// A uniformly random index below `n` (n > 0).
fn pick(n: usize) -> usize {
    let mut b = [0u8; 8];
    OsRandom.fill(&mut b);
    usize::try_from(u64::from_le_bytes(b) % u64::try_from(n).unwrap()).unwrap()
}

/// Kills a random member, lets it stay dead a moment, starts it again; until `stores_done`
/// and at least [`MIN_KILLS`] kills. The members' ports are refreshed after every start.
fn killer(devnet: &Devnet, alive: &Mutex<Vec<Member>>, stores_done: &AtomicBool) -> usize {
    let mut kills = 0;
    while !stores_done.load(Ordering::SeqCst) || kills < MIN_KILLS {
        std::thread::sleep(Duration::from_millis(
            1000 + 500 * u64::try_from(pick(4)).unwrap(),
        ));
        let victim = {
            let mut a = alive.lock().unwrap();
            let i = pick(a.len());
            a.remove(i)
        };
        kill(Pid::from_raw(victim.pid), Signal::SIGKILL).unwrap();
        kills += 1;
        std::thread::sleep(DEAD_FOR);
        common::ok(
            &umbra(
                &["devnet", "start-node", &victim.key, "--dir", devnet.arg()],
                &[],
                "",
            ),
            "devnet start-node",
        );
        let now = members(&devnet.status());
        let back = now
            .iter()
            .find(|m| m.key == victim.key)
            .expect("the restarted member is not running")
            .clone();
        alive.lock().unwrap().push(back);
    }
    kills
}

/// Stores message `i` on random live members until one acknowledges it; its hash, or `None`
/// after [`STORE_ATTEMPTS`] failures.
async fn store_one(
    http: &reqwest::Client,
    me: &Identity,
    alive: &Mutex<Vec<Member>>,
    i: usize,
) -> Option<String> {
    let mut data = format!("message {i} ").into_bytes();
    let mut noise = [0u8; 64];
    OsRandom.fill(&mut noise);
    data.extend_from_slice(&noise);
    for _ in 0..STORE_ATTEMPTS {
        let port = {
            let a = alive.lock().unwrap();
            a[pick(a.len())].https_port
        };
        match try_rpc(http, port, "store", signed_store(me, &data, now_ms())).await {
            Ok((200, body)) => return Some(body["hash"].as_str().unwrap().to_owned()),
            // A member dying or starting; try another.
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    None
}

/// Stores [`MESSAGES`] messages, [`IN_FLIGHT`] at a time; the acknowledged hashes.
async fn store_all(me: Arc<Identity>, alive: Arc<Mutex<Vec<Member>>>) -> BTreeSet<String> {
    let http = storage::client(Duration::from_secs(20));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (http, me, alive, next) = (http.clone(), me.clone(), alive.clone(), next.clone());
        tasks.spawn(async move {
            let mut acked = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= MESSAGES {
                    return acked;
                }
                if let Some(h) = store_one(&http, &me, &alive, i).await {
                    acked.push(h);
                }
            }
        });
    }
    let mut all = BTreeSet::new();
    while let Some(acked) = tasks.join_next().await {
        all.extend(acked.unwrap());
    }
    all
}

/// Waits until every member holds every hash of `acked`; panics naming what is missing where.
async fn wait_converged(members: &[Member], me: &Identity, acked: &BTreeSet<String>) {
    let http = storage::client(Duration::from_secs(60));
    let start = SystemClock.instant();
    loop {
        let mut missing = Vec::new();
        for m in members {
            match all_hashes(&http, m.https_port, me).await {
                Ok(held) => {
                    let held: BTreeSet<String> = held.into_iter().collect();
                    let lacking = acked.difference(&held).count();
                    if lacking > 0 {
                        missing.push(format!("{}…: {lacking} missing", &m.key[..8]));
                    }
                }
                Err(e) => missing.push(format!("{}…: {e}", &m.key[..8])),
            }
        }
        if missing.is_empty() {
            return;
        }
        assert!(
            SystemClock.since(start) < CONVERGE_WITHIN,
            "members still lack acknowledged messages {CONVERGE_WITHIN:?} after the last store: {missing:?}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[test]
fn members_killed_at_random_while_storing_lose_no_acknowledged_message() {
    let (devnet, _network) = devnet_up("7");
    let first = devnet.status();
    let swarms: BTreeSet<u64> = first["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["swarm_id"].as_u64().expect("a node outside any swarm"))
        .collect();
    assert_eq!(swarms.len(), 1, "7 nodes form one swarm: {first}");
    let start = members(&first);
    assert_eq!(start.len(), 7, "{start:?}");
    let alive = Arc::new(Mutex::new(start));
    let me = Arc::new(Identity::generate(&mut OsRandom));
    let stores_done = AtomicBool::new(false);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let began = SystemClock.instant();
    let (acked, kills) = std::thread::scope(|s| {
        let killing = s.spawn(|| killer(&devnet, &alive, &stores_done));
        let acked = rt.block_on(async {
            tokio::time::timeout(STORE_GUARD, store_all(me.clone(), alive.clone()))
                .await
                .expect("storing hung")
        });
        stores_done.store(true, Ordering::SeqCst);
        (acked, killing.join().unwrap())
    });
    let stored_in = SystemClock.since(began);
    // Acknowledgements are the point; a store may fail only while every member it tried was
    // dying or starting, which 20 attempts spread over two seconds make rare.
    assert!(
        acked.len() >= MESSAGES * 99 / 100,
        "only {} of {MESSAGES} stores were acknowledged",
        acked.len()
    );
    assert!(kills >= MIN_KILLS, "{kills} kills");

    let final_members = members(&devnet.status());
    assert_eq!(final_members.len(), 7, "{final_members:?}");
    let converge_began = SystemClock.instant();
    rt.block_on(wait_converged(&final_members, &me, &acked));
    eprintln!(
        "{} acknowledged stores in {stored_in:?} with {kills} kills; every member held all of them {:?} later",
        acked.len(),
        SystemClock.since(converge_began)
    );
}
