//! Property tests of the mapping and of the formation rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use umbra_swarm::formation::MIN_SWARM_SIZE;
use umbra_swarm::{
    MAX_SWARM_ID, SwarmId, SwarmRing, UNASSIGNED_SWARM_ID, account_swarm_space, assign_swarms,
    swarm_space,
};

/// The definition of the owner, written the slow way: among all swarms, the smallest
/// wrap-around distance, where a swarm at or after `space` measures `id - space` and one
/// before measures `space - id`; the left neighbour wins exact ties.
fn brute_force_owner(ids: &BTreeSet<SwarmId>, space: u64) -> Option<SwarmId> {
    let v: Vec<SwarmId> = ids.iter().copied().collect();
    if v.len() <= 1 {
        return v.first().copied();
    }
    let right = v.iter().copied().find(|&id| id >= space).unwrap_or(v[0]);
    let pos = v.iter().position(|&id| id == right).unwrap();
    let left = if pos == 0 { v[v.len() - 1] } else { v[pos - 1] };
    let dright = right.wrapping_sub(space);
    let dleft = space.wrapping_sub(left);
    Some(if dright < dleft { right } else { left })
}

fn ids_strategy() -> impl Strategy<Value = BTreeSet<SwarmId>> {
    prop::collection::btree_set(
        prop_oneof![
            0..=MAX_SWARM_ID,
            0u64..1000,
            (MAX_SWARM_ID - 1000)..=MAX_SWARM_ID
        ],
        0..12,
    )
}

fn space_strategy() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), 0u64..1200, (u64::MAX - 1200)..=u64::MAX]
}

proptest! {
    #[test]
    fn every_key_maps_to_exactly_one_existing_swarm(ids in ids_strategy(), space in space_strategy()) {
        let ring = SwarmRing::new(ids.iter().copied());
        let owner = ring.swarm_for_space(space);
        prop_assert_eq!(owner.is_some(), !ids.is_empty());
        if let Some(o) = owner {
            prop_assert!(ids.contains(&o));
        }
        prop_assert_eq!(owner, brute_force_owner(&ids, space));
    }

    #[test]
    fn the_owner_is_at_least_as_near_as_any_swarm(ids in ids_strategy(), space in space_strategy()) {
        let ring = SwarmRing::new(ids.iter().copied());
        if let Some(o) = ring.swarm_for_space(space) {
            let dist = |id: u64| id.wrapping_sub(space).min(space.wrapping_sub(id));
            for &id in &ids {
                prop_assert!(dist(o) <= dist(id), "owner {} at {} but {} at {}", o, dist(o), id, dist(id));
            }
        }
    }

    #[test]
    fn adding_a_swarm_only_moves_keys_to_it(ids in ids_strategy(), new in 0..=MAX_SWARM_ID, spaces in prop::collection::vec(space_strategy(), 1..20)) {
        let before = SwarmRing::new(ids.iter().copied());
        let after = SwarmRing::new(ids.iter().copied().chain([new]));
        for space in spaces {
            let a = after.swarm_for_space(space);
            prop_assert!(a == before.swarm_for_space(space) || a == Some(new));
        }
    }

    #[test]
    fn removing_a_swarm_only_moves_its_keys(ids in ids_strategy(), pick in any::<prop::sample::Index>(), spaces in prop::collection::vec(space_strategy(), 1..20)) {
        prop_assume!(ids.len() >= 2);
        let removed = *pick.get(&ids.iter().copied().collect::<Vec<_>>());
        let before = SwarmRing::new(ids.iter().copied());
        let after = SwarmRing::new(ids.iter().copied().filter(|&i| i != removed));
        for space in spaces {
            let b = before.swarm_for_space(space);
            if b != Some(removed) {
                prop_assert_eq!(after.swarm_for_space(space), b);
            }
        }
    }

    #[test]
    fn the_unassigned_id_is_never_a_swarm(ids in ids_strategy(), space in space_strategy()) {
        let ring = SwarmRing::new(ids.iter().copied().chain([UNASSIGNED_SWARM_ID]));
        prop_assert_ne!(ring.swarm_for_space(space), Some(UNASSIGNED_SWARM_ID));
    }

    #[test]
    fn the_prefix_byte_does_not_matter(key in any::<[u8; 32]>(), p1 in any::<u8>(), p2 in any::<u8>()) {
        let mut a = vec![p1];
        a.extend_from_slice(&key);
        let mut b = vec![p2];
        b.extend_from_slice(&key);
        prop_assert_eq!(account_swarm_space(&a), Ok(swarm_space(&key)));
        prop_assert_eq!(account_swarm_space(&a), account_swarm_space(&b));
    }

    #[test]
    fn account_parsing_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80), s in ".{0,80}") {
        let _ = account_swarm_space(&bytes);
        let _ = umbra_swarm::account_swarm_space_hex(&s);
    }
}

/// Arbitrary starting states: nodes with a current swarm among a few ids, some unassigned.
fn network_strategy() -> impl Strategy<Value = BTreeMap<u16, SwarmId>> {
    let swarm = prop_oneof![
        3 => Just(UNASSIGNED_SWARM_ID),
        2 => Just(0u64),
        2 => Just(MAX_SWARM_ID / 2),
        1 => Just(12345u64),
        1 => Just(MAX_SWARM_ID),
    ];
    prop::collection::btree_map(any::<u16>(), swarm, 0..60)
}

proptest! {
    #[test]
    fn formation_places_every_node_exactly_once(net in network_strategy(), seed in any::<u64>()) {
        let out = assign_swarms(&net, seed);
        prop_assert_eq!(out.keys().collect::<Vec<_>>(), net.keys().collect::<Vec<_>>());
        prop_assert!(out.values().all(|&id| id <= MAX_SWARM_ID));
    }

    #[test]
    fn formation_leaves_no_starving_swarm(net in network_strategy(), seed in any::<u64>()) {
        let out = assign_swarms(&net, seed);
        let mut sizes: BTreeMap<SwarmId, usize> = BTreeMap::new();
        for &id in out.values() {
            *sizes.entry(id).or_default() += 1;
        }
        if net.len() < MIN_SWARM_SIZE {
            prop_assert!(sizes.len() <= 1, "{:?}", sizes);
        } else {
            prop_assert!(sizes.values().all(|&s| s >= MIN_SWARM_SIZE), "{:?}", sizes);
        }
    }

    #[test]
    fn formation_is_deterministic_and_stable(net in network_strategy(), seed in any::<u64>(), seed2 in any::<u64>()) {
        let out = assign_swarms(&net, seed);
        prop_assert_eq!(&assign_swarms(&net, seed), &out);
        // Running the rules again without any event changes nothing.
        prop_assert_eq!(&assign_swarms(&out, seed2), &out);
    }

    #[test]
    fn growing_one_node_at_a_time_keeps_swarms_between_5_and_10(n in 5usize..120, seed in any::<u64>()) {
        let mut net: BTreeMap<u32, SwarmId> = BTreeMap::new();
        for k in 0..n as u32 {
            net.insert(k, UNASSIGNED_SWARM_ID);
            net = assign_swarms(&net, umbra_swarm::mix_seed(seed, u64::from(k)));
        }
        let mut sizes: BTreeMap<SwarmId, usize> = BTreeMap::new();
        for &id in net.values() {
            *sizes.entry(id).or_default() += 1;
        }
        if n >= 14 {
            prop_assert!(sizes.values().all(|&s| (5..=10).contains(&s) ), "{:?}", sizes);
        }
    }
}
