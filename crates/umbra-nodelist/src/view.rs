//! One node's view of the network: which swarm it is in, who its fellow members are, and every
//! swarm and listed node — the one view the node (answers, `421`s, onion forwarding) and its
//! replica (fan-out, anti-entropy, handover) share.
//!
//! A [`SwarmView`] is an immutable snapshot built from the registry's signed node list
//! ([`SwarmView::from_list`]), a static configuration ([`SwarmView::single`]) or a test. Swarms
//! are formed by the active nodes with an assigned swarm id; every listed node stays known
//! (an onion relay may be asked to forward to a node that is in no swarm yet).
//!
//! A view is *stale* when a newer list than the one it comes from is known to exist: the node
//! then takes itself for responsible for no account (`storage-rpc.md` §11: `421`) instead of
//! storing data for a swarm it may no longer be in. Who marks it stale is the holder of the
//! current view (the node's handle); the view only carries the flag.

use std::collections::BTreeMap;

use umbra_crypto::{AccountId, Ed25519PublicKey};
use umbra_swarm::{SwarmId, SwarmRing};

use crate::list::{NodeEntry, NodeList};

/// A consistent snapshot of the network's membership, seen from one node.
#[derive(Debug, Clone)]
pub struct SwarmView {
    epoch: u64,
    our_key: Ed25519PublicKey,
    nodes: BTreeMap<Ed25519PublicKey, NodeEntry>,
    swarms: BTreeMap<SwarmId, Vec<NodeEntry>>,
    ring: SwarmRing,
    our_swarm: Option<SwarmId>,
    stale: bool,
}

impl SwarmView {
    /// A view that knows nothing yet (epoch 0, no swarms): the node is responsible for no
    /// account and replication stays idle.
    #[must_use]
    pub fn empty(our_key: Ed25519PublicKey) -> Self {
        SwarmView::new(0, our_key, [])
    }

    /// A view at `epoch` (0: not from a registry list) over `nodes` (all registered nodes,
    /// active or not), seen by the node whose Ed25519 key is `our_key`. A key listed twice
    /// keeps its last entry.
    #[must_use]
    pub fn new(
        epoch: u64,
        our_key: Ed25519PublicKey,
        nodes: impl IntoIterator<Item = NodeEntry>,
    ) -> Self {
        let nodes: BTreeMap<Ed25519PublicKey, NodeEntry> =
            nodes.into_iter().map(|n| (n.pubkey_ed25519, n)).collect();
        let mut swarms: BTreeMap<SwarmId, Vec<NodeEntry>> = BTreeMap::new();
        for n in nodes.values().filter(|n| n.in_swarm()) {
            swarms.entry(n.swarm_id).or_default().push(n.clone());
        }
        let ring = SwarmRing::new(swarms.keys().copied());
        let our_swarm = nodes
            .get(&our_key)
            .filter(|n| n.in_swarm())
            .map(|n| n.swarm_id);
        SwarmView {
            epoch,
            our_key,
            nodes,
            swarms,
            ring,
            our_swarm,
            stale: false,
        }
    }

    /// The view described by a (verified) registry node list.
    #[must_use]
    pub fn from_list(list: &NodeList, our_key: Ed25519PublicKey) -> Self {
        SwarmView::new(list.epoch, our_key, list.nodes.iter().cloned())
    }

    /// A network of one swarm, `me.swarm_id`, holding only this node (a node run without a
    /// registry).
    #[must_use]
    pub fn single(me: NodeEntry) -> Self {
        SwarmView::new(0, me.pubkey_ed25519, [me])
    }

    /// The same view, marked stale or fresh ([`SwarmView::is_stale`]).
    #[must_use]
    pub fn with_stale(mut self, stale: bool) -> Self {
        self.stale = stale;
        self
    }

    /// Epoch of the node list this view comes from (0 for a static or test view).
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// This node's Ed25519 key.
    #[must_use]
    pub fn our_key(&self) -> &Ed25519PublicKey {
        &self.our_key
    }

    /// This node's swarm, if it is an active member of one (also while stale: the last swarm
    /// it knew).
    #[must_use]
    pub fn our_swarm(&self) -> Option<SwarmId> {
        self.our_swarm
    }

    /// Whether a newer node list than this view's is known to exist.
    #[must_use]
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Whether the node knows its swarm by its newest list: in a swarm, and not stale.
    #[must_use]
    pub fn knows_its_swarm(&self) -> bool {
        self.our_swarm.is_some() && !self.stale
    }

    /// Whether this node appears in the list at all (registered, active or not).
    #[must_use]
    pub fn is_listed(&self) -> bool {
        self.nodes.contains_key(&self.our_key)
    }

    /// Whether any swarm is known.
    #[must_use]
    pub fn has_swarms(&self) -> bool {
        !self.swarms.is_empty()
    }

    /// Every swarm with its active members, by swarm id.
    #[must_use]
    pub fn swarms(&self) -> &BTreeMap<SwarmId, Vec<NodeEntry>> {
        &self.swarms
    }

