//! Scripted join/departure sequences against the formation rules of `swarms.md` §3.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use umbra_swarm::formation::MIN_SWARM_SIZE;
use umbra_swarm::{MAX_SWARM_ID, SwarmId, UNASSIGNED_SWARM_ID, assign_swarms, new_swarm_id};

const HALF: SwarmId = MAX_SWARM_ID / 2; // 2^63 - 1: the id after a lone swarm 0
const THREE_QUARTERS: SwarmId = HALF + (1 << 62); // the third swarm when 0 and HALF exist

/// A tiny network model: the active nodes and their swarms, changed by events, with the
/// formation rules run after every event (as the registry does), seeds derived per event.
struct Net {
    nodes: BTreeMap<u32, SwarmId>,
    seed: u64,
    events: u64,
}

impl Net {
    fn new(seed: u64) -> Self {
        Self {
            nodes: BTreeMap::new(),
            seed,
            events: 0,
        }
    }
    fn recompute(&mut self) {
        self.events += 1;
        self.nodes = assign_swarms(&self.nodes, umbra_swarm::mix_seed(self.seed, self.events));
    }
    /// Nodes join one event each.
    fn join(&mut self, keys: impl IntoIterator<Item = u32>) {
        for k in keys {
            self.nodes.insert(k, UNASSIGNED_SWARM_ID);
            self.recompute();
        }
    }
    /// Nodes join in one single event (one block with several registrations).
    fn join_at_once(&mut self, keys: impl IntoIterator<Item = u32>) {
        for k in keys {
            self.nodes.insert(k, UNASSIGNED_SWARM_ID);
        }
        self.recompute();
    }
    fn leave(&mut self, keys: &[u32]) {
        for k in keys {
            self.nodes.remove(k);
        }
        self.recompute();
    }
    fn swarms(&self) -> BTreeMap<SwarmId, Vec<u32>> {
        let mut s: BTreeMap<SwarmId, Vec<u32>> = BTreeMap::new();
        for (&k, &id) in &self.nodes {
            s.entry(id).or_default().push(k);
        }
        s
    }
    fn sizes(&self) -> BTreeMap<SwarmId, usize> {
        self.swarms()
            .into_iter()
            .map(|(k, v)| (k, v.len()))
            .collect()
    }
}

#[test]
fn fewer_nodes_than_the_minimum_form_one_swarm() {
    for n in 1..MIN_SWARM_SIZE as u32 {
        let mut net = Net::new(1);
        net.join(0..n);
        assert_eq!(net.sizes(), BTreeMap::from([(0, n as usize)]));
        let mut net = Net::new(1);
        net.join_at_once(0..n);
        assert_eq!(net.sizes(), BTreeMap::from([(0, n as usize)]));
    }
}

#[test]
fn twelve_nodes_form_one_swarm_of_twelve() {
    // excess 12 - 5 = 7 < threshold 7 + 2·1 = 9: no split.
    let mut net = Net::new(7);
    net.join(0..12);
    assert_eq!(net.sizes(), BTreeMap::from([(0, 12)]));
    let mut net = Net::new(7);
    net.join_at_once(0..12);
    assert_eq!(net.sizes(), BTreeMap::from([(0, 12)]));
    // 13 still one swarm (excess 8 < 9).
    net.join([12]);
    assert_eq!(net.sizes(), BTreeMap::from([(0, 13)]));
}

#[test]
fn fourteen_nodes_form_two_swarms_of_seven() {
    // At 14 nodes the excess 9 reaches 7 + 2·1: seven nodes leave for swarm MAX_ID/2.
    for seed in 0..20 {
        let mut net = Net::new(seed);
        net.join(0..14);
        assert_eq!(
            net.sizes(),
            BTreeMap::from([(0, 7), (HALF, 7)]),
            "seed {seed}"
        );
        let mut net = Net::new(seed);
        net.join_at_once(0..14);
        assert_eq!(
            net.sizes(),
            BTreeMap::from([(0, 7), (HALF, 7)]),
            "seed {seed}"
        );
    }
}

#[test]
fn growth_splits_into_a_third_swarm_at_twenty_one() {
    let mut net = Net::new(3);
    net.join(0..14);
    net.join(14..20);
    // 20 nodes: excess 10 < 7 + 2·2 = 11, still two swarms.
    assert_eq!(net.sizes().len(), 2);
    net.join([20]);
    let sizes = net.sizes();
    assert_eq!(
        sizes.keys().copied().collect::<Vec<_>>(),
        vec![0, HALF, THREE_QUARTERS],
        "the new id is the midpoint of the largest (wrap-around) gap"
    );
    assert_eq!(sizes[&THREE_QUARTERS], 7);
    assert_eq!(sizes.values().sum::<usize>(), 21);
    assert!(sizes.values().all(|&s| s >= MIN_SWARM_SIZE), "{sizes:?}");
}

