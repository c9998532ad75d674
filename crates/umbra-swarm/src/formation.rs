//! Swarm formation: oxend's `calc_swarm_changes` rules (`shared/spec/swarms.md` §3).
//!
//! Input: the active nodes grouped by their current swarm id, newly (re)joined nodes under
//! [`UNASSIGNED_SWARM_ID`]; nodes that left are simply absent. Output: the new grouping.
//!
//! 1. Unassigned nodes are taken out; with no swarm left, swarm `0` is created.
//! 2. New nodes are placed one at a time, in key order, into a random swarm among the
//!    smallest quarter ([`FILL_SWARM_LOWER_PERCENTILE`]); after each, new swarms are created
//!    from the excess (step 4).
//! 3. Robin Hood: starving swarms (fewer than [`MIN_SWARM_SIZE`]) take nodes from the large
//!    swarms (above the [`STEALING_SWARM_UPPER_PERCENTILE`] size), as long as the large swarms
//!    have enough excess to cover the deficit.
//! 4. New swarms from excess: unless some swarm is starving, while
//!    `Σ max(0, size − 5) ≥ 7 + 2 · swarms`, seven nodes drawn from the swarms above 5 form a
//!    new swarm whose id is the midpoint of the largest gap between existing ids
//!    ([`new_swarm_id`]).
//! 5. Dissolve: while more than one swarm exists and one is starving, the starving swarm with
//!    the lowest id is dissolved and its nodes go to random smallest swarms (step 4 after each).
//!
//! Consequences (tested below): fewer than 5 nodes form one swarm; 12 new nodes form one
//! swarm of 12; 14 form two swarms of 7; 21 form three swarms of 7.
//!
//! Every random choice comes from the [`SwarmRng`] passed in, and equal-size swarms are
//! ordered by id (oxend uses an unstable sort there, so Umbra reproduces oxend's invariants,
//! not its exact choices). The same input and seed always give the same output.

use std::collections::BTreeMap;

use crate::rng::{Mt19937_64, SwarmRng, uniform_index};
use crate::{MAX_SWARM_ID, SwarmId, UNASSIGNED_SWARM_ID};

/// Below this size a swarm is "starving" (`MIN_SWARM_SIZE`).
pub const MIN_SWARM_SIZE: usize = 5;
/// `IDEAL_SWARM_MARGIN`: each existing swarm raises the excess needed for a new one by this.
pub const IDEAL_SWARM_MARGIN: usize = 2;
/// Size of a newly created swarm (`IDEAL_SWARM_SIZE` = `NEW_SWARM_SIZE`).
pub const NEW_SWARM_SIZE: usize = 7;
/// Nodes above this count in a swarm are "excess" (`EXCESS_BASE`).
pub const EXCESS_BASE: usize = 5;
/// Declared maximum swarm size (not enforced by the algorithm, as in oxend).
pub const MAX_SWARM_SIZE: usize = 10;
/// New nodes go to swarms at or below this size percentile.
pub const FILL_SWARM_LOWER_PERCENTILE: usize = 25;
/// Starving swarms take nodes from swarms above this size percentile.
pub const STEALING_SWARM_UPPER_PERCENTILE: usize = 75;
/// Nodes of dissolved swarms go to the smallest swarms (percentile 0).
pub const DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE: usize = 0;

/// Swarms (by id) and their member nodes.
pub type SwarmMap<K> = BTreeMap<SwarmId, Vec<K>>;

/// Applies oxend's formation rules to `swarms` in place.
///
/// `swarms` holds every active node exactly once, grouped by its current swarm id; nodes
/// that are new or rejoining are listed under [`UNASSIGNED_SWARM_ID`]. Afterwards every node
/// is in a real swarm, each member list is sorted, and (unless there are no nodes at all)
/// no swarm is empty. With no node at all the result is `{0: []}`, as in oxend.
pub fn calc_swarm_changes<K: Ord + Clone, R: SwarmRng + ?Sized>(
    swarms: &mut SwarmMap<K>,
    rng: &mut R,
) {
    for members in swarms.values_mut() {
        members.sort();
    }
    // Step 1.
    let unassigned = swarms.remove(&UNASSIGNED_SWARM_ID).unwrap_or_default();
    // Empty swarms carry no information (a node-keyed view cannot even express them).
    swarms.retain(|_, members| !members.is_empty());
    if swarms.is_empty() {
        swarms.insert(0, Vec::new());
    }
    // Step 2.
    for node in unassigned {
        assign_node(node, swarms, rng, FILL_SWARM_LOWER_PERCENTILE);
    }
    // Step 3.
    robin_hood(swarms, rng);
    // Step 5.
    dissolve_starving(swarms, rng);
    for members in swarms.values_mut() {
        members.sort();
    }
    if swarms.len() > 1 {
        swarms.retain(|_, members| !members.is_empty());
    }
}