    /// Every listed node (in a swarm or not, active or not), by Ed25519 key.
    #[must_use]
    pub fn nodes(&self) -> &BTreeMap<Ed25519PublicKey, NodeEntry> {
        &self.nodes
    }

    /// The listed node with this key.
    #[must_use]
    pub fn node(&self, key: &Ed25519PublicKey) -> Option<&NodeEntry> {
        self.nodes.get(key)
    }

    /// Active members of a swarm (empty if unknown).
    #[must_use]
    pub fn members(&self, swarm: SwarmId) -> &[NodeEntry] {
        self.swarms.get(&swarm).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The other active members of this node's swarm.
    #[must_use]
    pub fn peers(&self) -> Vec<NodeEntry> {
        match self.our_swarm {
            Some(id) => self
                .members(id)
                .iter()
                .filter(|m| m.pubkey_ed25519 != self.our_key)
                .cloned()
                .collect(),
            None => Vec::new(),
        }
    }

    /// Whether `key` is another active member of this node's swarm.
    #[must_use]
    pub fn is_peer(&self, key: &Ed25519PublicKey) -> bool {
        *key != self.our_key
            && self.our_swarm.is_some()
            && self
                .nodes
                .get(key)
                .is_some_and(|m| m.in_swarm() && Some(m.swarm_id) == self.our_swarm)
    }

    /// The swarm an account maps to (`swarms.md` §2), if any swarm exists.
    #[must_use]
    pub fn swarm_for(&self, account: &AccountId) -> Option<SwarmId> {
        self.ring
            .swarm_for_account(account.as_bytes())
            .ok()
            .flatten()
    }

    /// Whether the account maps to this node's swarm. Never while the view is stale: the node
    /// may have left that swarm in the newer list.
    #[must_use]
    pub fn is_ours(&self, account: &AccountId) -> bool {
        if self.stale {
            return false;
        }
        match (self.our_swarm, self.swarm_for(account)) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use umbra_crypto::X25519PublicKey;
    use umbra_swarm::UNASSIGNED_SWARM_ID;

    use super::*;

    fn key(b: u8) -> Ed25519PublicKey {
        Ed25519PublicKey::from_bytes([b; 32])
    }

    fn node(k: u8, swarm: SwarmId, active: bool) -> NodeEntry {
        NodeEntry {
            pubkey_ed25519: key(k),
            pubkey_x25519: X25519PublicKey::from_bytes([k ^ 0xff; 32]),
            public_ip: Ipv4Addr::LOCALHOST,
            storage_port: 1000 + u16::from(k),
            storage_lmq_port: 2000 + u16::from(k),
            swarm_id: swarm,
            active,
            version: [2, 11, 0],
        }
    }

    #[test]
    fn membership_and_peers() {
        let v = SwarmView::new(
            3,
            key(1),
            [
                node(1, 100, true),
                node(2, 100, true),
                node(3, 100, false),
                node(4, u64::MAX / 2, true),
                node(5, UNASSIGNED_SWARM_ID, true),
            ],
        );
        assert_eq!(v.our_swarm(), Some(100));
        assert_eq!(v.swarms().len(), 2);
        assert_eq!(v.peers(), vec![node(2, 100, true)]);
        assert!(v.is_peer(&key(2)));
        assert!(!v.is_peer(&key(1)), "not ourselves");
        assert!(!v.is_peer(&key(3)), "inactive");
        assert!(!v.is_peer(&key(4)), "other swarm");
        assert!(!v.is_peer(&key(9)), "unknown");
        assert!(v.is_listed());
        assert_eq!(
            v.nodes().len(),
            5,
            "inactive and unplaced nodes stay listed"
        );
        // The space of an all-zero key is 0: the nearest swarm is 100.
        let zero = AccountId::new([0; 33]);
        assert!(v.is_ours(&zero));
        // Space 2^63: the nearest swarm is u64::MAX / 2.
        let mut far = [0u8; 33];
        far[1] = 0x80;
        assert!(!v.is_ours(&AccountId::new(far)));
        assert_eq!(v.swarm_for(&AccountId::new(far)), Some(u64::MAX / 2));
        let inactive = SwarmView::new(1, key(3), [node(3, 100, false)]);
        assert_eq!(inactive.our_swarm(), None);
        assert!(inactive.is_listed());
        assert!(!SwarmView::empty(key(1)).is_ours(&zero));
        assert!(!SwarmView::empty(key(1)).has_swarms());
    }

    #[test]
    fn a_stale_view_is_responsible_for_nothing_but_remembers_its_swarm() {
        let zero = AccountId::new([0; 33]);
        let fresh = SwarmView::single(node(1, 100, true));
        assert!(fresh.is_ours(&zero));
        assert!(fresh.knows_its_swarm());
        let stale = fresh.with_stale(true);
        assert!(!stale.is_ours(&zero));
        assert!(!stale.knows_its_swarm());
        assert_eq!(stale.our_swarm(), Some(100));
        assert!(stale.with_stale(false).is_ours(&zero));
    }
}
