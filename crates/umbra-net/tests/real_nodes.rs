#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The transport over real HTTPS to in-process storage nodes (`umbra_node::testing`) that serve
//! `POST /onion_req/v2`: store and retrieve through 3-hop paths, and a retry on the other path
//! when a relay goes down. The node list comes from a stand-in registry serving a list signed
//! by a test key (the registry service itself is tested in umbra-registry).

mod common;

use base64::Engine as _;
use serde_json::{Value, json};
use umbra_net::{Destination, Request, Response};
use umbra_node::onion::Outcome;
use umbra_node::testing::{TestAccount, now_ms};
use umbra_nodelist::list::NodeList;

use std::net::IpAddr;

use common::{CLIENT_IP, start, transport};

const SWARM_A: u64 = 0x1000_0000_0000_0000;
const SWARM_B: u64 = 0x9000_0000_0000_0000;

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
    let guards: Vec<umbra_crypto::Ed25519PublicKey> = t.guards().iter().map(|g| g.node).collect();
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
