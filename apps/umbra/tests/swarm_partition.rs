#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fault scenario of the storage nodes (issue 12 §5) on a real devnet of 5 nodes (one swarm):
//! **one member is cut off from the rest of its swarm; both sides take writes and the majority
//! deletes; once the cut heals, every member holds every acknowledged message within 60 s and
//! no deleted message comes back.**
//!
//! How the cut is made: every node's peer port sits behind a TCP proxy in this process. The
//! devnet's `--public-peer-ports` makes each node announce its proxy's port in the node list
//! (and bind its own), so every replication connection passes a proxy; TLS still authenticates
//! the node key end to end, so a proxy relays ciphertext it cannot read. A proxy knows which
//! node it fronts. Which node dials it it learns from `/proc`, since every node dials from
//! 127.0.0.1: the dialing socket's inode from `/proc/net/tcp`, looked up among the isolated
//! node's `/proc/PID/fd`. While the cut lasts, a proxy closes every connection that crosses it
//! (the isolated node's to the others' proxies, the others' to the isolated node's proxy): the
//! open ones at once and new ones as soon as they are accepted, so both directions fail fast,
//! as with a refused or reset connection. The registry stays reachable from every node, so the
//! swarm's membership does not change: the partition is of the replication paths, not of the
//! node from the network.
//!
//! Steps: messages stored before the cut reach all five members; during the cut, stores on
//! the isolated member and on the majority, and deletes on the majority of some of the earlier
//! messages. Every write's per-member results must show the cut (the other side failed, its
//! own side stored), and before healing, each side's holdings are checked to be apart (so the
//! scenario cannot pass without a partition). Then the cut heals and every member must hold
//! exactly the acknowledged, undeleted messages within [`CONVERGE_WITHIN`]: nothing missing
//! (lost) and no deleted message back (resurrected). Anti-entropy rounds come every 30 s, so
//! the heal is typically seen within one round.

mod common;

use common::storage::{self, all_hashes, now_ms, signed_delete, signed_store, try_rpc};
use common::{Devnet, build_daemons, start_detached};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use umbra_clock::{Clock as _, SystemClock};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use umbra_crypto::{Identity, OsRandom, Random as _};

/// Nodes of the devnet: one swarm (a swarm forms from 5 nodes up).
const NODES: usize = 5;
/// Messages stored before the cut.
const BEFORE: usize = 30;
/// Of those, deleted on the majority during the cut.
const DELETED: usize = 12;
/// Hashes per `delete` request.
const DELETE_BATCH: usize = 4;
/// Messages stored on the isolated member during the cut.
const ISOLATED_WRITES: usize = 30;
/// Messages stored on the majority during the cut.
const MAJORITY_WRITES: usize = 30;
/// How long the cut lasts at least (writes included): long enough for the nodes' failing
/// calls to settle into whatever state a real partition leaves them in.
const CUT_FOR: Duration = Duration::from_secs(12);
/// Within this after the heal every member must hold exactly the surviving messages (the
/// issue's bound; an anti-entropy round is 30 s).
const CONVERGE_WITHIN: Duration = Duration::from_secs(60);

/// One member as `devnet status` shows it; `index` is its place in the devnet (and its
/// proxy's).
#[derive(Debug, Clone)]
struct Member {
    index: usize,
    name: String,
    key: String,
    https_port: u16,
    pid: i32,
}

/// The cut: which member is alone, and its process (whose sockets identify its connections).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    isolated: usize,
    pid: i32,
}

/// What the proxies share: the cut (none while the swarm is whole), where the real peer
/// ports are, and what they did.
struct Proxies {
    cut: watch::Sender<Option<Cut>>,
    state_file: PathBuf,
    /// Connections closed right after being accepted because they crossed the cut.
    refused: AtomicUsize,
    /// Open connections closed when the cut began.
    severed: AtomicUsize,
    /// Connections relayed (whole or until cut).
    relayed: AtomicUsize,
}

/// The port node `index` binds for its peers, from `devnet.json` (read at every connection,
/// so the proxy follows a node started again on new ports).
fn peer_port_of(state_file: &Path, index: usize) -> Option<u16> {
    let state: Value = serde_json::from_slice(&std::fs::read(state_file).ok()?).ok()?;
    let port = state["nodes"][index]["peer_port"].as_u64()?;
    u16::try_from(port).ok().filter(|p| *p != 0)
}

