#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Storage requests on a real devnet go through onion paths, checked from the nodes' own logs.
//!
//! A 7-node devnet is started with `UMBRA_DEVNET_NODE_LOG=info,umbra_node=debug`, which makes
//! every node log each HTTP request (`request peer=.. method=.. path=..`) and each onion
//! request (`onion request peer=.. outcome=..`) with peer addresses in clear. The client library
//! (umbra-net's onion transport and umbra-messenger's swarm adapter) connects from 127.0.0.2,
//! so that the client's connections are told apart from the nodes' (127.0.0.1). It stores a
//! message and retrieves it. Then, from the logs:
//!
//! 1. the nodes that got any request from 127.0.0.2 got only onion requests, relayed them
//!    (`outcome=forwarded`; a refusal such as `next_node_not_found` while a node list catches
//!    up is allowed, the client retries) and never ran one as destination: entry nodes only;
//! 2. every destination (`outcome=destination`, the node that ran the storage RPC) got its
//!    request from 127.0.0.1, a relay, never from the client's address;
//! 3. no node got a plain `/storage_rpc/v1` request from the client.
//!
//! A second test checks that a devnet is usable the moment `umbra devnet up` returns: on a
//! 14-node devnet (two swarms of 7), a signed store through the first member of the account's
//! swarm is signed by all 7 members, a store to a node of the other swarm is answered `421`
//! (`storage-rpc.md` §11), and onion requests work with no relay refusing a next hop.
//!
//! The daemons are built first (as in client_e2e.rs); every step has a generous hang guard and
//! nothing depends on timing. A guard object runs `umbra devnet down` at the end. The tests of
//! this file take turns ([`one_devnet_at_a_time`]): two devnets at once starve each other.

mod common;

use common::storage::{self, now_ms, rpc, signed_store};
use common::{Devnet, build_daemons, logged_devnet};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use umbra_clock::SystemClock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;

use umbra_crypto::{Identity, OsRandom};
use umbra_messenger::{OnionSwarm, SwarmApi};
use umbra_net::{HttpConfig, NetworkConfig, OnionTransport, TransportConfig};

/// Hang guard of one command or one client step.
const GUARD: Duration = Duration::from_secs(240);
/// The client's own address.
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The nodes' address (relays connect from it).
const NODE_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Serialises the tests of this file (`cargo test` runs them on parallel threads).
fn one_devnet_at_a_time() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One logged line of interest.
#[derive(Debug)]
enum Seen {
    /// `request`: any HTTP request on the client listener.
    Http { peer: Ipv4Addr, path: String },
    /// `onion request`: what the node did with an onion request.
    Onion { peer: Ipv4Addr, outcome: String },
}

/// The value of `key=` in a log line (without quotes).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    let end = rest.find(' ').unwrap_or(rest.len());
    Some(rest[..end].trim_matches('"'))
}

fn peer_ip(line: &str) -> Ipv4Addr {
    let p = field(line, "peer").unwrap_or_else(|| panic!("no peer in {line:?}"));
    match p.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(a)) => *a.ip(),
        _ => panic!("peer is not an IPv4 address in clear: {line:?}"),
    }
}

fn parse_log(text: &str) -> Vec<Seen> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.contains(" onion request peer=") {
            out.push(Seen::Onion {
                peer: peer_ip(line),
                outcome: field(line, "outcome").unwrap().to_owned(),
            });
        } else if line.contains(": request peer=") {
            out.push(Seen::Http {
                peer: peer_ip(line),
                path: field(line, "path").unwrap().to_owned(),
            });
        }
    }
    out
}

/// Every node's log, by file name.
fn node_logs(dir: &Path) -> Vec<(String, Vec<Seen>)> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir.join("logs")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("node-") {
            logs.push((name, parse_log(&std::fs::read_to_string(&path).unwrap())));
        }
    }
    logs.sort_by(|a, b| a.0.cmp(&b.0));
    logs
}

