//! Every vector of `shared/vectors/swarm.json` (from Session's storage-server unit tests).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use umbra_swarm::{SwarmRing, account_swarm_space_hex};

fn load() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/swarm.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("swarm.json is JSON")
}

fn u64_of(v: &serde_json::Value) -> u64 {
    v.as_str()
        .expect("u64 values are decimal strings")
        .parse()
        .expect("decimal u64")
}

#[test]
fn swarm_space_vectors() {
    let v = load();
    let cases = v["swarm_space"].as_array().expect("swarm_space array");
    assert_eq!(cases.len(), 11);
    for case in cases {
        let pubkey = case["pubkey"].as_str().expect("pubkey");
        let expected = u64_of(&case["space"]);
        assert_eq!(
            account_swarm_space_hex(pubkey).expect("valid account"),
            expected,
            "space of {pubkey}"
        );
    }
}

#[test]
fn mapping_vectors() {
    let v = load();
    let sets = v["mapping"].as_array().expect("mapping array");
    assert_eq!(sets.len(), 3);
    let mut total = 0;
    for set in sets {
        let ids: Vec<u64> = set["swarm_ids"]
            .as_array()
            .expect("swarm_ids")
            .iter()
            .map(u64_of)
            .collect();
        // The ring must not depend on the order the ids come in.
        let ring = SwarmRing::new(ids.iter().rev().copied());
        for case in set["cases"].as_array().expect("cases") {
            let pubkey = case["pubkey"].as_str().expect("pubkey");
            let expected = u64_of(&case["expected_swarm"]);
            assert_eq!(
                ring.swarm_for_account_hex(pubkey).expect("valid account"),
                Some(expected),
                "swarm of {pubkey} among {ids:?}"
            );
            total += 1;
        }
    }
    assert_eq!(total, 32);
}
