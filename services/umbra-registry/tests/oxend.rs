//! The pure seed JSON-RPC: arbitrary requests never panic and always answer JSON-RPC.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;

use proptest::prelude::*;
use serde_json::{Value, json};
use umbra_crypto::SeededRandom;
use umbra_nodelist::list::{NodeEntry, NodeList};
use umbra_registry::oxend;

/// 2025-11-26, the answers' clock.
const NOW_MS: i64 = 1_764_130_000_000;

fn list() -> NodeList {
    NodeList::new(
        9,
        1_764_130_000_000,
        (0..20u8)
            .map(|i| NodeEntry {
                pubkey_ed25519: umbra_crypto::Ed25519PublicKey::from_bytes([i; 32]),
                pubkey_x25519: umbra_crypto::X25519PublicKey::from_bytes([i.wrapping_add(100); 32]),
                public_ip: Ipv4Addr::new(127, 0, 0, 1),
                storage_port: 1000 + u16::from(i),
                storage_lmq_port: 2000 + u16::from(i),
                swarm_id: u64::from(i % 3) << 40,
                active: i % 7 != 0,
                version: [2, 8, 0],
            })
            .collect(),
    )
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop_oneof![
            Just("all".to_owned()),
            Just("-swarm".to_owned()),
            Just("swarm_id".to_owned()),
            Just("public_ip".to_owned()),
            ".{0,12}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("fields".to_owned()),
                    Just("active_only".to_owned()),
                    Just("limit".to_owned()),
                    Just("service_node_pubkeys".to_owned()),
                    Just("poll_block_hash".to_owned()),
                    Just("public_ip".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_params_get_a_json_rpc_answer(params in json_value(), method in prop_oneof![
        Just("get_n_service_nodes".to_owned()), Just("get_service_nodes".to_owned()), ".{0,10}"
    ]) {
        let req = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let v = oxend::answer(&req, &list(), NOW_MS, &mut SeededRandom::new(1));
        prop_assert_eq!(&v["jsonrpc"], "2.0");
        prop_assert_eq!(&v["id"], 7);
        prop_assert!(v.get("result").is_some() != v.get("error").is_some());
        if let Some(states) = v["result"].get("service_node_states") {
            prop_assert!(states.as_array().unwrap().len() <= 20);
        }
    }
}

#[test]
fn active_only_and_limit() {
    let l = list();
    let mut rng = SeededRandom::new(3);
    let v = oxend::answer(
        &json!({"method": "get_n_service_nodes", "params": {"active_only": true}}),
        &l,
        NOW_MS,
        &mut rng,
    );
    assert_eq!(
        v["result"]["service_node_states"].as_array().unwrap().len(),
        17
    );
    let v = oxend::answer(
        &json!({"method": "get_n_service_nodes", "params": {"limit": -1}}),
        &l,
        NOW_MS,
        &mut rng,
    );
    assert_eq!(
        v["result"]["service_node_states"].as_array().unwrap().len(),
        20
    );
    let v = oxend::answer(
        &json!({"method": "get_n_service_nodes", "params": {"limit": 0}}),
        &l,
        NOW_MS,
        &mut rng,
    );
    assert_eq!(
        v["result"]["service_node_states"].as_array().unwrap().len(),
        20,
        "limit 0 means no limit"
    );
    let v = oxend::answer(
        &json!({"method": "get_n_service_nodes", "params": {"limit": 4}}),
        &l,
        NOW_MS,
        &mut rng,
    );
    assert_eq!(
        v["result"]["service_node_states"].as_array().unwrap().len(),
        4
    );
    // Inactive nodes are listed with swarm UINT64_MAX and active false.
    let v = oxend::answer(
        &json!({"method": "get_service_nodes", "params": {"fields": ["swarm_id", "swarm", "active"]}}),
        &l,
        NOW_MS,
        &mut rng,
    );
    let first = &v["result"]["service_node_states"][0];
    assert_eq!(first["swarm_id"], json!(u64::MAX));
    assert_eq!(first["swarm"], "ffffffffffffffff");
    assert_eq!(first["active"], false);
    assert_eq!(v["result"]["block_hash"], oxend::block_hash(9));
}

/// The seed reply's `height`/`target_height` are the chain-scale estimate at the time of the
/// answer; the list epoch is its own `epoch` field and still drives `block_hash`.
#[test]
fn seed_height_is_chain_scale_and_epoch_is_separate() {
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "get_n_service_nodes",
        "params": {"active_only": true, "poll_block_hash": "x"}});
    let v = oxend::answer(&req, &list(), NOW_MS, &mut SeededRandom::new(1));
    let r = &v["result"];
    assert_eq!(r["height"], json!(1_988_505));
    assert_eq!(r["target_height"], json!(1_988_505));
    assert_eq!(r["epoch"], json!(9));
    assert_eq!(r["block_hash"], json!(oxend::block_hash(9)));
    assert_eq!(r["unchanged"], json!(false));
    // Two minutes later the height moves on; the list (and block_hash) did not change.
    let v = oxend::answer(
        &json!({"method": "get_n_service_nodes", "params": {"poll_block_hash": oxend::block_hash(9)}}),
        &list(),
        NOW_MS + 120_000,
        &mut SeededRandom::new(1),
    );
    assert_eq!(
        v["result"],
        json!({"height": 1_988_506, "target_height": 1_988_506, "epoch": 9,
            "block_hash": oxend::block_hash(9), "hardfork": 19, "snode_revision": 0,
            "status": "OK", "unchanged": true})
    );
}