#[test]
fn new_nodes_fill_the_smallest_swarm() {
    let mut net = Net::new(11);
    net.join(0..14); // two swarms of 7
    let a_members = net.swarms()[&0].clone();
    net.leave(&a_members[..1]); // swarm 0: 6, swarm HALF: 7
    assert_eq!(net.sizes(), BTreeMap::from([(0, 6), (HALF, 7)]));
    // With two swarms the 25th percentile is the smallest size: the newcomer goes to swarm 0.
    net.join([100]);
    assert_eq!(net.nodes[&100], 0);
    assert_eq!(net.sizes(), BTreeMap::from([(0, 7), (HALF, 7)]));
}

#[test]
fn a_departure_leaving_a_healthy_swarm_changes_nothing_else() {
    let mut net = Net::new(5);
    net.join(0..14);
    let before = net.nodes.clone();
    let victim = net.swarms()[&HALF][0];
    net.leave(&[victim]);
    for (k, id) in &net.nodes {
        assert_eq!(before[k], *id, "node {k} moved without reason");
    }
}

#[test]
fn robin_hood_refills_a_starving_swarm() {
    let mut net = Net::new(9);
    net.join(0..14);
    let b_before = net.swarms()[&HALF].clone();
    let a_members = net.swarms()[&0].clone();
    net.leave(&a_members[..3]); // swarm 0 has 4: starving, deficit 1; swarm HALF excess 2
    assert_eq!(net.sizes(), BTreeMap::from([(0, 5), (HALF, 6)]));
    // The node that moved came from swarm HALF.
    let moved: Vec<u32> = net.swarms()[&0]
        .iter()
        .copied()
        .filter(|k| !a_members.contains(k))
        .collect();
    assert_eq!(moved.len(), 1);
    assert!(b_before.contains(&moved[0]));
}

#[test]
fn a_starving_swarm_without_donors_is_dissolved() {
    let mut net = Net::new(13);
    net.join(0..14);
    let a_members = net.swarms()[&0].clone();
    let b_members = net.swarms()[&HALF].clone();
    // swarm 0 keeps 2: deficit 3 > excess 2 of swarm HALF, so Robin Hood gives up and
    // swarm 0 is dissolved into swarm HALF.
    net.leave(&a_members[..5]);
    assert_eq!(net.sizes(), BTreeMap::from([(HALF, 9)]));
    for k in a_members[5..].iter().chain(&b_members) {
        assert_eq!(net.nodes[k], HALF);
    }
}

#[test]
fn shrinking_below_the_minimum_keeps_one_swarm() {
    let mut net = Net::new(2);
    net.join(0..7);
    net.leave(&[0, 1, 2, 3]);
    assert_eq!(net.sizes(), BTreeMap::from([(0, 3)]));
    // Two starving swarms collapse into one.
    let mut net = Net::new(2);
    net.join(0..14);
    let a = net.swarms()[&0].clone();
    let b = net.swarms()[&HALF].clone();
    let mut gone: Vec<u32> = a[..5].to_vec();
    gone.extend(&b[..5]);
    net.leave(&gone);
    let sizes = net.sizes();
    assert_eq!(sizes.len(), 1, "{sizes:?}");
    assert_eq!(sizes.values().sum::<usize>(), 4);
}

#[test]
fn a_returning_node_rejoins() {
    let mut net = Net::new(4);
    net.join(0..14);
    let node = net.swarms()[&0][0];
    net.leave(&[node]);
    net.join([node]);
    assert_ne!(net.nodes[&node], UNASSIGNED_SWARM_ID);
    assert_eq!(net.sizes(), BTreeMap::from([(0, 7), (HALF, 7)]));
}

#[test]
fn same_events_and_seed_give_the_same_network() {
    let run = |seed| {
        let mut net = Net::new(seed);
        net.join(0..30);
        net.leave(&[3, 4, 5, 6, 7, 8]);
        net.join(100..110);
        net.nodes
    };
    assert_eq!(run(42), run(42));
    // Different seeds pick different members (with overwhelming probability for 40 nodes).
    assert!((0..5).any(|s| run(s) != run(42)));
}

#[test]
fn new_swarm_id_is_the_midpoint_of_the_largest_gap() {
    assert_eq!(new_swarm_id(&[]), 0);
    assert_eq!(new_swarm_id(&[0]), HALF);
    assert_eq!(new_swarm_id(&[0, HALF]), THREE_QUARTERS);
    assert_eq!(
        new_swarm_id(&[0, 100, 1000]),
        1000 + (MAX_SWARM_ID - 1000) / 2
    );
    // Inner gap larger than the wrap-around one.
    assert_eq!(
        new_swarm_id(&[10, MAX_SWARM_ID - 10]),
        10 + (MAX_SWARM_ID - 20) / 2
    );
    // The midpoint wraps past MAX_ID to 0.
    assert_eq!(new_swarm_id(&[MAX_SWARM_ID]), HALF - 1);
    assert_eq!(
        new_swarm_id(&[MAX_SWARM_ID - 1, MAX_SWARM_ID]),
        MAX_SWARM_ID / 2 - 1
    );
}
