//! In-process swarm tests: fan-out, catch-up by anti-entropy, deletes not resurrected, swarm
//! changes, convergence. No timing assertions: every round is driven explicitly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use base64::Engine as _;
use common::{DAY, Net, SWARM_A, SWARM_B, hash_of, owner_at, store_params};
use serde_json::json;
use umbra_crypto::MessageHash;
use umbra_replica::{FailureKind, MemberOutcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_replicated_to_every_member_with_signed_results() {
    let mut net = Net::start(3).await;
    net.assign(&[Some(SWARM_A); 3]);
    let owner = owner_at(SWARM_A + 5, 1);
    let now = net.now();
    let (local, results) = net.nodes[0]
        .write("store", store_params(&owner, 0, b"hello swarm", now), now)
        .await;
    assert_eq!(local.status, 200);
    let hash = hash_of(&owner, 0, b"hello swarm");
    assert_eq!(results.len(), 2, "one result per other member");
    let keys: BTreeSet<umbra_crypto::Ed25519PublicKey> = results.iter().map(|r| r.pubkey).collect();
    assert_eq!(keys, BTreeSet::from([net.nodes[1].key, net.nodes[2].key]));
    for r in &results {
        let MemberOutcome::Replied { status, body } = &r.outcome else {
            panic!("member failed: {:?}", r.outcome);
        };
        assert_eq!(*status, 200);
        assert_eq!(body["hash"], hash.as_str());
        let sig = base64::engine::general_purpose::STANDARD
            .decode(body["signature"].as_str().unwrap())
            .unwrap();
        umbra_crypto::sign::verify_slices(r.pubkey.as_bytes(), hash.as_str().as_bytes(), &sig)
            .unwrap();
    }
    let map = umbra_replica::member_results_json(&results);
    assert_eq!(map.len(), 2);
    assert!(map.contains_key(&hex::encode(net.nodes[1].key)));
    for n in &net.nodes {
        assert_eq!(n.hashes(&owner, 0, now), BTreeSet::from([hash]));
    }
    assert_eq!(net.nodes[0].replica.metrics().forwards_ok, 2);
    assert!(net.nodes[1].replica.metrics().requests_served >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_was_down_catches_up_by_reconciliation() {
    let mut net = Net::start(3).await;
    net.assign(&[Some(SWARM_A); 3]);
    let now = net.now();
    let owners: Vec<_> = (0..4).map(|i| owner_at(SWARM_A + i, i)).collect();
    // One message everyone has, then node 2 goes down.
    net.nodes[0]
        .write("store", store_params(&owners[0], 0, b"before", now), now)
        .await;
    net.nodes[2].set_up(false);
    let mut written = vec![hash_of(&owners[0], 0, b"before")];
    for (i, o) in owners.iter().enumerate() {
        for ns in [0i16, 3] {
            let data = format!("while down {i} {ns}");
            let entry = &net.nodes[i % 2];
            let (local, results) = entry
                .write("store", store_params(o, ns, data.as_bytes(), now), now)
                .await;
            assert_eq!(local.status, 200);
            let down = results
                .iter()
                .find(|r| r.pubkey == net.nodes[2].key)
                .unwrap();
            assert!(
                matches!(down.outcome, MemberOutcome::Failed(_)),
                "a down member fails without failing the write"
            );
            let up = results
                .iter()
                .find(|r| r.pubkey != net.nodes[2].key)
                .unwrap();
            assert!(matches!(up.outcome, MemberOutcome::Replied { .. }));
            written.push(hash_of(o, ns, data.as_bytes()));
        }
    }
    // An expiry change while down, too.
    let later = now + 20 * DAY;
    net.nodes[0]
        .write(
            "expire",
            json!({"pubkey": hex::encode(owners[0].as_bytes()), "messages": [written[0].clone()], "expiry": later}),
            now,
        )
        .await;
    assert_ne!(net.nodes[0].digests(now), net.nodes[2].digests(now));
    // While it is down, the others' rounds count it unreachable.
    let r0 = net.nodes[0].replica.reconcile_round().await;
    assert_eq!((r0.peers, r0.peers_reachable), (2, 1));
    assert_eq!(net.nodes[0].replica.metrics().peers_reachable, 1);

    net.nodes[2].set_up(true);
    net.clock.advance(1_000);
    let now = net.now();
    let r = net.nodes[2].replica.reconcile_round().await;
    assert_eq!(r.peers_reachable, 2);
    assert_eq!(r.messages_pulled, written.len() - 1);
    assert_eq!(r.expiries_applied, 1);
    let d0 = net.nodes[0].digests(now);
    assert!(!d0.is_empty());
    for n in &net.nodes {
        assert_eq!(n.digests(now), d0, "all members converge");
    }
    let expiries = net.nodes[2]
        .store
        .get_expiries(&owners[0], &[written[0]], now)
        .unwrap();
    assert_eq!(expiries.get(&written[0]), Some(&later));
    let m = net.nodes[2].replica.metrics();
    assert_eq!(m.messages_pulled as usize, written.len() - 1);
    assert!(m.buckets_compared > 0 && m.rounds == 1);
    // Its streams are counted: per peer digest pages, and with the peers that have the
    // messages, entries and replicas; what came in carries at least the pulled bodies.
    assert!(m.reconcile_asks >= 2 + 2, "{m:?}");
    assert!(m.reconcile_bytes_sent > 0, "{m:?}");
    let pulled_payload: u64 = written[1..].len() as u64 * "while down 0 0".len() as u64;
    assert!(m.reconcile_replica_bytes_received > pulled_payload, "{m:?}");
    assert!(m.reconcile_bytes_received > m.reconcile_replica_bytes_received);
    // A second round finds nothing to do, and moves fewer bytes.
    let again = net.nodes[2].replica.reconcile_round().await;
    assert_eq!((again.messages_pulled, again.buckets_differing), (0, 0));
    let m2 = net.nodes[2].replica.metrics();
    let second = m2.reconcile_bytes_received - m.reconcile_bytes_received;
    assert!(second > 0 && second < m.reconcile_bytes_received, "{m2:?}");
    assert!(m2.reconcile_asks > m.reconcile_asks, "{m2:?}");
    assert_eq!(
        m2.reconcile_replica_bytes_received, m.reconcile_replica_bytes_received,
        "no message is fetched again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_is_not_resurrected_by_reconciliation() {
    let mut net = Net::start(3).await;
    net.assign(&[Some(SWARM_A); 3]);
    let now = net.now();
    let owner = owner_at(SWARM_A + 9, 7);
    for data in [b"keep".as_slice(), b"delete me"] {
        net.nodes[0]
            .write("store", store_params(&owner, 1, data, now), now)
            .await;
    }
    let keep = hash_of(&owner, 1, b"keep");
    let gone = hash_of(&owner, 1, b"delete me");
    for n in &net.nodes {
        assert_eq!(n.hashes(&owner, 1, now).len(), 2);
    }
    // Node 2 misses the delete.
    net.nodes[2].set_up(false);
    net.clock.advance(1_000);
    let now = net.now();
    let (local, results) = net.nodes[0]
        .write(
            "delete",
            json!({"pubkey": hex::encode(owner.as_bytes()), "messages": [gone.clone()]}),
            now,
        )
        .await;
    assert_eq!(local.body["deleted"], json!([gone.clone()]));
    assert!(results.iter().any(|r| r.pubkey == net.nodes[1].key
        && matches!(&r.outcome, MemberOutcome::Replied { body, .. } if body["deleted"] == json!([gone.clone()]))));
    net.nodes[2].set_up(true);
    // The members that deleted reconcile first, with a peer that still holds the message.
    for i in [0, 1] {
        let r = net.nodes[i].replica.reconcile_round().await;
        assert_eq!(
            r.messages_pulled, 0,
            "node {i} must not pull the deleted message back"
        );
        assert_eq!(net.nodes[i].hashes(&owner, 1, now), BTreeSet::from([keep]));
    }
    // Then the one that missed it learns the tombstone.
    let r = net.nodes[2].replica.reconcile_round().await;
    assert!(r.tombstones_applied >= 1);
    for _ in 0..2 {
        for n in &net.nodes {
            n.replica.reconcile_round().await;
        }
    }
    for n in &net.nodes {
        assert_eq!(n.hashes(&owner, 1, now), BTreeSet::from([keep]));
    }
    let d = net.nodes[0].digests(now);
    for n in &net.nodes {
        assert_eq!(n.digests(now), d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_changes_move_messages_with_none_lost() {
    // Nodes 0-2 form swarm A; nodes 3-5 are registered but not yet in a swarm.
    let mut net = Net::start(6).await;
    net.assign(&[
        Some(SWARM_A),
        Some(SWARM_A),
        Some(SWARM_A),
        None,
        None,
        None,
    ]);
    let now = net.now();
    // Accounts all around the ring: with one swarm they all map to A.
    let owners: Vec<_> = (0..12u64)
        .map(|i| owner_at(i.wrapping_mul(u64::MAX / 12), i + 100))
        .collect();
    let mut all: Vec<(usize, MessageHash)> = Vec::new();
    for (i, o) in owners.iter().enumerate() {
        for k in 0..2 {
            let data = format!("msg {i} {k}");
            net.nodes[i % 3]
                .write("store", store_params(o, 0, data.as_bytes(), now), now)
                .await;
            all.push((i, hash_of(o, 0, data.as_bytes())));
        }
    }
    // A delete in swarm A before the change must stay deleted in swarm B, even though node 2
    // missed it and hands the stale copy over first.
    let deleted = all.remove(all.iter().position(|(i, _)| *i == 8).unwrap());
    net.nodes[2].set_up(false);
    net.nodes[0]
        .write(
            "delete",
            json!({"pubkey": hex::encode(owners[8].as_bytes()), "messages": [deleted.1.clone()]}),
            now,
        )
        .await;

    net.nodes[2].set_up(true);
    assert!(net.nodes[2].hashes(&owners[8], 0, now).contains(&deleted.1));

    // Epoch 2: nodes 3-5 form swarm B; the accounts near B now belong to it.
    net.assign(&[
        Some(SWARM_A),
        Some(SWARM_A),
        Some(SWARM_A),
        Some(SWARM_B),
        Some(SWARM_B),
        Some(SWARM_B),
    ]);
    let view = net.nodes[0].view.get();
    let moved: BTreeSet<usize> = (0..owners.len())
        .filter(|i| view.swarm_for(&owners[*i]) == Some(SWARM_B))
        .collect();
    assert!(!moved.is_empty() && moved.len() < owners.len());
    assert!(moved.contains(&8), "the account with the delete moves");
    // The new swarm's members take their range from every node outside it (nodes 0-2). Node 4
    // is down meanwhile and takes nothing; it catches up from its swarm mates afterwards.
    net.nodes[4].set_up(false);
    for i in [3, 5] {
        let h = net.nodes[i].replica.handover_round().await;
        assert_eq!((h.sources, h.sources_failed), (3, 0), "node {i}");
        if i == 3 {
            assert!(h.buckets >= moved.len(), "node {i}: {h:?}");
            assert!(h.applied > 0);
        }
    }
    let dropped: u64 = (0..3)
        .map(|i| net.nodes[i].replica.metrics().handover_dropped)
        .sum();
    assert!(dropped > 0, "the old holders dropped what they handed over");
    net.nodes[4].set_up(true);
    for i in 3..6 {
        net.nodes[i].replica.reconcile_round().await;
    }
    let now = net.now();
    let check = |net: &Net, all: &[(usize, MessageHash)], moved: &BTreeSet<usize>| {
        for (i, hash) in all {
            let (holders, others) = if moved.contains(i) {
                (3..6, 0..3)
            } else {
                (0..3, 3..6)
            };
            for n in holders {
                assert!(
                    net.nodes[n].hashes(&owners[*i], 0, now).contains(hash),
                    "message of account {i} on node {n}"
                );
            }
            for n in others {
                assert!(
                    !net.nodes[n].hashes(&owners[*i], 0, now).contains(hash),
                    "account {i} dropped on node {n}"
                );
            }
        }
        for n in &net.nodes {
            assert!(
                !n.hashes(&owners[8], 0, now).contains(&deleted.1),
                "delete not resurrected"
            );
        }
    };
    check(&net, &all, &moved);
    // Handover happens once: another round finds nothing new.
    let again = net.nodes[3].replica.handover_round().await;
    assert_eq!((again.buckets, again.messages), (0, 0), "{again:?}");

    // New messages stored in swarm B only.
    for i in &moved {
        let data = format!("in B {i}");
        net.nodes[3]
            .write(
                "store",
                store_params(&owners[*i], 0, data.as_bytes(), now),
                now,
            )
            .await;
        all.push((*i, hash_of(&owners[*i], 0, data.as_bytes())));
    }

    // Epoch 3: swarm B is dissolved (its nodes leave every swarm): A takes everything back.
    net.assign(&[
        Some(SWARM_A),
        Some(SWARM_A),
        Some(SWARM_A),
        None,
        None,
        None,
    ]);
    for i in 0..3 {
        let h = net.nodes[i].replica.handover_round().await;
        assert_eq!(h.sources_failed, 0, "{h:?}");
    }
    for i in 0..3 {
        net.nodes[i].replica.reconcile_round().await;
    }
    let everything: BTreeSet<usize> = BTreeSet::new();
    check(&net, &all, &everything);
    let d = net.nodes[0].digests(now);
    for n in &net.nodes[..3] {
        assert_eq!(n.digests(now), d);
    }
    let m = net.nodes[3].replica.metrics();
    assert!(m.handover_messages > 0 && m.handover_dropped > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_live_members_converge() {
    let mut net = Net::start(4).await;
    net.assign(&[Some(SWARM_A); 4]);
    let owners: Vec<_> = (0..5u64)
        .map(|i| owner_at(SWARM_A ^ (i << 20), i))
        .collect();
    let mut hashes = Vec::new();
    for step in 0..24usize {
        net.clock.advance(100);
        let now = net.now();
        // A different member is down at each phase; writes enter at various members.
        let down = (step / 6) % 4;
        for (i, n) in net.nodes.iter().enumerate() {
            n.set_up(i != down);
        }
        let entry = (down + 1 + step % 3) % 4;
        let o = &owners[step % owners.len()];
        let ns = i16::try_from(step % 3).unwrap();
        let data = format!("step {step}");
        net.nodes[entry]
            .write("store", store_params(o, ns, data.as_bytes(), now), now)
            .await;
        hashes.push((o, ns, hash_of(o, ns, data.as_bytes())));
        if step % 5 == 4 {
            let (o, _, h) = &hashes[step - 3];
            net.nodes[entry]
                .write(
                    "delete",
                    json!({"pubkey": hex::encode(o.as_bytes()), "messages": [h]}),
                    now,
                )
                .await;
        }
        if step % 7 == 6 {
            let (o, _, h) = &hashes[step - 1];
            net.nodes[entry]
                .write(
                    "expire",
                    json!({"pubkey": hex::encode(o.as_bytes()), "messages": [h], "expiry": now + 3 * DAY}),
                    now,
                )
                .await;
        }
    }
    for n in &net.nodes {
        n.set_up(true);
    }
    let now = net.now();
    let before: Vec<_> = net.nodes.iter().map(|n| n.digests(now)).collect();
    assert!(
        before.iter().any(|d| *d != before[0]),
        "the scenario left members apart"
    );
    for n in &net.nodes {
        n.replica.reconcile_round().await;
    }
    let d = net.nodes[0].digests(now);
    assert!(!d.is_empty());
    for (i, n) in net.nodes.iter().enumerate() {
        assert_eq!(n.digests(now), d, "node {i} converged");
    }
    // A further round changes nothing anywhere.
    for n in &net.nodes {
        let r = n.replica.reconcile_round().await;
        assert_eq!(
            (r.buckets_differing, r.messages_pulled, r.tombstones_applied),
            (0, 0, 0)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_to_a_down_member_is_reported_failed() {
    let mut net = Net::start(2).await;
    net.assign(&[Some(SWARM_A); 2]);
    net.nodes[1].set_up(false);
    let now = net.now();
    let owner = owner_at(SWARM_A, 3);
    let (_, results) = net.nodes[0]
        .write("store", store_params(&owner, 0, b"x", now), now)
        .await;
    assert_eq!(results.len(), 1);
    // The gate refuses with UNAVAILABLE: reported with the matching HTTP status.
    assert_eq!(
        results[0].outcome,
        MemberOutcome::Failed(FailureKind::Code {
            status: 503,
            reason: "down".into()
        })
    );
    assert_eq!(
        results[0].to_json(),
        json!({"failed": true, "code": 503, "reason": "down"})
    );
    // A member whose port has no listener (connection refused) is a query failure.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let ghost = umbra_crypto::Identity::from_seed(&[0x99; 32]);
    let mut members = vec![net.nodes[0].member(SWARM_A, true)];
    members.push(umbra_nodelist::list::NodeEntry {
        pubkey_ed25519: ghost.ed25519_public(),
        pubkey_x25519: ghost.x25519_public(),
        public_ip: std::net::Ipv4Addr::LOCALHOST,
        storage_port: closed_port,
        storage_lmq_port: closed_port,
        swarm_id: SWARM_A,
        active: true,
        version: [2, 11, 0],
    });
    let n0 = &net.nodes[0];
    assert!(
        n0.view
            .set(umbra_nodelist::SwarmView::new(99, n0.key, members))
    );
    let (_, results) = n0
        .write("store", store_params(&owner, 0, b"y", now), now)
        .await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].pubkey, ghost.ed25519_public());
    assert!(matches!(
        results[0].outcome,
        MemberOutcome::Failed(FailureKind::QueryFailure | FailureKind::Timeout)
    ));
    assert_eq!(n0.replica.metrics().forwards_failed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_per_round_is_bounded_and_continues_where_it_stopped() {
    let mut net = Net::start_with(2, |c| {
        c.buckets_per_peer_round = 4;
        c.max_pulls_per_peer_round = 64;
    })
    .await;
    net.assign(&[Some(SWARM_A); 2]);
    net.nodes[1].set_up(false);
    let now = net.now();
    let mut expected = 0;
    for i in 0..10u64 {
        let o = owner_at(SWARM_A + i, i);
        net.nodes[0]
            .write(
                "store",
                store_params(&o, 0, format!("m{i}").as_bytes(), now),
                now,
            )
            .await;
        expected += 1;
    }
    net.nodes[1].set_up(true);
    let mut rounds = 0;
    let mut pulled = 0;
    while net.nodes[1].digests(now) != net.nodes[0].digests(now) {
        let r = net.nodes[1].replica.reconcile_round().await;
        assert!(r.buckets_compared <= 4, "bounded: {r:?}");
        pulled += r.messages_pulled;
        rounds += 1;
        assert!(rounds <= 10, "later rounds continue from the cursor");
    }
    assert_eq!(pulled, expected);
    assert!(
        rounds >= 3,
        "ten buckets at four per round need several rounds"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_short_of_pull_budget_resumes_at_the_bucket_it_left() {
    // 16 accounts in step on both members; then the second misses 12 messages of one account.
    // Windows of 4 buckets, 4 pulls per round: the member must stay on that bucket until it
    // is whole, not move on through the three windows that are in step and come back later.
    let mut net = Net::start_with(2, |c| {
        c.buckets_per_peer_round = 4;
        c.max_pulls_per_peer_round = 4;
    })
    .await;
    net.assign(&[Some(SWARM_A); 2]);
    let now = net.now();
    let owners: Vec<_> = (0..16u64).map(|i| owner_at(SWARM_A + i, i)).collect();
    for (i, o) in owners.iter().enumerate() {
        for n in &net.nodes {
            n.write(
                "store",
                store_params(o, 0, format!("in step {i}").as_bytes(), now),
                now,
            )
            .await;
        }
    }
    assert_eq!(net.nodes[1].digests(now), net.nodes[0].digests(now));
    net.nodes[1].set_up(false);
    for i in 0..12 {
        net.nodes[0]
            .write(
                "store",
                store_params(&owners[7], 0, format!("missed {i}").as_bytes(), now),
                now,
            )
            .await;
    }
    net.nodes[1].set_up(true);
    let mut rounds = 0;
    while net.nodes[1].digests(now) != net.nodes[0].digests(now) {
        let r = net.nodes[1].replica.reconcile_round().await;
        assert!(r.messages_pulled <= 4, "{r:?}");
        rounds += 1;
        assert!(
            rounds <= 6,
            "at most 3 rounds to reach the window, then 3 of 4 pulls each"
        );
    }
    assert_eq!(net.nodes[1].replica.metrics().messages_pulled, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_far_behind_runs_its_rounds_back_to_back() {
    // A pull budget of 4 per peer and round, rounds an hour apart: only back-to-back rounds
    // can bring 24 messages within the test's time.
    let mut net = Net::start_with(2, |c| {
        c.max_pulls_per_peer_round = 4;
        c.round_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    net.assign(&[Some(SWARM_A); 2]);
    net.nodes[1].set_up(false);
    let now = net.now();
    for i in 0..24u64 {
        let o = owner_at(SWARM_A + i, i);
        net.nodes[0]
            .write(
                "store",
                store_params(&o, 0, format!("m{i}").as_bytes(), now),
                now,
            )
            .await;
    }
    net.nodes[1].set_up(true);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(net.nodes[1].replica.clone().run(stopped));
    let caught_up = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while net.nodes[1].digests(now) != net.nodes[0].digests(now) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();
    assert!(caught_up.is_ok(), "still behind after a minute");
    let m = net.nodes[1].replica.metrics();
    assert_eq!(m.messages_pulled, 24);
    assert!(
        m.rounds >= 6,
        "24 messages at 4 per round: {} rounds",
        m.rounds
    );
}
