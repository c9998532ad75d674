#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The transport end to end over the in-memory network: every fake node peels its layer with
//! umbra-onion, so each request runs the whole 3-hop flow as function calls.

use std::collections::HashSet;
use std::sync::Arc;

use umbra_net::paths::subnet24;
use umbra_net::testing::{Behaviour, FakeNetwork, Role, account, distinct_subnets, loopback};
use umbra_net::{
    ClientError, Destination, ManualClock, OnionTransport, PATH_TEST_REQUEST, PathConfig, Request,
    Response, Server, TransportConfig, V4Request,
};
use umbra_nodelist::list::{NodeList, SignedNodeList};

const T0: u64 = 1_764_000_000_000;

fn config() -> TransportConfig {
    TransportConfig::default()
}

fn devnet_config() -> TransportConfig {
    TransportConfig {
        paths: PathConfig {
            subnet_diversity: false,
            ..PathConfig::default()
        },
        ..TransportConfig::default()
    }
}

fn setup(
    nodes: usize,
    swarms: usize,
    cfg: TransportConfig,
) -> (Arc<FakeNetwork>, Arc<ManualClock>, OnionTransport) {
    let net = FakeNetwork::new(7, &distinct_subnets(nodes), swarms);
    let clock = Arc::new(ManualClock::new(T0));
    let t = net.transport(cfg, clock.clone(), 11).unwrap();
    (net, clock, t)
}

fn rpc(method: &str, account: &umbra_crypto::AccountId) -> Request {
    Request::Storage(
        serde_json::json!({"method": method, "params": {"pubkey": hex::encode(account)}})
            .to_string()
            .into_bytes(),
    )
}

