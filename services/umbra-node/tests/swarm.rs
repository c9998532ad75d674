//! Real `umbra-node` nodes in one process with a real in-process registry (issue 3, "Tests"):
//! they register, follow the signed list and replicate with their swarm over the
//! authenticated peer channel. No timing assertions: every wait polls until its condition
//! holds, under a generous hang guard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use umbra_node::testing::{HANG_GUARD, TestAccount, TestNetwork, eventually, now_ms};
use umbra_store::RetrieveLimits;

/// The hash of a stored message from a store reply (the entry node's own result).
fn stored_hash(body: &Value) -> String {
    let swarm = body["swarm"].as_object().expect("a swarm object");
    let any = swarm
        .values()
        .find_map(|v| v["hash"].as_str())
        .expect("some member's hash");
    any.to_string()
}

/// Stores `data` through node `i` and checks that every listed member acknowledged it.
async fn store_everywhere(
    net: &TestNetwork,
    i: usize,
    acct: &TestAccount,
    data: &[u8],
    members: usize,
) -> String {
    let (status, body) = net.store(i, acct, 0, data).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let swarm = body["swarm"].as_object().unwrap();
    assert_eq!(swarm.len(), members, "one result per member: {body}");
    for (k, v) in swarm {
        assert!(v.get("failed").is_none(), "member {k} failed: {v}");
        assert!(v["signature"].is_string(), "member {k} signs: {v}");
    }
    stored_hash(&body)
}

async fn wait_hashes(net: &TestNetwork, i: usize, acct: &TestAccount, want: &BTreeSet<String>) {
    eventually(
        "a node to hold exactly the expected messages",
        HANG_GUARD,
        || async { Ok(net.hashes(i, acct, 0).await?.as_ref() == Some(want)) },
    )
    .await
    .unwrap();
}

/// What node `i`'s own store holds for the account (whatever the swarm view says).
fn local_hashes(net: &TestNetwork, i: usize, acct: &TestAccount) -> BTreeSet<String> {
    // No count or size limit: everything.
    let limits = RetrieveLimits::default();
    let store = &net.node(i).unwrap().node().unwrap().state().store;
    store
        .retrieve(&acct.pubkey_bytes(), 0, None, limits, now_ms())
        .unwrap()
        .messages
        .into_iter()
        // As the RPC answers show them.
        .map(|m| m.hash.to_string())
        .collect()
}