/// The client from `CLIENT_IP`: store one message in a fresh account's swarm and retrieve it
/// from one of its nodes.
async fn store_and_retrieve(network: &Path) {
    let network = NetworkConfig::load(network).unwrap();
    let mut config = TransportConfig {
        http: HttpConfig {
            local_address: Some(IpAddr::V4(CLIENT_IP)),
            ..HttpConfig::default()
        },
        ..TransportConfig::default()
    };
    // Every devnet node is on 127.0.0.1.
    config.paths.subnet_diversity = false;
    let transport = OnionTransport::new(&network, config).unwrap();
    tokio::time::timeout(GUARD, transport.ensure_ready())
        .await
        .expect("building paths hung")
        .unwrap();
    let swarm = OnionSwarm::new(transport, Arc::new(SystemClock));
    let me = Identity::generate(&mut OsRandom);
    let owner = me.session_id();
    let data = b"through onion paths only".to_vec();
    let ack = tokio::time::timeout(GUARD, swarm.store(&owner, 0, &data, now_ms(), 3_600_000))
        .await
        .expect("store hung")
        .unwrap();
    let nodes = swarm.nodes(&owner).await.unwrap();
    assert!(!nodes.is_empty());
    let page = tokio::time::timeout(GUARD, swarm.retrieve(&me, 0, &nodes[0], None))
        .await
        .expect("retrieve hung")
        .unwrap();
    assert!(
        page.messages.iter().any(|m| m.hash == ack.hash),
        "the stored message was not retrieved: {page:?}"
    );
}

#[test]
fn storage_requests_reach_destinations_only_through_relays() {
    // The client's address must be bindable (any 127/8 address is, on Linux).
    std::net::TcpListener::bind((CLIENT_IP, 0)).expect("127.0.0.2 cannot be bound here");
    build_daemons();
    let _turn = one_devnet_at_a_time();
    let net = Devnet::new();
    let dir = net.arg().to_owned();
    let up = logged_devnet(&["up", "--detach", "--nodes", "7", "--dir", &dir]);
    assert!(
        up.status.success(),
        "devnet up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store_and_retrieve(&net.path().join("network.json")));

    let logs = node_logs(net.path());
    assert_eq!(logs.len(), 7, "one log per node");
    let mut entries = Vec::new();
    let mut destinations = 0;
    for (name, seen) in &logs {
        let mut from_client = false;
        for s in seen {
            match s {
                Seen::Http { peer, path } if *peer == CLIENT_IP => {
                    from_client = true;
                    // (3) Nothing but onion requests from the client; no plain storage RPC.
                    assert_ne!(path, "/storage_rpc/v1", "{name}: plain storage RPC");
                    assert_eq!(path, "/onion_req/v2", "{name}: the client asked for {path}");
                }
                Seen::Onion { peer, outcome } if *peer == CLIENT_IP => {
                    // (1) A node the client reached never ran a storage RPC for it: it
                    // relayed (or, e.g. while its node list was catching up, refused).
                    assert_ne!(
                        outcome, "destination",
                        "{name}: an onion request from the client ran as destination"
                    );
                }
                Seen::Onion { peer, outcome } if outcome == "destination" => {
                    // (2) The storage RPC ran only on requests a relay brought.
                    assert_eq!(*peer, NODE_IP, "{name}: destination request from {peer}");
                    destinations += 1;
                }
                Seen::Http { peer, .. } | Seen::Onion { peer, .. } => {
                    assert_eq!(*peer, NODE_IP, "{name}: request from {peer}");
                }
            }
        }
        if from_client {
            entries.push(name.clone());
        }
    }
    assert!(!entries.is_empty(), "no node saw the client at all");
    assert!(
        entries.len() < logs.len(),
        "every node saw the client's connection: {entries:?}"
    );
    // At least the store and the retrieve ran on a destination.
    assert!(destinations >= 2, "{destinations} destination requests");
    // Some entry node relayed the client's requests (a candidate guard may only have refused
    // while its node list caught up; the client then used another).
    assert!(
        logs.iter().flat_map(|(_, seen)| seen).any(|s| matches!(
            s,
            Seen::Onion { peer, outcome } if *peer == CLIENT_IP && outcome == "forwarded"
        )),
        "no entry node relayed a request of the client"
    );
}

/// One node of `network.json`.
#[derive(Debug, Clone)]
struct Listed {
    ed25519: String,
    https_port: u16,
    swarm: Option<u64>,
}

fn read_network(path: &Path) -> Vec<Listed> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| Listed {
            ed25519: n["pubkey_ed25519"].as_str().unwrap().to_owned(),
            https_port: u16::try_from(n["https_port"].as_u64().unwrap()).unwrap(),
            swarm: n["swarm_id"].as_u64(),
        })
        .collect()
}

