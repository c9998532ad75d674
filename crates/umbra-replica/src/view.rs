//! The node's view of the network: which swarm it is in, who its fellow members are, and every
//! swarm (from the registry's signed node list, or a test's stand-in).
//!
//! A [`MembershipView`] is an immutable snapshot; a [`ViewHandle`] shares the current one and
//! tells subscribers when it changes. The view only moves forward: [`ViewHandle::set`] refuses
//! a view with an older epoch than the current one.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use umbra_crypto::{Ed25519PublicKey, X25519PublicKey};

use tokio::sync::watch;
use umbra_nodelist::list::{NodeEntry, NodeList};
use umbra_store::AccountId;
use umbra_swarm::{SwarmId, SwarmRing, UNASSIGNED_SWARM_ID};

/// One storage node as the view knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Ed25519 identity key (signs peer requests and swarm results).
    pub pubkey_ed25519: Ed25519PublicKey,
    /// X25519 key (onion-layer encryption).
    pub pubkey_x25519: X25519PublicKey,
    /// Advertised IPv4 address.
    pub ip: Ipv4Addr,
    /// HTTPS port of the storage API (`storage_port`).
    pub storage_port: u16,
    /// OMQ/QUIC port (`storage_lmq_port`).
    pub lmq_port: u16,
    /// The node's swarm ([`UNASSIGNED_SWARM_ID`] when none).
    pub swarm_id: SwarmId,
    /// Whether the registry counts the node as active.
    pub active: bool,
}

impl Member {
    /// The member as published in a registry node list.
    pub fn from_entry(e: &NodeEntry) -> Self {
        Member {
            pubkey_ed25519: e.pubkey_ed25519,
            pubkey_x25519: e.pubkey_x25519,
            ip: e.public_ip,
            storage_port: e.storage_port,
            lmq_port: e.storage_lmq_port,
            swarm_id: e.swarm_id,
            active: e.active,
        }
    }

    /// Whether the node is an active member of a swarm.
    pub fn in_swarm(&self) -> bool {
        self.active && self.swarm_id != UNASSIGNED_SWARM_ID
    }
}

/// A consistent snapshot of the network's membership, seen from one node.
#[derive(Debug, Clone)]
pub struct MembershipView {
    epoch: u64,
    our_key: Ed25519PublicKey,
    nodes: BTreeMap<Ed25519PublicKey, Member>,
    swarms: BTreeMap<SwarmId, Vec<Member>>,
    ring: SwarmRing,
    our_swarm: Option<SwarmId>,
}

impl MembershipView {
    /// A view that knows nothing yet (epoch 0, no swarms): replication stays idle.
    pub fn empty(our_key: Ed25519PublicKey) -> Self {
        MembershipView {
            epoch: 0,
            our_key,
            nodes: BTreeMap::new(),
            swarms: BTreeMap::new(),
            ring: SwarmRing::default(),
            our_swarm: None,
        }
    }

    /// A view at `epoch` over `nodes` (all registered nodes, active or not), seen by the node
    /// whose Ed25519 key is `our_key`. Swarms are formed by the active nodes with an assigned
    /// swarm id; a key listed twice keeps its last entry.
    pub fn new(
        epoch: u64,
        our_key: Ed25519PublicKey,
        nodes: impl IntoIterator<Item = Member>,
    ) -> Self {
        let nodes: BTreeMap<Ed25519PublicKey, Member> =
            nodes.into_iter().map(|m| (m.pubkey_ed25519, m)).collect();
        let mut swarms: BTreeMap<SwarmId, Vec<Member>> = BTreeMap::new();
        for m in nodes.values().filter(|m| m.in_swarm()) {
            swarms.entry(m.swarm_id).or_default().push(m.clone());
        }
        let ring = SwarmRing::new(swarms.keys().copied());
        let our_swarm = nodes
            .get(&our_key)
            .filter(|m| m.in_swarm())
            .map(|m| m.swarm_id);
        MembershipView {
            epoch,
            our_key,
            nodes,
            swarms,
            ring,
            our_swarm,
        }
    }

    /// The view described by a (verified) registry node list.
    pub fn from_list(list: &NodeList, our_key: Ed25519PublicKey) -> Self {
        MembershipView::new(
            list.epoch,
            our_key,
            list.nodes.iter().map(Member::from_entry),
        )
    }

    /// The list epoch this view comes from.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// This node's Ed25519 key.
    pub fn our_key(&self) -> &Ed25519PublicKey {
        &self.our_key
    }

    /// This node's swarm, if it is an active member of one.
    pub fn our_swarm(&self) -> Option<SwarmId> {
        self.our_swarm
    }

    /// Whether this node appears in the list at all (registered, active or not).
    pub fn is_listed(&self) -> bool {
        self.nodes.contains_key(&self.our_key)
    }

    /// Every swarm with its active members, by swarm id.
    pub fn swarms(&self) -> &BTreeMap<SwarmId, Vec<Member>> {
        &self.swarms
    }