/// Convenience form of [`calc_swarm_changes`] keyed by node: `current` maps each **active**
/// node to its current swarm id ([`UNASSIGNED_SWARM_ID`] for new or returning nodes); the
/// result maps each of them to its new swarm. Randomness comes from
/// [`Mt19937_64::new(seed)`](Mt19937_64::new).
#[must_use]
pub fn assign_swarms<K: Ord + Clone>(
    current: &BTreeMap<K, SwarmId>,
    seed: u64,
) -> BTreeMap<K, SwarmId> {
    let mut swarms: SwarmMap<K> = BTreeMap::new();
    for (node, &swarm) in current {
        swarms.entry(swarm).or_default().push(node.clone());
    }
    let mut rng = Mt19937_64::new(seed);
    calc_swarm_changes(&mut swarms, &mut rng);
    swarms
        .into_iter()
        .flat_map(|(id, members)| members.into_iter().map(move |node| (node, id)))
        .collect()
}

/// The id for a new swarm: the midpoint of the largest gap between consecutive existing ids
/// (`sorted_ids` ascending, without [`UNASSIGNED_SWARM_ID`]). The wrap-around gap from the
/// highest id to the lowest treats [`MAX_SWARM_ID`] and `0` as adjacent; the midpoint wraps
/// past [`MAX_SWARM_ID`] to 0. With no swarm the id is 0. On equal gaps the one with the
/// lowest left id wins, the wrap-around gap last.
#[must_use]
pub fn new_swarm_id(sorted_ids: &[SwarmId]) -> SwarmId {
    let (Some(&first), Some(&last)) = (sorted_ids.first(), sorted_ids.last()) else {
        return 0;
    };
    let mut best_gap: u128 = 0;
    let mut best_left: u128 = u128::from(last);
    for pair in sorted_ids.windows(2) {
        if let [a, b] = pair {
            let gap = u128::from(b.saturating_sub(*a));
            if gap > best_gap {
                best_gap = gap;
                best_left = u128::from(*a);
            }
        }
    }
    let max = u128::from(MAX_SWARM_ID);
    let wrap_gap = max - u128::from(last) + u128::from(first) + 1;
    if wrap_gap > best_gap {
        best_gap = wrap_gap;
        best_left = u128::from(last);
    }
    let mut id = best_left + best_gap / 2;
    if id > max {
        id -= max + 1;
    }
    u64::try_from(id).unwrap_or(0)
}

/// Swarms ordered by (size, id), ascending.
fn sorted_by_size<K>(swarms: &SwarmMap<K>) -> Vec<(SwarmId, usize)> {
    let mut sorted: Vec<(SwarmId, usize)> = swarms.iter().map(|(&id, m)| (id, m.len())).collect();
    sorted.sort_by_key(|&(id, size)| (size, id));
    sorted
}

/// A random swarm among those whose size is at most the size at `percentile` of the
/// size-sorted order.
fn pick_swarm_at_percentile<K, R: SwarmRng + ?Sized>(
    swarms: &SwarmMap<K>,
    rng: &mut R,
    percentile: usize,
) -> Option<SwarmId> {
    let sorted = sorted_by_size(swarms);
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let size_at = sorted.get(percentile * (n - 1) / 100)?.1;
    let candidates = sorted.iter().take_while(|&&(_, s)| s <= size_at).count();
    sorted
        .get(uniform_index(rng, candidates))
        .map(|&(id, _)| id)
}