fn storage_ok(r: Response) -> serde_json::Value {
    match r {
        Response::Storage(s) => {
            assert_eq!(s.status, 200, "{s:?}");
            s.json().unwrap()
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn paths_have_distinct_nodes_distinct_subnets_and_one_guard_each() {
    let (net, _clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let paths = t.paths();
    let guards: HashSet<_> = t.guards().iter().map(|g| g.node).collect();
    assert_eq!(paths.len(), 2);
    assert_eq!(guards.len(), 2);
    let mut path_guards = HashSet::new();
    for p in &paths {
        assert_eq!(p.nodes.len(), 3);
        let keys: HashSet<_> = p.nodes.iter().map(|n| n.pubkey_ed25519).collect();
        assert_eq!(keys.len(), 3, "nodes of a path are distinct");
        let subnets: HashSet<_> = p.nodes.iter().map(|n| subnet24(n.public_ip)).collect();
        assert_eq!(subnets.len(), 3, "one node per /24");
        assert!(guards.contains(&p.nodes[0].pubkey_ed25519));
        assert!(
            p.nodes[1..]
                .iter()
                .all(|n| !guards.contains(&n.pubkey_ed25519)),
            "guards are never middle or exit hops"
        );
        path_guards.insert(p.nodes[0].pubkey_ed25519);
    }
    assert_eq!(path_guards, guards, "one path per guard");
    // Each path was tested once, with a request that names no account.
    let traces = net.traces();
    assert_eq!(traces.len(), 2);
    for tr in &traces {
        assert_eq!(tr.destination_body.as_deref(), Some(PATH_TEST_REQUEST));
    }
}

#[tokio::test]
async fn subnet_diversity_is_enforced_and_can_be_turned_off_for_a_devnet() {
    // 12 nodes in only two /24s: no 3-hop path without sharing a subnet.
    let ips: Vec<_> = (0..12)
        .map(|i| std::net::Ipv4Addr::new(10, 0, (i % 2) as u8, i as u8 + 1))
        .collect();
    let net = FakeNetwork::new(3, &ips, 1);
    let clock = Arc::new(ManualClock::new(T0));
    let t = net.transport(config(), clock.clone(), 1).unwrap();
    match t.ensure_ready().await {
        Err(ClientError::NotEnoughNodes {
            have: 2, need: 3, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Three /24s, four nodes each: every path spans all three.
    let ips: Vec<_> = (0..12)
        .map(|i| std::net::Ipv4Addr::new(10, 0, (i % 3) as u8, i as u8 + 1))
        .collect();
    let net = FakeNetwork::new(3, &ips, 1);
    let t = net.transport(config(), clock.clone(), 2).unwrap();
    t.ensure_ready().await.unwrap();
    for p in t.paths() {
        let s: HashSet<_> = p.nodes.iter().map(|n| subnet24(n.public_ip)).collect();
        assert_eq!(s.len(), 3);
    }
    // A devnet on 127.0.0.1: impossible with diversity, fine without.
    let net = FakeNetwork::new(4, &loopback(14), 2);
    let t = net.transport(config(), clock.clone(), 3).unwrap();
    assert!(matches!(
        t.ensure_ready().await,
        Err(ClientError::NotEnoughNodes { .. })
    ));
    let t = net.transport(devnet_config(), clock, 3).unwrap();
    t.ensure_ready().await.unwrap();
    assert_eq!(t.paths().len(), 2);
    let acc = account(9);
    storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap(),
    );
}

#[tokio::test]
async fn every_request_goes_through_a_path_and_only_the_destination_sees_it() {
    let (net, _clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    net.clear_traces();
    let guards: HashSet<_> = t.guards().iter().map(|g| g.node).collect();
    let acc = account(0x42);
    let marker = hex::encode(acc);
    let swarm: HashSet<_> = t.swarm_of(&acc).iter().map(|n| n.pubkey_ed25519).collect();
    assert!(!swarm.is_empty());
    for _ in 0..10 {
        let body = storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
        let node = body["node"].as_str().unwrap();
        assert!(
            swarm.iter().any(|k| hex::encode(k) == node),
            "answered by the owner swarm"
        );
    }
    let direct = t.swarm_of(&acc)[0].pubkey_ed25519;
    storage_ok(
        t.send(Destination::Node(direct), rpc("store", &acc))
            .await
            .unwrap(),
    );
    let host_key = net.add_server("files.example");
    let server = Server::https("files.example", host_key);
    match t
        .send(
            Destination::Server(server),
            Request::Server(V4Request::get("/room/x")),
        )
        .await
        .unwrap()
    {
        Response::Server(r) => assert_eq!(r.code, 200),
        other => panic!("{other:?}"),
    }

    let traces = net.traces();
    assert_eq!(
        traces.len(),
        12,
        "one onion request per send, no direct request"
    );
    for tr in &traces {
        assert!(
            guards.contains(&tr.edge),
            "the client only ever connects to a guard"
        );
        assert_eq!(
            tr.hops[0],
            (tr.edge, Role::Relay),
            "the guard relays, never serves"
        );
        let relays = tr.hops.iter().filter(|(_, r)| *r == Role::Relay).count();
        assert!(
            relays >= 2,
            "at least guard and middle relay: {:?}",
            tr.hops
        );
        // What the guard received never contains the account in clear.
        assert!(!contains(&tr.posted, marker.as_bytes()));
        match tr.hops.last().unwrap().1 {
            Role::Destination => {
                assert_eq!(tr.hops.len(), 4, "3 path nodes, then the destination");
                assert!(contains(
                    tr.destination_body.as_ref().unwrap(),
                    marker.as_bytes()
                ));
                let dest = tr.hops[3].0;
                assert!(!tr.hops[..3].iter().any(|(k, _)| *k == dest));
            }
            Role::Exit => {
                assert_eq!(tr.hops.len(), 3);
                assert!(tr.server_plaintext.is_some());
            }
            Role::Relay => panic!("a request ended at a relay: {:?}", tr.hops),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The one HTTP call site: no module but `link.rs` may use reqwest.
#[test]
fn reqwest_is_used_only_in_the_link_module() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![dir];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            seen += 1;
            let name = p.file_name().unwrap().to_str().unwrap();
            if name == "link.rs" {
                assert_eq!(text.matches(".send()").count(), 1, "exactly one HTTP call");
            } else {
                assert!(!text.contains("reqwest"), "{name} uses reqwest");
                assert!(!text.contains("TcpStream"), "{name} opens sockets");
            }
        }
    }
    assert!(seen >= 8);
}

#[tokio::test]
async fn a_failing_middle_hop_is_blamed_and_the_request_retried_on_another_path() {
    let (net, clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let paths = t.paths();
    let bad_path = paths[0].clone();
    let good_path = paths[1].clone();
    let bad = bad_path.nodes[1].pubkey_ed25519;
    assert!(!good_path.contains(&bad));
    net.set_behaviour(&bad, Behaviour::NotReady);
    net.clear_traces();
    let acc = account(1);
    // Any request may land on the bad path first; it must still succeed.
    for _ in 0..8 {
        storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
    }
    let traces = net.traces();
    let failed: Vec<_> = traces
        .iter()
        .filter(|tr| tr.edge == bad_path.nodes[0].pubkey_ed25519 && tr.destination_body.is_none())
        .collect();
    assert!(!failed.is_empty(), "the bad path was tried (seeded)");
    assert!(
        t.node_strikes(&bad) >= 1,
        "the hop that sealed the error is struck"
    );
    assert_eq!(
        t.node_strikes(&bad_path.nodes[0].pubkey_ed25519),
        0,
        "not the guard"
    );
    assert!(clock.slept_ms() > 0, "retries back off");
    // Sooner or later the bad path is retired and rebuilt without the bad node.
    for _ in 0..20 {
        let _ = t
            .send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap();
    }
    assert!(t.is_failed(&bad));
    assert!(t.paths().iter().all(|p| !p.contains(&bad)));
    assert_eq!(t.paths().len(), 2);
}

#[tokio::test]
async fn a_dead_relay_costs_its_honest_guard_nothing() {
    let (net, _clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let guards_before: Vec<_> = t.guards().iter().map(|g| g.node).collect();
    let path = t.paths()[0].clone();
    let dead = path.nodes[1].pubkey_ed25519;
    net.set_behaviour(&dead, Behaviour::Down);
    let acc = account(2);
    for _ in 0..20 {
        storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
    }
    assert!(t.is_failed(&dead));
    assert!(!t.is_failed(&path.nodes[0].pubkey_ed25519));
    let guards_after: Vec<_> = t.guards().iter().map(|g| g.node).collect();
    assert_eq!(guards_before, guards_after, "guards survive a dead relay");
    assert!(t.paths().iter().all(|p| !p.contains(&dead)));
}

#[tokio::test]
async fn a_forged_error_blames_the_path_not_the_node_it_names() {
    let (net, _clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let path = t.paths()[0].clone();
    let forger = path.nodes[1].pubkey_ed25519;
    let named = path.nodes[2].pubkey_ed25519;
    net.set_behaviour(&forger, Behaviour::Forger);
    let acc = account(3);
    for _ in 0..20 {
        storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
    }
    // The forging path was retired by path strikes; the honest node it named got at most the
    // one strike every node of a retired path gets, and stays usable.
    assert!(t.paths().iter().all(|p| p.id != path.id));
    assert!(t.node_strikes(&named) <= 1, "{}", t.node_strikes(&named));
    assert!(!t.is_failed(&named));
}

#[tokio::test]
async fn an_unreachable_guard_is_benched_then_replaced_after_three_missed_rounds() {
    let (net, clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let guard = t.paths()[0].nodes[0].pubkey_ed25519;
    net.set_behaviour(&guard, Behaviour::Down);
    let acc = account(4);
    let send = async || {
        storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
    };
    // Within the bench: every request goes through the other path, the guard stays.
    for _ in 0..20 {
        send().await;
    }
    assert!(t.paths().iter().all(|p| !p.contains(&guard)));
    let kept = t.guards().into_iter().find(|g| g.node == guard).unwrap();
    assert_eq!(kept.misses, 1);
    assert!(!t.is_failed(&guard), "benched, not struck out");
    // A minute later it is tried again and missed again; the third miss replaces it.
    for round in 2..=3 {
        clock.advance(61_000);
        send().await;
        let now: Vec<_> = t.guards().iter().map(|g| g.node).collect();
        assert_eq!(now.contains(&guard), round < 3, "round {round}: {now:?}");
    }
    send().await;
    assert_eq!(t.paths().len(), 2);
    assert_eq!(t.guard_churn().dropped, 1);
}

#[tokio::test]
async fn a_long_running_client_that_goes_offline_keeps_its_guards() {
    let (net, clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let guards = t.guards();
    let acc = account(4);
    for k in net.node_keys() {
        net.set_behaviour(&k, Behaviour::Down);
    }
    for _ in 0..5 {
        assert!(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .is_err()
        );
        clock.advance(61_000);
    }
    for k in net.node_keys() {
        net.set_behaviour(&k, Behaviour::Honest);
    }
    storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap(),
    );
    assert_eq!(t.guards(), guards, "the same entry nodes, no miss counted");
    assert_eq!(t.paths().len(), 2);
}

#[tokio::test]
async fn paths_rotate_on_schedule_and_guards_stay_until_they_expire() {
    let (_net, clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let guards: Vec<_> = t.guards();
    let ids: HashSet<_> = t.paths().iter().map(|p| p.id).collect();
    clock.advance(9 * 60 * 1000);
    t.ensure_ready().await.unwrap();
    let same: HashSet<_> = t.paths().iter().map(|p| p.id).collect();
    assert_eq!(ids, same, "not yet");
    clock.advance(60 * 1000);
    t.ensure_ready().await.unwrap();
    let new: HashSet<_> = t.paths().iter().map(|p| p.id).collect();
    assert!(new.is_disjoint(&ids), "rotated after 10 minutes");
    assert_eq!(t.guards(), guards, "same guards across rotations");
    // A guard lives 10 days.
    clock.advance(10 * 24 * 3600 * 1000);
    t.ensure_ready().await.unwrap();
    let fresh = t.guards();
    assert_eq!(fresh.len(), 2);
    assert!(
        fresh.iter().all(|g| g.since_ms > T0),
        "expired guards replaced"
    );
}

#[tokio::test]
async fn guards_and_the_list_epoch_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TransportConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..config()
    };
    let net = FakeNetwork::new(5, &distinct_subnets(20), 2);
    let clock = Arc::new(ManualClock::new(T0));
    net.publish(); // epoch 2
    let t = net.transport(cfg.clone(), clock.clone(), 1).unwrap();
    t.ensure_ready().await.unwrap();
    let guards = t.guards();
    assert!(guards.iter().all(|g| g.confirmed));
    drop(t);
    assert!(dir.path().join(umbra_net::store::GUARD_FILE).exists());
    assert!(!dir.path().join("onion-guards.json.tmp").exists());

    // A different seed would choose other guards; the saved ones are used.
    let t = net.transport(cfg.clone(), clock.clone(), 999).unwrap();
    assert_eq!(t.guards(), guards);
    t.ensure_ready().await.unwrap();
    assert_eq!(t.guards(), guards);
    let edges: HashSet<_> = t
        .paths()
        .iter()
        .map(|p| p.nodes[0].pubkey_ed25519)
        .collect();
    let expected: HashSet<_> = guards.iter().map(|g| g.node).collect();
    assert_eq!(edges, expected);
    drop(t);

    // After a restart, the registry cannot roll the client back to epoch 1.
    let old = SignedNodeList::sign(
        NodeList {
            epoch: 1,
            ..net.truth()
        },
        net.registry_identity(),
    );
    net.serve_list(old);
    let t = net.transport(cfg, clock, 5).unwrap();
    assert!(matches!(
        t.refresh_list().await,
        Err(ClientError::VerifyingNodeList(_))
    ));
}

#[tokio::test]
async fn a_restart_while_the_registry_is_down_uses_the_saved_list() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TransportConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..config()
    };
    let net = FakeNetwork::new(6, &distinct_subnets(20), 2);
    let clock = Arc::new(ManualClock::new(T0));
    net.publish(); // epoch 2
    let t = net.transport(cfg.clone(), clock.clone(), 1).unwrap();
    t.ensure_ready().await.unwrap();
    drop(t);
    let saved = dir.path().join(umbra_net::store::NODE_LIST_FILE);
    assert!(saved.exists());

    // A new process while the registry is down: it starts from the saved list, verified again,
    // without asking the registry (the list is fresh), and reaches a swarm.
    net.set_registry_up(false);
    clock.advance(60_000);
    let t = net.transport(cfg.clone(), clock.clone(), 2).unwrap();
    let acc = account(4);
    assert!(!t.swarm_of(&acc).is_empty(), "the saved list is current");
    storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap(),
    );
    drop(t);

    // Still down long after: the refresh fails, the saved list stays in use.
    clock.advance(2 * 3600 * 1000);
    let t = net.transport(cfg.clone(), clock.clone(), 3).unwrap();
    storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap(),
    );
    drop(t);

    // A saved list that does not verify (one byte changed) is not used: with the registry
    // down there is then no list at all.
    let mut body = std::fs::read(&saved).unwrap();
    let i = body.iter().position(|b| b.is_ascii_digit()).unwrap();
    body[i] = if body[i] == b'9' { b'8' } else { body[i] + 1 };
    std::fs::write(&saved, &body).unwrap();
    let t = net.transport(cfg, clock, 4).unwrap();
    assert!(t.swarm_of(&acc).is_empty(), "a tampered list was used");
    assert!(t.ensure_ready().await.is_err());
}

#[tokio::test]
async fn node_list_is_verified_refreshed_and_kept_when_the_registry_is_down() {
    let (net, clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    assert_eq!(t.list_epoch(), Some(1));
    let acc = account(5);

    // Registry down: the last good list stays, sending works.
    net.set_registry_up(false);
    clock.advance(31 * 60 * 1000);
    storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap(),
    );
    assert_eq!(t.list_epoch(), Some(1));

    // A list signed by another key is refused.
    net.set_registry_up(true);
    let other = umbra_crypto::Identity::generate(&mut umbra_crypto::SeededRandom::new(99));
    net.serve_list(SignedNodeList::sign(
        NodeList {
            epoch: 50,
            ..net.truth()
        },
        &other,
    ));
    assert!(matches!(
        t.refresh_list().await,
        Err(ClientError::VerifyingNodeList(_))
    ));
    assert_eq!(t.list_epoch(), Some(1));

    // A newer signed list is taken on schedule.
    net.publish();
    clock.advance(31 * 60 * 1000);
    storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap(),
    );
    assert_eq!(t.list_epoch(), Some(2));

    // No registry at all and no list: a clear error.
    let net2 = FakeNetwork::new(8, &distinct_subnets(10), 1);
    net2.set_registry_up(false);
    let t2 = net2.transport(config(), clock, 1).unwrap();
    assert!(matches!(
        t2.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await,
        Err(ClientError::FetchingNodeList(_))
    ));
}

#[tokio::test]
async fn wrong_swarm_421_is_followed_to_the_right_swarm() {
    let (net, _clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let acc = account(6);
    let stale: HashSet<_> = t.swarm_of(&acc).iter().map(|n| n.pubkey_ed25519).collect();
    // The network swaps the two swarms' members but the client's list is stale.
    let truth = net.truth();
    let ids: Vec<u64> = {
        let mut v: Vec<u64> = truth.nodes.iter().map(|n| n.swarm_id).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for n in &truth.nodes {
        let other = if n.swarm_id == ids[0] { ids[1] } else { ids[0] };
        net.move_node(&n.pubkey_ed25519, other);
    }
    let right: HashSet<_> = net
        .truth()
        .swarm_for_account(&acc)
        .unwrap()
        .unwrap()
        .1
        .iter()
        .map(|n| n.pubkey_ed25519)
        .collect();
    assert!(right.is_disjoint(&stale));
    let fetches = net.list_fetches();
    let body = storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
            .unwrap(),
    );
    let node = body["node"].as_str().unwrap();
    assert!(right.iter().any(|k| hex::encode(k) == node));
    // The correction is remembered until the next list.
    let now: HashSet<_> = t.swarm_of(&acc).iter().map(|n| n.pubkey_ed25519).collect();
    assert_eq!(now, right);
    // The 421 made the client ask the registry again (which had nothing newer yet).
    assert_eq!(net.list_fetches(), fetches + 1);
    assert_eq!(t.list_epoch(), Some(1));
    // Once the registry publishes the change, the computed swarm agrees with the correction.
    net.publish();
    assert!(t.refresh_list().await.unwrap());
    assert_eq!(t.list_epoch(), Some(2));
    let now: HashSet<_> = t.swarm_of(&acc).iter().map(|n| n.pubkey_ed25519).collect();
    assert_eq!(now, right);
}

#[tokio::test]
async fn a_failing_destination_is_replaced_by_another_swarm_member() {
    let (net, _clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let acc = account(7);
    let swarm = t.swarm_of(&acc);
    let on_paths: HashSet<_> = t
        .paths()
        .iter()
        .flat_map(|p| p.nodes.iter().map(|n| n.pubkey_ed25519).collect::<Vec<_>>())
        .collect();
    let bad = swarm
        .iter()
        .find(|n| !on_paths.contains(&n.pubkey_ed25519))
        .unwrap()
        .pubkey_ed25519;
    net.set_behaviour(&bad, Behaviour::NotReady);
    for _ in 0..10 {
        let body = storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
        assert_ne!(body["node"].as_str().unwrap(), hex::encode(bad));
    }
    // Asked for by name, the failing node's sealed error is reported as the destination's.
    match t.send(Destination::Node(bad), rpc("retrieve", &acc)).await {
        Err(ClientError::DestinationFailed { status: 503, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn send_futures_are_send_and_mismatches_are_refused() {
    let (_net, _clock, t) = setup(20, 2, config());
    let acc = account(8);
    let t2 = t.clone();
    let h = tokio::spawn(async move {
        t2.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await
    });
    storage_ok(h.await.unwrap().unwrap());
    assert!(matches!(
        t.send(
            Destination::Swarm(acc),
            Request::Server(V4Request::get("/x"))
        )
        .await,
        Err(ClientError::RequestMismatch(_))
    ));
    assert!(matches!(
        t.send(
            Destination::Node(umbra_crypto::Ed25519PublicKey::from_bytes([9; 32])),
            rpc("retrieve", &acc)
        )
        .await,
        Err(ClientError::UnknownDestination)
    ));
}

#[tokio::test]
async fn a_dead_node_fails_candidate_tests_without_costing_honest_nodes() {
    let net = FakeNetwork::new(21, &distinct_subnets(12), 2);
    let keys = net.node_keys();
    let dead = keys[5];
    net.set_behaviour(&dead, Behaviour::Down);
    let clock = Arc::new(ManualClock::new(T0));
    let t = net.transport(config(), clock, 4).unwrap();
    for _ in 0..5 {
        t.ensure_ready().await.unwrap();
        let acc = account(10);
        storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
    }
    let hit = net
        .traces()
        .iter()
        .filter(|tr| tr.unreachable == Some(dead))
        .count();
    assert!(hit >= 1, "the dead node was tried (seeded)");
    assert_eq!(t.paths().len(), 2);
    assert!(t.paths().iter().all(|p| !p.contains(&dead)));
    for k in keys.iter().filter(|k| **k != dead) {
        assert_eq!(t.node_strikes(k), 0, "an honest node was struck");
    }
}

#[tokio::test]
async fn a_member_answering_5xx_is_struck_and_another_member_tried() {
    let (net, _clock, t) = setup(20, 2, config());
    t.ensure_ready().await.unwrap();
    let acc = account(11);
    let swarm = t.swarm_of(&acc);
    let bad = swarm[1].pubkey_ed25519;
    net.set_behaviour(&bad, Behaviour::Failing);
    for _ in 0..20 {
        let body = storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
        assert_ne!(body["node"].as_str().unwrap(), hex::encode(bad));
    }
    assert!(
        t.node_strikes(&bad) >= 1,
        "the failing member was tried (seeded) and struck"
    );
    // When every member fails, the caller gets a member's own answer.
    for n in &swarm {
        net.set_behaviour(&n.pubkey_ed25519, Behaviour::Failing);
    }
    match t
        .send(Destination::Swarm(acc), rpc("retrieve", &acc))
        .await
        .unwrap()
    {
        Response::Storage(r) => assert_eq!(r.status, 500),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_share_the_paths() {
    let (net, _clock, t) = setup(20, 2, config());
    let mut tasks = Vec::new();
    for i in 0..24u8 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let acc = account(100 + i);
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc)).await
        }));
    }
    for task in tasks {
        storage_ok(task.await.unwrap().unwrap());
    }
    assert_eq!(t.paths().len(), 2);
    assert_eq!(t.guards().len(), 2);
    let guards: HashSet<_> = t.guards().iter().map(|g| g.node).collect();
    assert!(net.traces().iter().all(|tr| guards.contains(&tr.edge)));
}

/// The guards a fresh transport with `seed` chooses on `net` (all nodes honest).
async fn guards_of_seed(net: &Arc<FakeNetwork>, seed: u64) -> Vec<umbra_crypto::Ed25519PublicKey> {
    let clock = Arc::new(ManualClock::new(T0));
    let t = net.transport(config(), clock, seed).unwrap();
    t.ensure_ready().await.unwrap();
    t.guards().iter().map(|g| g.node).collect()
}

/// Candidate paths whose middle or exit fails their test keep their (new, unconfirmed)
/// guard: `bad` of the non-guard nodes fail with `behaviour`; over several seeds, some tests
/// hit them, and no run drops a guard. Returns how many path tests failed at a bad relay.
async fn relay_failures_keep_the_guards(behaviour: Behaviour, bad: usize) -> usize {
    let mut failed_tests = 0;
    for seed in 0..12 {
        let net = FakeNetwork::new(40 + seed, &distinct_subnets(10), 2);
        let guards = guards_of_seed(&net, seed).await;
        let relays: Vec<_> = net
            .node_keys()
            .into_iter()
            .filter(|k| !guards.contains(k))
            .collect();
        for k in &relays[..bad] {
            net.set_behaviour(k, behaviour);
        }
        net.clear_traces();
        // The same seed chooses the same guards first; now their first paths may fail.
        let clock = Arc::new(ManualClock::new(T0));
        let t = net.transport(config(), clock, seed).unwrap();
        t.ensure_ready().await.unwrap();
        let now: Vec<_> = t.guards().iter().map(|g| g.node).collect();
        assert_eq!(
            now, guards,
            "seed {seed}: a relay's failure replaced a guard"
        );
        let churn = t.guard_churn();
        assert_eq!((churn.chosen, churn.dropped), (2, 0), "seed {seed}");
        assert!(t.guards().iter().all(|g| g.confirmed));
        for k in &relays[..bad] {
            assert!(t.paths().iter().all(|p| !p.contains(k)));
        }
        failed_tests += net
            .traces()
            .iter()
            .filter(|tr| {
                tr.destination_body.is_none()
                    && tr
                        .hops
                        .iter()
                        .skip(1)
                        .any(|(k, _)| relays[..bad].contains(k))
            })
            .count();
    }
    failed_tests
}

#[tokio::test]
async fn a_path_test_failing_at_a_middle_or_exit_hop_keeps_the_guard() {
    // A relay's own sealed error ("not ready"): only that relay is struck.
    let sealed = relay_failures_keep_the_guards(Behaviour::NotReady, 4).await;
    assert!(sealed >= 3, "{sealed} failed path tests");
    // A relay answering in plain text (nothing proves who failed): the guard, struck with
    // the others, stays a guard below its strike threshold.
    let forged = relay_failures_keep_the_guards(Behaviour::Forger, 2).await;
    assert!(forged >= 3, "{forged} failed path tests");
}

#[tokio::test]
async fn a_path_test_failing_at_the_guard_replaces_it() {
    let net = FakeNetwork::new(60, &distinct_subnets(10), 2);
    let guards = guards_of_seed(&net, 3).await;
    net.set_behaviour(&guards[0], Behaviour::Down);
    let clock = Arc::new(ManualClock::new(T0));
    let t = net.transport(config(), clock, 3).unwrap();
    t.ensure_ready().await.unwrap();
    let now: Vec<_> = t.guards().iter().map(|g| g.node).collect();
    assert!(!now.contains(&guards[0]) && now.contains(&guards[1]));
    let churn = t.guard_churn();
    assert!(churn.dropped >= 1, "{churn:?}");
    assert_eq!(churn.chosen, 2 + churn.dropped, "{churn:?}");
}

#[tokio::test]
async fn restarts_keep_the_guards_no_churn() {
    let dir = tempfile::tempdir().unwrap();
    // A state directory that does not exist yet (as a new profile's) is created, owner-only.
    let state = dir.path().join("profile").join("network");
    let cfg = TransportConfig {
        state_dir: Some(state.clone()),
        ..devnet_config()
    };
    let net = FakeNetwork::new(8, &loopback(12), 2);
    let clock = Arc::new(ManualClock::new(T0));
    let mut entry_nodes = HashSet::new();
    let mut chosen = 0;
    for run in 0..6 {
        // Each run is a new process: a new transport and another seed.
        let t = net
            .transport(cfg.clone(), clock.clone(), 100 + run)
            .unwrap();
        assert!(t.replaced_guard_file().is_none());
        net.clear_traces();
        let acc = account(7);
        storage_ok(
            t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
                .await
                .unwrap(),
        );
        entry_nodes.extend(net.traces().iter().map(|tr| tr.edge));
        chosen += t.guard_churn().chosen;
        assert_eq!(t.guard_churn().dropped, 0);
        clock.advance(60_000);
    }
    assert_eq!(entry_nodes.len(), 2, "six runs entered through two nodes");
    assert_eq!(chosen, 2, "guards were chosen once");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[tokio::test]
async fn a_corrupt_guard_file_is_replaced_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(umbra_net::store::GUARD_FILE);
    let cfg = TransportConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..config()
    };
    let net = FakeNetwork::new(9, &distinct_subnets(12), 2);
    let clock = Arc::new(ManualClock::new(T0));
    for bad in [
        &b"{not json"[..],
        &[0xff, 0xfe, 0x00][..],
        br#"{"version":9}"#,
    ] {
        std::fs::write(&file, bad).unwrap();
        let t = net.transport(cfg.clone(), clock.clone(), 1).unwrap();
        match t.replaced_guard_file() {
            Some(ClientError::LoadingGuards { path, reason }) => {
                assert_eq!(path, &file);
                assert!(!reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
        // Replaced at once (no guards yet), then kept.
        let saved = umbra_net::GuardStore::new(dir.path()).load().unwrap();
        assert_eq!(saved.unwrap().guards, Vec::new());
        t.ensure_ready().await.unwrap();
        let saved = umbra_net::GuardStore::new(dir.path()).load().unwrap();
        assert_eq!(saved.unwrap().guards, t.guards());
    }
    // A valid file is used silently.
    let t = net.transport(cfg, clock, 2).unwrap();
    assert!(t.replaced_guard_file().is_none());
}

#[tokio::test]
async fn a_guard_file_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let net = FakeNetwork::new(9, &distinct_subnets(12), 2);
    let clock = Arc::new(ManualClock::new(T0));
    // The state directory cannot be created: a file is in the way.
    let blocker = dir.path().join("network");
    std::fs::write(&blocker, b"").unwrap();
    let cfg = TransportConfig {
        state_dir: Some(blocker.join("state")),
        ..config()
    };
    assert!(matches!(
        net.transport(cfg, clock.clone(), 1),
        Err(ClientError::CreatingStateDir { .. })
    ));
    // The guard file cannot be read nor replaced: a directory is in its place.
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join(umbra_net::store::GUARD_FILE).join("x")).unwrap();
    let cfg = TransportConfig {
        state_dir: Some(state),
        ..config()
    };
    assert!(matches!(
        net.transport(cfg, clock, 1),
        Err(ClientError::SavingGuards { .. })
    ));
}

/// A client with saved guards on a devnet of `nodes` nodes: the network, its clock, the
/// transport config with a state directory (kept alive by the returned guard) and the guards
/// a first run chose and confirmed.
async fn client_with_guards(
    seed: u64,
    nodes: usize,
) -> (
    Arc<FakeNetwork>,
    Arc<ManualClock>,
    TransportConfig,
    tempfile::TempDir,
    Vec<umbra_crypto::Ed25519PublicKey>,
) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TransportConfig {
        state_dir: Some(dir.path().to_path_buf()),
        ..devnet_config()
    };
    let net = FakeNetwork::new(300 + seed, &loopback(nodes), 2);
    let clock = Arc::new(ManualClock::new(T0));
    let t = net.transport(cfg.clone(), clock.clone(), seed).unwrap();
    t.ensure_ready().await.unwrap();
    assert!(t.guards().iter().all(|g| g.confirmed));
    let guards = t.guards().iter().map(|g| g.node).collect();
    (net, clock, cfg, dir, guards)
}

/// One more run of the client (a new process): a request to an account's swarm, then the
/// transport for inspection.
async fn run_once(
    net: &Arc<FakeNetwork>,
    clock: &Arc<ManualClock>,
    cfg: &TransportConfig,
    seed: u64,
) -> Result<OnionTransport, ClientError> {
    clock.advance(60_000);
    let t = net.transport(cfg.clone(), clock.clone(), seed).unwrap();
    let acc = account(3);
    storage_ok(
        t.send(Destination::Swarm(acc), rpc("retrieve", &acc))
            .await?,
    );
    Ok(t)
}

fn nodes_of(t: &OnionTransport) -> Vec<umbra_crypto::Ed25519PublicKey> {
    t.guards().iter().map(|g| g.node).collect()
}

#[tokio::test]
async fn a_client_whose_guards_died_gets_a_path_at_once_and_replaces_them_in_three_runs() {
    // 6 of 14 nodes die, both guards among them (the devnet scenario of `client_faults`).
    for seed in 0..40 {
        let (net, clock, cfg, _dir, guards) = client_with_guards(seed, 14).await;
        let mut victims = guards.clone();
        victims.extend(
            net.node_keys()
                .into_iter()
                .filter(|k| !guards.contains(k))
                .take(4),
        );
        for v in &victims {
            net.set_behaviour(v, Behaviour::Down);
        }
        for run in 1..=3u32 {
            let t = run_once(&net, &clock, &cfg, seed * 10 + u64::from(run))
                .await
                .unwrap_or_else(|e| panic!("seed {seed} run {run}: {e}"));
            let now = nodes_of(&t);
            assert!(now.len() <= 4, "seed {seed}: {now:?}");
            assert!(
                t.paths()
                    .iter()
                    .all(|p| !victims.contains(&p.nodes[0].pubkey_ed25519)),
                "seed {seed} run {run}: a path through a dead guard"
            );
            if run < 3 {
                // Benched, not dropped: one bad round does not replace a guard.
                for g in &guards {
                    let kept = t.guards().into_iter().find(|x| x.node == *g);
                    assert_eq!(kept.map(|x| x.misses), Some(run), "seed {seed} run {run}");
                }
            } else {
                assert!(
                    guards.iter().all(|g| !now.contains(g)),
                    "seed {seed}: dead guards still kept after three runs: {now:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn one_dead_guard_costs_no_stand_in_while_the_other_works() {
    for seed in 0..10 {
        let (net, clock, cfg, _dir, guards) = client_with_guards(seed, 14).await;
        net.set_behaviour(&guards[0], Behaviour::Down);
        for run in 1..=3u32 {
            let t = run_once(&net, &clock, &cfg, seed * 10 + u64::from(run))
                .await
                .unwrap();
            let churn = t.guard_churn();
            if run < 3 {
                assert_eq!(nodes_of(&t), guards, "seed {seed} run {run}");
                assert_eq!(
                    (churn.chosen, churn.dropped),
                    (0, 0),
                    "seed {seed} run {run}"
                );
                assert_eq!(t.paths().len(), 1);
            } else {
                // Replaced at the end of the third run; the next run fills the slot.
                assert_eq!(nodes_of(&t), guards[1..].to_vec(), "seed {seed}");
                assert_eq!(churn.dropped, 1);
            }
        }
        let t = run_once(&net, &clock, &cfg, seed * 10 + 9).await.unwrap();
        assert_eq!(t.guards().len(), 2);
        assert_eq!(t.guards()[0].node, guards[1]);
        assert_eq!(t.paths().len(), 2);
    }
}

#[tokio::test]
async fn a_client_offline_for_many_runs_keeps_its_guards() {
    let (net, clock, cfg, _dir, guards) = client_with_guards(5, 14).await;
    let all = net.node_keys();
    for k in &all {
        net.set_behaviour(k, Behaviour::Down);
    }
    for run in 0..6 {
        assert!(run_once(&net, &clock, &cfg, 50 + run).await.is_err());
    }
    // Back online: the same two entry nodes, no miss counted while nothing was reachable.
    for k in &all {
        net.set_behaviour(k, Behaviour::Honest);
    }
    let t = run_once(&net, &clock, &cfg, 99).await.unwrap();
    assert_eq!(nodes_of(&t), guards);
    assert!(t.guards().iter().all(|g| g.misses == 0 && g.confirmed));
}