/// The inode of the socket that dialed a proxy: the `/proc/net/tcp` entry whose local port is
/// the accepted connection's remote port and whose remote port is the proxy's.
fn dialer_inode(dialer_port: u16, proxy_port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (local, remote) = (port(f.get(1)?)?, port(f.get(2)?)?);
        if local == dialer_port && remote == proxy_port {
            f.get(9)?.parse().ok()
        } else {
            None
        }
    })
}

/// Whether process `pid` holds the socket with this inode.
fn holds_socket(pid: i32, inode: u64) -> bool {
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == wanted.as_str())
        })
    })
}

/// Whether a connection to the proxy of member `front`, dialed from the socket `inode`,
/// crosses `cut`: exactly one of its ends is the isolated member.
fn crosses(cut: Option<Cut>, front: usize, inode: Option<u64>) -> bool {
    cut.is_some_and(|c| {
        let from_isolated = inode.is_some_and(|i| holds_socket(c.pid, i));
        (front == c.isolated) != from_isolated
    })
}

/// Accepts connections for member `front`'s peer port until the runtime ends.
async fn proxy(shared: Arc<Proxies>, front: usize, listener: TcpListener) {
    let proxy_port = listener.local_addr().unwrap().port();
    loop {
        let Ok((client, from)) = listener.accept().await else {
            continue;
        };
        let inode = dialer_inode(from.port(), proxy_port);
        tokio::spawn(relay(shared.clone(), front, client, inode));
    }
}