    /// Every registered node, by Ed25519 key.
    pub fn nodes(&self) -> &BTreeMap<Ed25519PublicKey, Member> {
        &self.nodes
    }

    /// The node with this key, if registered.
    pub fn node(&self, key: &Ed25519PublicKey) -> Option<&Member> {
        self.nodes.get(key)
    }

    /// Active members of a swarm (empty if unknown).
    pub fn members(&self, swarm: SwarmId) -> &[Member] {
        self.swarms.get(&swarm).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The other active members of this node's swarm.
    pub fn peers(&self) -> Vec<Member> {
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
    pub fn is_peer(&self, key: &Ed25519PublicKey) -> bool {
        *key != self.our_key
            && self.our_swarm.is_some()
            && self
                .nodes
                .get(key)
                .is_some_and(|m| m.in_swarm() && Some(m.swarm_id) == self.our_swarm)
    }

    /// The swarm an account maps to (`swarms.md` §2), if any swarm exists.
    pub fn swarm_for(&self, owner: &AccountId) -> Option<SwarmId> {
        self.ring.swarm_for_account(owner.as_bytes()).ok().flatten()
    }

    /// Whether the account maps to this node's swarm.
    pub fn is_ours(&self, owner: &AccountId) -> bool {
        match (self.our_swarm, self.swarm_for(owner)) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => false,
        }
    }
}

/// A shared, replaceable [`MembershipView`] that only moves forward in epochs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ViewHandle {
    tx: Arc<watch::Sender<Arc<MembershipView>>>,
}

impl ViewHandle {
    /// A handle holding `view`.
    pub fn new(view: MembershipView) -> Self {
        let (tx, _rx) = watch::channel(Arc::new(view));
        ViewHandle { tx: Arc::new(tx) }
    }

    /// The current view.
    pub fn get(&self) -> Arc<MembershipView> {
        self.tx.borrow().clone()
    }

    /// Replaces the view unless `view` is older (lower epoch) than the current one. Returns
    /// whether it was replaced. Subscribers are told about the change.
    pub fn set(&self, view: MembershipView) -> bool {
        let view = Arc::new(view);
        self.tx.send_if_modified(|cur| {
            if view.epoch < cur.epoch {
                return false;
            }
            *cur = view;
            true
        })
    }

    /// A receiver that wakes up whenever the view is replaced.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MembershipView>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Ed25519PublicKey {
        Ed25519PublicKey::from_bytes([b; 32])
    }

    fn member(k: u8, swarm: SwarmId, active: bool) -> Member {
        Member {
            pubkey_ed25519: key(k),
            pubkey_x25519: X25519PublicKey::from_bytes([k ^ 0xff; 32]),
            ip: Ipv4Addr::LOCALHOST,
            storage_port: 1000 + u16::from(k),
            lmq_port: 2000 + u16::from(k),
            swarm_id: swarm,
            active,
        }
    }

    #[test]
    fn membership_and_peers() {
        let v = MembershipView::new(
            3,
            key(1),
            [
                member(1, 100, true),
                member(2, 100, true),
                member(3, 100, false),
                member(4, u64::MAX / 2, true),
                member(5, UNASSIGNED_SWARM_ID, true),
            ],
        );
        assert_eq!(v.our_swarm(), Some(100));
        assert_eq!(v.swarms().len(), 2);
        assert_eq!(v.peers(), vec![member(2, 100, true)]);
        assert!(v.is_peer(&key(2)));
        assert!(!v.is_peer(&key(1)), "not ourselves");
        assert!(!v.is_peer(&key(3)), "inactive");
        assert!(!v.is_peer(&key(4)), "other swarm");
        assert!(!v.is_peer(&key(9)), "unknown");
        assert!(v.is_listed());
        let zero = AccountId::new([0; 33]);
        assert!(v.is_ours(&zero));
        let mut far = [0u8; 33];
        far[1] = 0x80;
        assert!(!v.is_ours(&AccountId::new(far)));
        assert_eq!(v.swarm_for(&AccountId::new(far)), Some(u64::MAX / 2));
        let inactive = MembershipView::new(1, key(3), [member(3, 100, false)]);
        assert_eq!(inactive.our_swarm(), None);
        assert!(inactive.is_listed());
        assert!(!MembershipView::empty(key(1)).is_ours(&zero));
    }

    #[test]
    fn handle_never_goes_back() {
        let h = ViewHandle::new(MembershipView::new(5, key(1), [member(1, 7, true)]));
        let rx = h.subscribe();
        assert!(!h.set(MembershipView::new(4, key(1), [])));
        assert_eq!(h.get().epoch(), 5);
        assert!(!rx.has_changed().unwrap_or(true));
        assert!(h.set(MembershipView::new(6, key(1), [])));
        assert_eq!(h.get().epoch(), 6);
        assert!(rx.has_changed().unwrap_or(false));
    }
}