async fn metrics_text(net: &TestNetwork, i: usize) -> String {
    reqwest::Client::new()
        .get(net.node(i).unwrap().metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l[name.len()..].trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_one_member_is_served_by_every_member() {
    let net = TestNetwork::start(3).await.unwrap();
    net.wait_until_settled().await.unwrap();
    let epoch = net.registry().list().unwrap().list.epoch;

    // Every node shows the registry's swarm: same swarm id, three members, the list's epoch.
    let acct = TestAccount::new(11);
    let mut swarms = BTreeSet::new();
    for i in 0..3 {
        let (status, body) = net
            .call(i, "get_swarm", json!({"pubkey": acct.pubkey_hex()}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["snodes"].as_array().unwrap().len(), 3, "{body}");
        swarms.insert(body["swarm"].as_str().unwrap().to_string());
        let state = net.node(i).unwrap().node().unwrap().state().clone();
        assert_eq!(state.list_epoch(), epoch);
    }
    assert_eq!(swarms.len(), 1);

    let mut want = BTreeSet::new();
    for (n, entry) in [0usize, 1, 2, 0].into_iter().enumerate() {
        let data = format!("message {n}");
        want.insert(store_everywhere(&net, entry, &acct, data.as_bytes(), 3).await);
    }
    // Fan-out is synchronous: every member holds them as soon as the store is acknowledged.
    for i in 0..3 {
        assert_eq!(net.hashes(i, &acct, 0).await.unwrap().unwrap(), want);
    }

    // The replica's metrics are on /metrics; the peer channel served the forwards.
    let text = metrics_text(&net, 0).await;
    assert_eq!(
        metric(&text, "umbra_node_registry_epoch"),
        Some(epoch as f64)
    );
    assert_eq!(metric(&text, "umbra_node_swarm_members"), Some(3.0));
    assert!(
        metric(&text, "umbra_replica_forwards_ok_total").unwrap() >= 4.0,
        "{text}"
    );
    assert!(metric(&text, "umbra_replica_requests_served_total").is_some());

    // The old JSON peer endpoints are gone from the HTTPS listener.
    let https = umbra_node::testing::https_client().unwrap();
    let resp = https
        .post(format!(
            "{}/umbra/peer/v1/digests",
            net.node(1).unwrap().base_url()
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // The gRPC peer port (the list's storage_lmq_port) refuses a node that is not in the list
    // at the TLS handshake (its certificate's key is not listed), stores nothing, and counts
    // the refusal.
    let key1 = net
        .node(1)
        .unwrap()
        .node()
        .unwrap()
        .state()
        .identity
        .ed25519_public();
    let list = net.registry().list().unwrap();
    let entry = list
        .list
        .nodes
        .iter()
        .find(|e| e.pubkey_ed25519 == key1)
        .unwrap()
        .clone();
    let stranger = umbra_replica::client::PeerClient::new(
        &umbra_crypto::Identity::from_seed(&[0x42; 32]),
        std::time::Duration::from_secs(10),
    );
    let other = TestAccount::new(12);
    let forward = umbra_proto::umbra::peer::v2::ForwardRequest {
        method: "store".into(),
        params_json: serde_json::to_vec(&other.store_params(0, now_ms(), 86_400_000, b"x"))
            .unwrap(),
    };
    // (Members whose list arrived before this node's may have been refused already: count
    // from here.)
    let refused = |t: &str| metric(t, "umbra_replica_refused_handshake_total").unwrap();
    let before = refused(&metrics_text(&net, 1).await);
    let r = stranger.forward(&entry, &forward).await;
    assert!(
        matches!(r, Err(umbra_replica::ReplicaError::PeerUnreachable { .. })),
        "{r:?}"
    );
    assert!(local_hashes(&net, 1, &other).is_empty());
    // (Counted by the accepting task, maybe a moment after the client gave up.)
    for tries in 0.. {
        let text = metrics_text(&net, 1).await;
        if refused(&text) > before {
            break;
        }
        assert!(tries < 400, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_back_on_its_data_dir_catches_up_and_a_delete_is_not_resurrected() {
    let mut net = TestNetwork::start(3).await.unwrap();
    net.wait_until_settled().await.unwrap();
    let acct = TestAccount::new(21);
    let doomed = store_everywhere(&net, 0, &acct, b"to be deleted", 3).await;
    let kept = store_everywhere(&net, 1, &acct, b"kept", 3).await;

    // Node 2 goes away (a graceful stop leaves the registry); the swarm goes on with two.
    net.stop_node(2).await.unwrap();
    let gone = net.key(2);
    let list = net.registry().list().unwrap();
    let entry = list.list.nodes.iter().find(|e| e.pubkey_ed25519 == gone);
    assert_eq!(
        entry.map(|e| e.active),
        Some(false),
        "node 2 left the registry"
    );
    net.wait_until_settled().await.unwrap();
    let mut missed = BTreeSet::new();
    for n in 0..5 {
        let data = format!("while node 2 was away {n}");
        missed.insert(store_everywhere(&net, n % 2, &acct, data.as_bytes(), 2).await);
    }
    let signed = format!("delete{doomed}");
    let (status, body) = net
        .call(
            0,
            "delete",
            json!({
                "pubkey": acct.pubkey_hex(),
                "pubkey_ed25519": acct.ed25519_hex(),
                "messages": [doomed],
                "signature": acct.sign_b64(signed.as_bytes()),
            }),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let deleted: Vec<Value> = body["swarm"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["deleted"].clone())
        .collect();
    assert_eq!(deleted, vec![json!([doomed]); 2], "{body}");

    // Back on the same data dir: it still holds the deleted message and misses the new ones
    // until reconciliation brings it up to date.
    net.start_node(2).await.unwrap();
    net.wait_until_settled().await.unwrap();
    let mut want = missed.clone();
    want.insert(kept.clone());
    for i in 0..3 {
        wait_hashes(&net, i, &acct, &want).await;
    }
    let state = net
        .node(2)
        .unwrap()
        .node()
        .unwrap()
        .replica()
        .unwrap()
        .metrics();
    assert!(
        state.messages_pulled >= missed.len() as u64,
        "node 2 pulled what it missed: {state:?}"
    );
    assert!(state.tombstones_applied >= 1, "and the deletion: {state:?}");

    // Further full rounds on every node change nothing: the delete stays deleted everywhere.
    for i in 0..3 {
        let replica = net
            .node(i)
            .unwrap()
            .node()
            .unwrap()
            .replica()
            .unwrap()
            .clone();
        let report = replica.reconcile_round().await;
        assert_eq!(report.peers_reachable, 2, "{report:?}");
        assert_eq!(report.messages_pulled, 0, "{report:?}");
    }
    for i in 0..3 {
        let got = net.hashes(i, &acct, 0).await.unwrap().unwrap();
        assert_eq!(got, want, "node {i}");
        assert!(!got.contains(&doomed));
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_on_its_data_dir_serves_everything_it_acknowledged() {
    let mut net = TestNetwork::start(2).await.unwrap();
    net.wait_until_settled().await.unwrap();
    let accts: Vec<TestAccount> = (0..4).map(|s| TestAccount::new(100 + s)).collect();
    let mut want: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for n in 0..20usize {
        let a = n % accts.len();
        let data = format!("acknowledged {n}");
        let h = store_everywhere(&net, 0, &accts[a], data.as_bytes(), 2).await;
        want.entry(a).or_default().insert(h);
    }
    // Both go down; node 0 comes back alone, so nothing can be pulled from a peer: what it
    // serves is what it kept.
    net.stop_node(1).await.unwrap();
    net.stop_node(0).await.unwrap();
    net.start_node(0).await.unwrap();
    net.wait_until_settled().await.unwrap();
    for (a, hashes) in &want {
        assert_eq!(
            net.hashes(0, &accts[*a], 0).await.unwrap().as_ref(),
            Some(hashes)
        );
    }
    let epoch_file = net
        .node(0)
        .unwrap()
        .data_dir()
        .join(umbra_node::membership::EPOCH_FILE);
    // The newest epoch it accepted is kept with the registry's key, for the next restart.
    let text = std::fs::read_to_string(epoch_file).unwrap();
    let mut parts = text.split_whitespace();
    assert_eq!(
        parts.next(),
        Some(hex::encode(net.registry().pubkey()).as_str())
    );
    let persisted: u64 = parts.next().unwrap().parse().unwrap();
    assert!(persisted > 0 && persisted <= net.registry().list().unwrap().list.epoch);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_split_moves_every_message_to_its_new_swarm() {
    let mut net = TestNetwork::start(4).await.unwrap();
    net.wait_until_settled().await.unwrap();
    let accts: Vec<TestAccount> = (0..24).map(|s| TestAccount::new(1000 + s)).collect();
    let mut want: Vec<BTreeSet<String>> = vec![BTreeSet::new(); accts.len()];
    for (a, acct) in accts.iter().enumerate() {
        for n in 0..2 {
            let data = format!("account {a} message {n}");
            want[a].insert(store_everywhere(&net, a % 4, acct, data.as_bytes(), 4).await);
        }
    }
    let before = net.node_swarm(0).unwrap().unwrap();

    // Session's rules split one swarm once 14 nodes are active.
    while net.len() < 14 {
        net.add_node().await.unwrap();
    }
    net.wait_for_swarms(2).await.unwrap();

    let mut moved = 0;
    for (a, acct) in accts.iter().enumerate() {
        let owners = net.owners_of(acct).unwrap();
        assert!(
            owners.len() >= 5,
            "a swarm has at least 5 members: {owners:?}"
        );
        let swarm = net.node_swarm(owners[0]).unwrap().unwrap();
        if swarm != before {
            moved += 1;
        }
        for &i in &owners {
            wait_hashes(&net, i, acct, &want[a]).await;
        }
        // The other swarm's members handed the account over and dropped their copies.
        for i in net.running().into_iter().filter(|i| !owners.contains(i)) {
            eventually(
                "a non-member to drop a handed-over account",
                HANG_GUARD,
                || async { Ok(local_hashes(&net, i, acct).is_empty()) },
            )
            .await
            .unwrap();
        }
    }
    assert!(moved > 0, "some accounts map to the new swarm");
    let handed: u64 = net
        .running()
        .into_iter()
        .map(|i| {
            let n = net.node(i).unwrap().node().unwrap();
            n.replica().unwrap().metrics().handover_dropped
        })
        .sum();
    assert!(handed > 0, "messages were handed over between the swarms");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_peer_listener_carries_replication_outside_the_client_rate_limit() {
    let mut net = TestNetwork::start(0).await.unwrap();
    for _ in 0..2 {
        net.add_node_with(|c| {
            c.peer_listen = Some("127.0.0.1:0".parse().unwrap());
            // A client gets one request per second; swarm peers are not limited at all.
            c.rate_limit.burst = 1;
            c.rate_limit.per_second = 1;
        })
        .await
        .unwrap();
    }
    net.wait_until_settled().await.unwrap();
    // The registry lists a peer port other than the HTTPS port.
    let list = net.registry().list().unwrap();
    for e in &list.list.nodes {
        assert_ne!(e.storage_port, e.storage_lmq_port, "{e:?}");
    }
    let acct = TestAccount::new(77);
    let h = store_everywhere(&net, 0, &acct, b"over the peer port", 2).await;
    let stored = local_hashes(&net, 1, &acct);
    assert_eq!(stored, BTreeSet::from([h]));
    // Many rounds of peer requests from the same address as the client, back to back: none is
    // refused (neither by the client rate limit nor as anything else).
    let replica = net
        .node(1)
        .unwrap()
        .node()
        .unwrap()
        .replica()
        .unwrap()
        .clone();
    for _ in 0..8 {
        let report = replica.reconcile_round().await;
        assert_eq!(
            (report.peers_reachable, report.errors),
            (1, 0),
            "{report:?}"
        );
    }

    // The peer port answers grpc.health.v1 over TLS, to a client without a node certificate
    // that checks the server's key: both nodes know their swarm, so SERVING.
    for e in &list.list.nodes {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let addr = std::net::SocketAddr::from((e.public_ip, e.storage_lmq_port));
        let channel = umbra_replica::tls::channel(None, e.pubkey_ed25519, addr, |e| e).unwrap();
        let mut health = HealthClient::new(channel);
        for service in ["", umbra_node::peer::PEER_SERVICE] {
            let r = health
                .check(HealthCheckRequest {
                    service: service.to_owned(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.status(), ServingStatus::Serving, "{service:?} of {e:?}");
        }
        // Plaintext HTTP/2 (h2c) to the peer port gets nothing, not even the health status.
        let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .timeout(std::time::Duration::from_secs(5));
        if let Ok(channel) = plain.connect().await {
            let r = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            assert!(r.is_err(), "{r:?}");
        }
    }
    net.shutdown().await;
}