/// Relays one connection to member `front`'s real peer port, unless it crosses the cut: then
/// it is closed at once, or as soon as the cut begins.
async fn relay(shared: Arc<Proxies>, front: usize, mut client: TcpStream, inode: Option<u64>) {
    let mut cut = shared.cut.subscribe();
    let now = *cut.borrow_and_update();
    if crosses(now, front, inode) {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let Some(port) = peer_port_of(&shared.state_file, front) else {
        return;
    };
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    shared.relayed.fetch_add(1, Ordering::SeqCst);
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(copy);
    loop {
        tokio::select! {
            _ = &mut copy => return,
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *cut.borrow_and_update();
                if crosses(now, front, inode) {
                    shared.severed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

/// The members from `status`, in devnet order.
fn members(status: &Value) -> Vec<Member> {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(index, n)| Member {
            index,
            name: n["name"].as_str().unwrap().to_owned(),
            key: n["pubkey_ed25519"].as_str().unwrap().to_owned(),
            https_port: u16::try_from(n["https_port"].as_u64().unwrap()).unwrap(),
            pid: i32::try_from(n["pid"].as_u64().expect("a member is not running")).unwrap(),
        })
        .collect()
}

/// A uniformly random index below `n` (n > 0).
fn pick(n: usize) -> usize {
    let mut b = [0u8; 8];
    OsRandom.fill(&mut b);
    usize::try_from(u64::from_le_bytes(b) % u64::try_from(n).unwrap()).unwrap()
}

/// Whether a member's entry in a reply's `swarm` object is a success.
fn succeeded(entry: &Value) -> bool {
    entry.is_object() && entry.get("failed").is_none()
}

/// The keys of `all` whose entry in `reply["swarm"]` is a success (for a `delete`: one that
/// deleted all of `deleted`), as a set.
fn who_applied(reply: &Value, all: &[Member], deleted: Option<&[String]>) -> BTreeSet<String> {
    all.iter()
        .filter(|m| {
            let e = &reply["swarm"][&m.key];
            succeeded(e)
                && deleted.is_none_or(|hashes| {
                    let done = e["deleted"].as_array().cloned().unwrap_or_default();
                    hashes.iter().all(|h| done.iter().any(|d| d == h.as_str()))
                })
        })
        .map(|m| m.key.clone())
        .collect()
}

/// Stores message `tag` on `at`; its hash and the reply. The store must be acknowledged.
async fn store(http: &reqwest::Client, me: &Identity, at: &Member, tag: &str) -> (String, Value) {
    let mut data = format!("{tag} ").into_bytes();
    let mut noise = [0u8; 32];
    OsRandom.fill(&mut noise);
    data.extend_from_slice(&noise);
    let (status, reply) = try_rpc(
        http,
        at.https_port,
        "store",
        signed_store(me, &data, now_ms()),
    )
    .await
    .unwrap_or_else(|e| panic!("store {tag} on {}: {e}", at.name));
    assert_eq!(status, 200, "store {tag} on {}: {reply}", at.name);
    (reply["hash"].as_str().unwrap().to_owned(), reply)
}

/// What one member holds against what it should.
#[derive(Debug, Default)]
struct Divergence {
    /// Surviving messages it lacks.
    missing: usize,
    /// Deleted messages it holds.
    resurrected: usize,
    /// Messages nobody stored (must never happen).
    unknown: usize,
    /// The retrieve failed.
    error: Option<String>,
}

impl Divergence {
    fn is_none(&self) -> bool {
        self.missing == 0 && self.resurrected == 0 && self.unknown == 0 && self.error.is_none()
    }
}

/// How every member's holdings differ from `surviving` (and `deleted`); with the number of
/// (member, message) facts checked.
async fn divergence(
    http: &reqwest::Client,
    me: &Identity,
    all: &[Member],
    surviving: &BTreeSet<String>,
    deleted: &BTreeSet<String>,
) -> (Vec<(String, Divergence)>, usize) {
    let mut out = Vec::new();
    let mut checked = 0;
    for m in all {
        let d = match all_hashes(http, m.https_port, me).await {
            Ok(held) => {
                let held: BTreeSet<String> = held.into_iter().collect();
                checked += surviving.len() + deleted.len();
                Divergence {
                    missing: surviving.difference(&held).count(),
                    resurrected: deleted.intersection(&held).count(),
                    unknown: held
                        .iter()
                        .filter(|h| !surviving.contains(*h) && !deleted.contains(*h))
                        .count(),
                    error: None,
                }
            }
            Err(e) => Divergence {
                error: Some(e),
                ..Divergence::default()
            },
        };
        out.push((m.name.clone(), d));
    }
    (out, checked)
}

/// Every hash `at` holds.
async fn held_by(http: &reqwest::Client, me: &Identity, at: &Member) -> BTreeSet<String> {
    all_hashes(http, at.https_port, me)
        .await
        .unwrap_or_else(|e| panic!("retrieve from {}: {e}", at.name))
        .into_iter()
        .collect()
}

#[test]
fn a_member_cut_off_from_its_swarm_converges_after_the_cut_heals() {
    build_daemons();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The proxies listen before the nodes start, so that the ports the nodes announce are
    // taken by them and by nothing else.
    let listeners: Vec<TcpListener> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..NODES {
            v.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        v
    });
    let proxy_ports: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port().to_string())
        .collect();
    let devnet = Devnet::new();
    let shared = Arc::new(Proxies {
        cut: watch::Sender::new(None),
        state_file: devnet.path().join("devnet.json"),
        refused: AtomicUsize::new(0),
        severed: AtomicUsize::new(0),
        relayed: AtomicUsize::new(0),
    });
    for (front, l) in listeners.into_iter().enumerate() {
        rt.spawn(proxy(shared.clone(), front, l));
    }
    let began = SystemClock.instant();
    let proxy_ports = proxy_ports.join(",");
    start_detached(
        &devnet,
        &NODES.to_string(),
        &["--public-peer-ports", &proxy_ports],
    );
    let up_took = SystemClock.since(began);
    let status = devnet.status();
    let swarms: BTreeSet<u64> = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["swarm_id"].as_u64().expect("a node outside any swarm"))
        .collect();
    assert_eq!(swarms.len(), 1, "{NODES} nodes form one swarm: {status}");
    for (n, port) in status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .zip(proxy_ports.split(','))
    {
        assert_eq!(
            n["public_peer_port"].to_string(),
            port,
            "each node announces its proxy: {n}"
        );
    }
    let all = members(&status);
    assert_eq!(all.len(), NODES);
    let isolated = all[pick(NODES)].clone();
    let majority: Vec<Member> = all
        .iter()
        .filter(|m| m.index != isolated.index)
        .cloned()
        .collect();
    let majority_keys: BTreeSet<String> = majority.iter().map(|m| m.key.clone()).collect();
    let everyone: BTreeSet<String> = all.iter().map(|m| m.key.clone()).collect();
    eprintln!(
        "devnet of {NODES} up in {up_took:?}; {} ({}…) will be cut off",
        isolated.name,
        &isolated.key[..8]
    );

    let me = Identity::generate(&mut OsRandom);
    let http = storage::client(Duration::from_secs(30));
    rt.block_on(async {
        // Before the cut: every store reaches every member, through the proxies.
        let mut before = Vec::new();
        for i in 0..BEFORE {
            let at = &all[i % NODES];
            let (hash, reply) = store(&http, &me, at, &format!("before {i}")).await;
            assert_eq!(
                who_applied(&reply, &all, None),
                everyone,
                "before the cut every member stores: {reply}"
            );
            before.push(hash);
        }
        for m in &all {
            let held = held_by(&http, &me, m).await;
            assert!(
                before.iter().all(|h| held.contains(h)),
                "{} lacks messages stored before the cut",
                m.name
            );
        }

        // The cut.
        shared.cut.send_replace(Some(Cut {
            isolated: isolated.index,
            pid: isolated.pid,
        }));
        let cut_began = SystemClock.instant();
        let mut on_isolated = BTreeSet::new();
        for i in 0..ISOLATED_WRITES {
            let (hash, reply) = store(&http, &me, &isolated, &format!("isolated {i}")).await;
            assert_eq!(
                who_applied(&reply, &all, None),
                BTreeSet::from([isolated.key.clone()]),
                "a store on the isolated member reaches no other: {reply}"
            );
            on_isolated.insert(hash);
        }
        let mut on_majority = BTreeSet::new();
        for i in 0..MAJORITY_WRITES {
            let at = &majority[i % majority.len()];
            let (hash, reply) = store(&http, &me, at, &format!("majority {i}")).await;
            assert_eq!(
                who_applied(&reply, &all, None),
                majority_keys,
                "a store on the majority reaches the majority only: {reply}"
            );
            on_majority.insert(hash);
        }
        let deleted: BTreeSet<String> = before[..DELETED].iter().cloned().collect();
        for (i, batch) in before[..DELETED].chunks(DELETE_BATCH).enumerate() {
            let at = &majority[i % majority.len()];
            let (status, reply) =
                try_rpc(&http, at.https_port, "delete", signed_delete(&me, batch))
                    .await
                    .unwrap();
            assert_eq!(status, 200, "delete on {}: {reply}", at.name);
            assert_eq!(
                who_applied(&reply, &all, Some(batch)),
                majority_keys,
                "a delete on the majority deletes there only: {reply}"
            );
        }
        let writes_took = SystemClock.since(cut_began);
        tokio::time::sleep(CUT_FOR.saturating_sub(writes_took)).await;

        // Still apart at the end of the cut: the sides did not reach each other some other way.
        let held = held_by(&http, &me, &isolated).await;
        assert!(
            on_isolated.is_subset(&held),
            "the isolated member lost writes"
        );
        assert!(deleted.is_subset(&held), "the isolated member saw deletes");
        assert!(
            on_majority.is_disjoint(&held),
            "the isolated member got majority writes during the cut"
        );
        for m in &majority {
            let held = held_by(&http, &me, m).await;
            assert!(on_majority.is_subset(&held), "{} lost writes", m.name);
            assert!(
                deleted.is_disjoint(&held),
                "{} kept deleted messages",
                m.name
            );
            assert!(
                on_isolated.is_disjoint(&held),
                "{} got the isolated member's writes during the cut",
                m.name
            );
        }
        let cut_lasted = SystemClock.since(cut_began);

        // The heal.
        shared.cut.send_replace(None);
        let healed = SystemClock.instant();
        let surviving: BTreeSet<String> = before[DELETED..]
            .iter()
            .chain(&on_isolated)
            .chain(&on_majority)
            .cloned()
            .collect();
        let mut checks = 0;
        loop {
            let (report, checked) = divergence(&http, &me, &all, &surviving, &deleted).await;
            checks += checked;
            if report.iter().all(|(_, d)| d.is_none()) {
                break;
            }
            assert!(
                SystemClock.since(healed) < CONVERGE_WITHIN,
                "{CONVERGE_WITHIN:?} after the heal the members still diverge: {report:?}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let converged_in = SystemClock.since(healed);
        eprintln!(
            "cut of {} for {cut_lasted:?} ({} stores there, {} on the majority, {} of {} earlier \
             messages deleted on the majority; proxies: {} connections relayed, {} severed at \
             the cut, {} refused during it); all {NODES} members held exactly the {} surviving \
             messages {converged_in:?} after the heal ({checks} member×message checks); whole \
             scenario {:?}",
            isolated.name,
            on_isolated.len(),
            on_majority.len(),
            deleted.len(),
            before.len(),
            shared.relayed.load(Ordering::SeqCst),
            shared.severed.load(Ordering::SeqCst),
            shared.refused.load(Ordering::SeqCst),
            surviving.len(),
            SystemClock.since(began),
        );
    });
}
