#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The transport over real HTTPS to in-process storage nodes (`umbra_node::testing`) that serve
//! `POST /onion_req/v2`: store and retrieve through 3-hop paths, and a retry on the other path
//! when a relay goes down. The node list comes from a stand-in registry serving a list signed
//! by a test key (the registry service itself is tested in umbra-registry).
//!
//! The client connects from 127.0.0.2 and the nodes from 127.0.0.1, so the nodes' own event
//! logs show who saw the client's connection: only guards, which never see a request.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};
use umbra_client::{
    BoxFuture, Destination, HttpConfig, HttpLink, LinkError, LinkReply, OnionTransport, PathConfig,
    RegistrySource, Request, Response, SystemClock, TransportConfig,
};
use umbra_crypto::{Identity, SeededRandom};
use umbra_node::onion::Outcome;
use umbra_node::testing::{TestAccount, TestNode, now_ms};
use umbra_node::{NodeInfo, SwarmView};
use umbra_nodelist::list::{NodeEntry, NodeList, SignedNodeList, TrustPolicy};

const SWARM_A: u64 = 0x1000_0000_0000_0000;
const SWARM_B: u64 = 0x9000_0000_0000_0000;
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

struct StaticRegistry(Vec<u8>);

impl RegistrySource for StaticRegistry {
    fn fetch_list(&self) -> BoxFuture<'_, Result<LinkReply, LinkError>> {
        Box::pin(std::future::ready(Ok(LinkReply {
            status: 200,
            body: self.0.clone(),
        })))
    }
}

struct Net {
    nodes: Vec<Option<TestNode>>,
    infos: Vec<NodeInfo>,
    registry: Identity,
    list: SignedNodeList,
}

async fn start(swarm_of: &[u64]) -> Net {
    let mut nodes = Vec::new();
    for _ in swarm_of {
        nodes.push(TestNode::start().await.unwrap());
    }
    let infos: Vec<NodeInfo> = nodes
        .iter()
        .map(|n| {
            let node = n.node().unwrap();
            let id = &node.state().identity;
            NodeInfo {
                pubkey_ed25519: id.ed25519_public(),
                pubkey_x25519: id.x25519_public(),
                ip: Ipv4Addr::LOCALHOST,
                https_port: node.client_addr().port(),
                omq_port: node.client_addr().port(),
            }
        })
        .collect();
    let mut swarms: BTreeMap<u64, Vec<NodeInfo>> = BTreeMap::new();
    for (info, s) in infos.iter().zip(swarm_of) {
        swarms.entry(*s).or_default().push(info.clone());
    }
    for (n, info) in nodes.iter().zip(&infos) {
        let view = SwarmView::new(info.pubkey_ed25519, swarms.clone());
        n.node().unwrap().state().swarm.set(view);
    }
    let registry = Identity::generate(&mut SeededRandom::new(77));
    let entries = infos
        .iter()
        .zip(swarm_of)
        .map(|(i, s)| NodeEntry {
            pubkey_ed25519: i.pubkey_ed25519,
            pubkey_x25519: i.pubkey_x25519,
            public_ip: i.ip,
            storage_port: i.https_port,
            storage_lmq_port: i.omq_port,
            swarm_id: *s,
            active: true,
            version: [2, 8, 0],
        })
        .collect();
    let list = SignedNodeList::sign(NodeList::new(1, 1, entries), &registry);
    Net {
        nodes: nodes.into_iter().map(Some).collect(),
        infos,
        registry,
        list,
    }
}

fn transport(net: &Net) -> OnionTransport {
    let cfg = TransportConfig {
        paths: PathConfig {
            subnet_diversity: false,
            ..PathConfig::default()
        },
        ..TransportConfig::default()
    };
    let http = HttpConfig {
        local_address: Some(IpAddr::V4(CLIENT_IP)),
        ..HttpConfig::default()
    };
    let link = Arc::new(HttpLink::new("http://registry.invalid", &http).unwrap());
    OnionTransport::with_parts(
        TrustPolicy::single(net.registry.ed25519_public()),
        cfg,
        link,
        Arc::new(StaticRegistry(serde_json::to_vec(&net.list).unwrap())),
        Arc::new(SystemClock),
        Box::new(SeededRandom::new(5)),
    )
    .unwrap()
}

/// An account whose swarm is `swarm` in `list`.
fn account_in(list: &NodeList, swarm: u64) -> TestAccount {
    (1..10_000)
        .map(TestAccount::new)
        .find(|a| {
            list.swarm_for_account(&a.pubkey_bytes())
                .unwrap()
                .is_some_and(|(s, _)| s == swarm)
        })
        .unwrap()
}

fn ok_json(r: Response) -> Value {
    match r {
        Response::Storage(s) => {
            assert_eq!(s.status, 200, "{s:?}");
            s.json().unwrap()
        }
        other => panic!("{other:?}"),
    }
}