#[test]
fn right_after_up_writes_reach_exactly_the_swarm_and_onion_requests_work() {
    std::net::TcpListener::bind((CLIENT_IP, 0)).expect("127.0.0.2 cannot be bound here");
    build_daemons();
    let _turn = one_devnet_at_a_time();
    let net = Devnet::new();
    let dir = net.arg().to_owned();
    let up = logged_devnet(&["up", "--detach", "--nodes", "14", "--dir", &dir]);
    assert!(
        up.status.success(),
        "devnet up failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let network_file = net.path().join("network.json");
    let nodes = read_network(&network_file);
    let mut swarms: BTreeMap<u64, Vec<Listed>> = BTreeMap::new();
    for n in &nodes {
        swarms.entry(n.swarm.unwrap()).or_default().push(n.clone());
    }
    assert_eq!(swarms.len(), 2, "14 nodes form two swarms: {nodes:?}");

    let me = Identity::generate(&mut OsRandom);
    let owner = umbra_crypto::AccountId::from(me.session_id());
    let ring = umbra_swarm::SwarmRing::new(swarms.keys().copied());
    let ours = ring.swarm_for_account(owner.as_bytes()).unwrap().unwrap();
    let members = &swarms[&ours];
    assert_eq!(members.len(), 7, "{swarms:?}");
    let outsider = swarms
        .iter()
        .find(|(id, _)| **id != ours)
        .map(|(_, m)| m[0].clone())
        .unwrap();

    let http = storage::client(GUARD);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 1. A signed store through the first member: all 7 members sign the stored hash.
        let data = b"stored the moment the devnet is up".to_vec();
        let hash = umbra_crypto::hash::message_hash(&owner, 2, &data);
        let (status, body) = rpc(
            &http,
            members[0].https_port,
            "store",
            signed_store(&me, &data, now_ms()),
        )
        .await;
        assert_eq!(status, 200, "store through the first member: {body}");
        let signed = body["swarm"].as_object().unwrap();
        assert_eq!(signed.len(), 7, "one result per member: {body}");
        for m in members {
            let r = &signed[&m.ed25519];
            assert_eq!(r["hash"], hash.as_str(), "member {}: {r}", m.ed25519);
            let key: umbra_crypto::Ed25519PublicKey = m.ed25519.parse().unwrap();
            let sig = umbra_crypto::Signature::from_slice(
                &B64.decode(r["signature"].as_str().unwrap()).unwrap(),
            )
            .unwrap();
            umbra_crypto::sign::verify(&key, hash.as_str().as_bytes(), &sig)
                .unwrap_or_else(|e| panic!("member {}: bad signature: {e}", m.ed25519));
        }

        // 2. The other swarm's node refuses it: 421 with the account's swarm
        //    (`storage-rpc.md` §11), and keeps nothing.
        let (status, body) = rpc(
            &http,
            outsider.https_port,
            "store",
            signed_store(&me, b"not for this swarm", now_ms()),
        )
        .await;
        assert_eq!(status, 421, "store to a node of another swarm: {body}");
        let mut told: Vec<&str> = body["snodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["pubkey_ed25519"].as_str().unwrap())
            .collect();
        told.sort_unstable();
        let mut expected: Vec<&str> = members.iter().map(|m| m.ed25519.as_str()).collect();
        expected.sort_unstable();
        assert_eq!(told, expected, "the 421 names the account's swarm");
        assert_eq!(body["swarm"], format!("{ours:x}"));

        // 3. Onion requests work at once.
        store_and_retrieve(&network_file).await;
    });

    // No relay refused a next hop or answered before it had a node list.
    for (name, seen) in node_logs(net.path()) {
        for s in seen {
            if let Seen::Onion { outcome, .. } = s {
                assert!(
                    outcome != "next_node_not_found" && outcome != "not_ready",
                    "{name} refused an onion request right after up: {outcome}"
                );
            }
        }
    }
}