fn assign_node<K: Ord + Clone, R: SwarmRng + ?Sized>(
    node: K,
    swarms: &mut SwarmMap<K>,
    rng: &mut R,
    percentile: usize,
) {
    let target = pick_swarm_at_percentile(swarms, rng, percentile).unwrap_or(0);
    swarms.entry(target).or_default().push(node);
    create_new_swarms_from_excess(swarms, rng);
}

/// Every node of the swarms larger than `threshold`, swarm by swarm in id order (as
/// `(swarm id, position)`), and their excess `Σ (size − EXCESS_BASE)`.
fn excess_pool<K>(swarms: &SwarmMap<K>, threshold: usize) -> (Vec<(SwarmId, usize)>, usize) {
    let mut pool = Vec::new();
    let mut excess = 0;
    for (&id, members) in swarms {
        if members.len() > threshold {
            pool.extend((0..members.len()).map(|pos| (id, pos)));
            excess += members.len().saturating_sub(EXCESS_BASE);
        }
    }
    (pool, excess)
}

/// Removes and returns one uniformly chosen node of the excess pool above `threshold`.
fn take_from_pool<K, R: SwarmRng + ?Sized>(
    swarms: &mut SwarmMap<K>,
    rng: &mut R,
    threshold: usize,
) -> Option<K> {
    let (pool, _) = excess_pool(swarms, threshold);
    if pool.is_empty() {
        return None;
    }
    let (id, pos) = *pool.get(uniform_index(rng, pool.len()))?;
    let members = swarms.get_mut(&id)?;
    (pos < members.len()).then(|| members.remove(pos))
}

fn total_excess<K>(swarms: &SwarmMap<K>) -> usize {
    swarms
        .values()
        .map(|m| m.len().saturating_sub(EXCESS_BASE))
        .sum()
}

fn create_new_swarms_from_excess<K, R: SwarmRng + ?Sized>(swarms: &mut SwarmMap<K>, rng: &mut R) {
    if swarms.values().any(|m| m.len() < MIN_SWARM_SIZE) {
        return;
    }
    loop {
        let threshold = NEW_SWARM_SIZE + IDEAL_SWARM_MARGIN * swarms.len();
        if total_excess(swarms) < threshold {
            return;
        }
        let mut new_members = Vec::with_capacity(NEW_SWARM_SIZE);
        for _ in 0..NEW_SWARM_SIZE {
            match take_from_pool(swarms, rng, EXCESS_BASE) {
                Some(node) => new_members.push(node),
                None => break,
            }
        }
        let ids: Vec<SwarmId> = swarms.keys().copied().collect();
        let id = new_swarm_id(&ids);
        swarms.entry(id).or_default().extend(new_members);
    }
}

fn robin_hood<K, R: SwarmRng + ?Sized>(swarms: &mut SwarmMap<K>, rng: &mut R) {
    let sorted = sorted_by_size(swarms);
    let n = sorted.len();
    if n == 0 {
        return;
    }
    let upper = sorted
        .get(STEALING_SWARM_UPPER_PERCENTILE * (n - 1) / 100)
        .map_or(0, |&(_, s)| s);
    let threshold = MIN_SWARM_SIZE.max(upper.saturating_sub(1));
    for &(id, _) in &sorted {
        loop {
            let size = swarms.get(&id).map_or(MIN_SWARM_SIZE, Vec::len);
            if size >= MIN_SWARM_SIZE {
                break;
            }
            let deficit = MIN_SWARM_SIZE - size;
            let (_, excess) = excess_pool(swarms, threshold);
            if excess < deficit {
                return;
            }
            let Some(node) = take_from_pool(swarms, rng, threshold) else {
                return;
            };
            swarms.entry(id).or_default().push(node);
        }
    }
}

fn dissolve_starving<K: Ord + Clone, R: SwarmRng + ?Sized>(swarms: &mut SwarmMap<K>, rng: &mut R) {
    while swarms.len() > 1 {
        let Some(id) = swarms
            .iter()
            .find(|(_, m)| m.len() < MIN_SWARM_SIZE)
            .map(|(&id, _)| id)
        else {
            return;
        };
        let members = swarms.remove(&id).unwrap_or_default();
        for node in members {
            assign_node(
                node,
                swarms,
                rng,
                DECOMMISSIONED_REDISTRIBUTION_LOWER_PERCENTILE,
            );
        }
    }
}