fn rpc(method: &str, params: Value) -> Request {
    Request::Storage(
        json!({"method": method, "params": params})
            .to_string()
            .into_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_retrieve_through_real_nodes_and_survive_a_dead_relay() {
    // One node alone in swarm A (so store and retrieve meet without replication), six in B.
    let net = start(&[
        SWARM_A, SWARM_B, SWARM_B, SWARM_B, SWARM_B, SWARM_B, SWARM_B,
    ])
    .await;
    let t = transport(&net);
    t.ensure_ready().await.unwrap();
    assert_eq!(t.paths().len(), 2);

    let acct = account_in(&net.list.list, SWARM_A);
    let acc = acct.pubkey_bytes();
    assert_eq!(
        t.swarm_of(&acc)[0].pubkey_ed25519,
        net.infos[0].pubkey_ed25519
    );
    let now = now_ms();
    let stored = ok_json(
        t.send(
            Destination::Swarm(acc),
            rpc(
                "store",
                acct.store_params(0, now, 3_600_000, b"hello through onions"),
            ),
        )
        .await
        .unwrap(),
    );
    assert!(
        stored.get("hash").is_some() || stored.get("swarm").is_some(),
        "{stored}"
    );
    let got = ok_json(
        t.send(
            Destination::Swarm(acc),
            rpc("retrieve", acct.retrieve_params(0, now_ms())),
        )
        .await
        .unwrap(),
    );
    let want = base64::engine::general_purpose::STANDARD.encode(b"hello through onions");
    let msgs = got["messages"].as_array().unwrap();
    assert!(msgs.iter().any(|m| m["data"] == want), "{got}");

    // What the nodes saw: the client's connection reached only guards, which relayed and never
    // saw a storage request; every destination was reached from another node.
    let guards: Vec<[u8; 32]> = t.guards().iter().map(|g| g.node).collect();
    let mut destinations = 0;
    for (node, info) in net.nodes.iter().zip(&net.infos) {
        for ev in node
            .as_ref()
            .unwrap()
            .node()
            .unwrap()
            .state()
            .onion
            .events()
        {
            if ev.peer.ip() == IpAddr::V4(CLIENT_IP) {
                assert!(
                    guards.contains(&info.pubkey_ed25519),
                    "the client reached a non-guard"
                );
                assert_eq!(ev.outcome, Outcome::Forwarded);
                assert!(!ev.saw_plaintext_rpc);
                assert!(
                    ev.http2,
                    "the client multiplexes on pooled HTTP/2 connections"
                );
            }
            if ev.outcome == Outcome::Destination {
                destinations += 1;
                assert_ne!(ev.peer.ip(), IpAddr::V4(CLIENT_IP));
                assert!(ev.saw_plaintext_rpc);
            }
        }
    }
    assert_eq!(destinations, 4, "two path tests, store, retrieve");

    // Kill a middle relay (not the account's only node): every request still succeeds (on the
    // other path, or a rebuilt one), and the dead relay is struck out and left off every path.
    let owner = net.infos[0].pubkey_ed25519;
    let (path, dead) = t
        .paths()
        .iter()
        .find_map(|p| {
            p.nodes[1..]
                .iter()
                .find(|n| n.pubkey_ed25519 != owner)
                .map(|n| (p.clone(), n.pubkey_ed25519))
        })
        .unwrap();
    let idx = net
        .infos
        .iter()
        .position(|i| i.pubkey_ed25519 == dead)
        .unwrap();
    let mut net = net;
    let _dir = net.nodes[idx].take().unwrap().stop().await;
    for _ in 0..30 {
        let got = ok_json(
            t.send(
                Destination::Swarm(acc),
                rpc("retrieve", acct.retrieve_params(0, now_ms())),
            )
            .await
            .unwrap(),
        );
        assert!(got["messages"].as_array().is_some());
    }
    assert!(t.is_failed(&dead), "strikes: {}", t.node_strikes(&dead));
    assert!(t.paths().iter().all(|p| !p.contains(&dead)));
    assert!(
        !t.is_failed(&path.nodes[0].pubkey_ed25519),
        "its guard keeps its standing"
    );
}

/// Six one-node swarms: whichever swarm owns an account, the node that holds its messages is
/// the node its owner retrieves from (no replication between test nodes is needed).
const ONE_NODE_SWARMS: [u64; 6] = [
    0x1000_0000_0000_0000,
    0x3000_0000_0000_0000,
    0x5000_0000_0000_0000,
    0x9000_0000_0000_0000,
    0xb000_0000_0000_0000,
    0xd000_0000_0000_0000,
];

/// A messenger on `net` whose profile lives in `dir`.
fn messenger(
    net: &Net,
    dir: &std::path::Path,
    seed: u64,
) -> Arc<umbra_client::messenger::Messenger> {
    use umbra_client::messenger::{KdfParams, Messenger, OnionSwarm, Profile};
    let (profile, _phrase) = Profile::create(
        dir,
        None,
        KdfParams::default(),
        &mut SeededRandom::new(seed),
    )
    .unwrap();
    let clock = Arc::new(SystemClock);
    let swarm = OnionSwarm::new(transport(net), clock.clone());
    Arc::new(Messenger::new(
        profile,
        Arc::new(swarm),
        clock,
        Box::new(SeededRandom::new(seed + 1)),
    ))
}

/// The messenger's waiting loop long-polls through the onion path: the recipient's retrieve is
/// held at its node (seen from the node), and the message sent meanwhile wakes it up (the
/// node counts a wake-up, not a deadline) and is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_recipient_is_woken_by_the_message_through_onion_paths() {
    use umbra_client::messenger::{Event, MessageStatus};
    let net = start(&ONE_NODE_SWARMS).await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = messenger(&net, dirs.0.path(), 100);
    let bob = messenger(&net, dirs.1.path(), 200);
    let waiting = || -> usize {
        net.nodes
            .iter()
            .flatten()
            .map(|n| n.node().unwrap().state().long_poll.waiting())
            .sum()
    };
    let woken = || -> u64 {
        net.nodes
            .iter()
            .flatten()
            .map(|n| n.node().unwrap().state().long_poll.woken())
            .sum()
    };

    let receiver = {
        let bob = bob.clone();
        tokio::spawn(async move { bob.receive_wait(std::time::Duration::from_secs(120)).await })
    };
    let guard = std::time::Instant::now();
    while waiting() == 0 {
        assert!(
            guard.elapsed() < std::time::Duration::from_secs(120),
            "the recipient's retrieve never waited at a node"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(woken(), 0);
    let sent = alice
        .send_text(&bob.session_id(), "are you there?")
        .await
        .unwrap();
    assert_eq!(sent.status, MessageStatus::Sent);
    let events = receiver.await.unwrap().unwrap();
    let shown: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { message, request } => Some((message.body.clone(), *request)),
            _ => None,
        })
        .collect();
    assert_eq!(shown, vec![("are you there?".to_string(), true)]);
    assert!(woken() >= 1, "answered by a wake-up, not a deadline");
}

/// Disappearing messages on real nodes: a message sent with a 10 s after-send timer is gone
/// after 10 s from both users' histories and from the swarms (the nodes no longer return it
/// to a retrieve from the start), while the message before the timer stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disappearing_message_vanishes_on_both_sides_and_in_the_swarms() {
    use umbra_client::messenger::{Disappearing, Event, SwarmApi as _};
    let net = start(&ONE_NODE_SWARMS).await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = messenger(&net, dirs.0.path(), 300);
    let bob = messenger(&net, dirs.1.path(), 400);
    let (a, b) = (alice.session_id(), bob.session_id());
    let wait = std::time::Duration::from_secs(60);

    alice.send_text(&b, "stays").await.unwrap();
    bob.receive_wait(wait).await.unwrap();
    bob.accept_request(&a).await.unwrap();
    let mode = Disappearing::AfterSend { seconds: 10 };
    alice.set_disappearing(&b, mode).await.unwrap();
    let vanishing = alice.send_text(&b, "vanishes").await.unwrap();
    let mut got_timer = false;
    while bob.history(&a).unwrap().len() < 2 {
        for e in bob.receive_wait(wait).await.unwrap() {
            got_timer |= e
                == Event::DisappearingChanged {
                    conversation: a,
                    setting: mode,
                };
        }
    }
    assert!(got_timer, "the timer change reached the other side");
    let hash_at_bob = bob.history(&a).unwrap()[1].hash.clone().unwrap();
    assert_eq!(
        bob.history(&a).unwrap()[1].expires_at_ms,
        Some(vanishing.sent_ms + 10_000)
    );

    // Past the timer (by the wall clock the nodes and the messengers read).
    let due = vanishing.sent_ms + 10_000 + 500;
    while umbra_node::testing::now_ms() <= i64::try_from(due).unwrap() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let bodies = |m: &umbra_client::messenger::Messenger, with| -> Vec<String> {
        m.history(with)
            .unwrap()
            .into_iter()
            .map(|m| m.body)
            .collect()
    };
    assert_eq!(bodies(&alice, &b), vec!["stays".to_string()]);
    assert_eq!(bodies(&bob, &a), vec!["stays".to_string()]);

    // Every node of the recipient's swarm returns the message that stays, not the other.
    let stays_at_bob = bob.history(&a).unwrap()[0].hash.clone().unwrap();
    let bob_identity = Identity::generate(&mut SeededRandom::new(400));
    assert_eq!(
        bob_identity.session_id(),
        b,
        "the profile's identity, from its seed"
    );
    let swarm = umbra_client::messenger::OnionSwarm::new(transport(&net), Arc::new(SystemClock));
    let nodes = swarm.nodes(&b).await.unwrap();
    assert!(!nodes.is_empty());
    for node in &nodes {
        let page = swarm.retrieve(&bob_identity, 0, node, None).await.unwrap();
        let hashes: Vec<&str> = page.messages.iter().map(|m| m.hash.as_str()).collect();
        assert!(hashes.contains(&stays_at_bob.as_str()), "{hashes:?}");
        assert!(
            !hashes.contains(&hash_at_bob.as_str()),
            "expired in the swarm"
        );
    }
}
