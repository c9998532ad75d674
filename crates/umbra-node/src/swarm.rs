//! The node's view of the swarms: which swarm it is in, who its fellow members are, and every
//! swarm of the network (to answer `get_swarm` and 421 replies).
//!
//! The view is replaced as a whole ([`SwarmHandle::set`]) by whatever learns the network's
//! membership: today the static configuration or a test; next, the registry integration.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use umbra_swarm::{SwarmId, SwarmRing, UNASSIGNED_SWARM_ID};

/// What clients and peers need to know about one storage node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Ed25519 identity key (signs swarm results; the node's name in `swarm` maps).
    pub pubkey_ed25519: [u8; 32],
    /// X25519 key (onion-layer encryption).
    pub pubkey_x25519: [u8; 32],
    /// Advertised IPv4 address.
    pub ip: Ipv4Addr,
    /// HTTPS port of `/storage_rpc/v1`.
    pub https_port: u16,
    /// OMQ/QUIC port (advertised as `port_omq`/`port_quic`; Umbra does not serve OMQ).
    pub omq_port: u16,
}

impl NodeInfo {
    /// The `snodes` entry of `get_swarm` (`storage-rpc.md` §5.11). Umbra nodes have no separate
    /// legacy key: `pubkey_legacy` is the Ed25519 key.
    pub fn to_json(&self) -> Value {
        json!({
            "address": format!("{}.snode", base32z(&self.pubkey_ed25519)),
            "pubkey_legacy": hex::encode(self.pubkey_ed25519),
            "pubkey_x25519": hex::encode(self.pubkey_x25519),
            "pubkey_ed25519": hex::encode(self.pubkey_ed25519),
            "port": self.https_port.to_string(),
            "port_https": self.https_port,
            "port_omq": self.omq_port,
            "port_quic": self.omq_port,
            "ip": self.ip.to_string(),
        })
    }
}

/// A consistent snapshot of swarm membership.
#[derive(Debug, Clone, Default)]
pub struct SwarmView {
    our_key: [u8; 32],
    our_swarm: Option<SwarmId>,
    swarms: BTreeMap<SwarmId, Vec<NodeInfo>>,
    ring: SwarmRing,
}

impl SwarmView {
    /// Builds a view from every swarm's members. `our_key` is this node's Ed25519 key; the node
    /// is in the swarm that lists it (if any). Swarm id `UINT64_MAX` ("no swarm") is dropped.
    pub fn new(our_key: [u8; 32], swarms: BTreeMap<SwarmId, Vec<NodeInfo>>) -> SwarmView {
        let swarms: BTreeMap<SwarmId, Vec<NodeInfo>> = swarms
            .into_iter()
            .filter(|(id, _)| *id != UNASSIGNED_SWARM_ID)
            .collect();
        let our_swarm = swarms
            .iter()
            .find(|(_, members)| members.iter().any(|m| m.pubkey_ed25519 == our_key))
            .map(|(id, _)| *id);
        let ring = SwarmRing::new(swarms.keys().copied());
        SwarmView {
            our_key,
            our_swarm,
            swarms,
            ring,
        }
    }

    /// A network of one swarm holding only this node.
    pub fn single(me: NodeInfo, swarm_id: SwarmId) -> SwarmView {
        let key = me.pubkey_ed25519;
        SwarmView::new(key, BTreeMap::from([(swarm_id, vec![me])]))
    }

    /// This node's swarm, if it is in one.
    pub fn our_swarm(&self) -> Option<SwarmId> {
        self.our_swarm
    }

    /// This node's Ed25519 key.
    pub fn our_key(&self) -> &[u8; 32] {
        &self.our_key
    }

    /// Whether any swarm is known.
    pub fn has_swarms(&self) -> bool {
        !self.swarms.is_empty()
    }

    /// Every swarm and its members.
    pub fn swarms(&self) -> &BTreeMap<SwarmId, Vec<NodeInfo>> {
        &self.swarms
    }

    /// The swarm an account (33 bytes with prefix) maps to.
    pub fn swarm_for(&self, account: &[u8; 33]) -> Option<SwarmId> {
        self.ring.swarm_for_account(account).ok().flatten()
    }

    /// Whether the account belongs to this node's swarm.
    pub fn is_ours(&self, account: &[u8; 33]) -> bool {
        match (self.our_swarm, self.swarm_for(account)) {
            (Some(ours), Some(theirs)) => ours == theirs,
            _ => false,
        }
    }

    /// Members of a swarm (empty if unknown).
    pub fn members(&self, swarm: SwarmId) -> &[NodeInfo] {
        self.swarms.get(&swarm).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The other members of this node's swarm.
    pub fn peers(&self) -> Vec<NodeInfo> {
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

    /// The `get_swarm` body (without `t`/`hf`) for an account: its swarm's members and the swarm
    /// id in lowercase hex; `snodes: []`, `swarm: "ffffffffffffffff"` when no swarm is known.
    pub fn swarm_json(&self, account: &[u8; 33]) -> Value {
        match self.swarm_for(account) {
            Some(id) => json!({
                "snodes": self.members(id).iter().map(NodeInfo::to_json).collect::<Vec<_>>(),
                "swarm": format!("{id:x}"),
            }),
            None => json!({
                "snodes": [],
                "swarm": format!("{UNASSIGNED_SWARM_ID:x}"),
            }),
        }
    }
}

/// A shared, replaceable [`SwarmView`]. Readers take a cheap snapshot ([`SwarmHandle::get`]).
#[derive(Debug, Clone, Default)]
pub struct SwarmHandle(Arc<RwLock<Arc<SwarmView>>>);

impl SwarmHandle {
    /// A handle holding `view`.
    pub fn new(view: SwarmView) -> SwarmHandle {
        SwarmHandle(Arc::new(RwLock::new(Arc::new(view))))
    }

    /// The current view.
    pub fn get(&self) -> Arc<SwarmView> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the view (e.g. after the registry's node list changed).
    pub fn set(&self, view: SwarmView) {
        let view = Arc::new(view);
        match self.0.write() {
            Ok(mut g) => *g = view,
            Err(p) => *p.into_inner() = view,
        }
    }
}

/// z-base-32 encoding (the alphabet of Lokinet `.snode` addresses), most significant bit first.
pub fn base32z(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(k: u8) -> NodeInfo {
        NodeInfo {
            pubkey_ed25519: [k; 32],
            pubkey_x25519: [k ^ 0xff; 32],
            ip: Ipv4Addr::new(10, 0, 0, k),
            https_port: 22021,
            omq_port: 22020,
        }
    }

    #[test]
    fn base32z_known_values() {
        assert_eq!(base32z(&[]), "");
        assert_eq!(base32z(&[0]), "yy");
        assert_eq!(base32z(&[0xff]), "9h");
        assert_eq!(base32z(&[0u8; 32]).len(), 52);
        // 0xf0 = 11110 000(00): index 30 ('6') then index 0 ('y').
        assert_eq!(base32z(&[0xf0]), "6y");
    }

    #[test]
    fn membership_and_mapping() {
        let mut swarms = BTreeMap::new();
        swarms.insert(100u64, vec![node(1), node(2)]);
        swarms.insert(u64::MAX / 2, vec![node(3)]);
        swarms.insert(UNASSIGNED_SWARM_ID, vec![node(9)]);
        let v = SwarmView::new([1; 32], swarms);
        assert_eq!(v.our_swarm(), Some(100));
        assert_eq!(v.swarms().len(), 2);
        assert_eq!(v.peers(), vec![node(2)]);
        // space of an all-zero key is 0: nearest swarm is 100.
        let acct = [0u8; 33];
        assert!(v.is_ours(&acct));
        let mut far = [0u8; 33];
        far[1] = 0x80; // space = 2^63, nearest is u64::MAX/2
        assert!(!v.is_ours(&far));
        let j = v.swarm_json(&far);
        assert_eq!(j["swarm"], format!("{:x}", u64::MAX / 2));
        assert_eq!(j["snodes"][0]["pubkey_ed25519"], hex::encode([3u8; 32]));
        assert_eq!(j["snodes"][0]["port"], "22021");
        assert_eq!(j["snodes"][0]["port_https"], 22021);
        let empty = SwarmView::default();
        assert_eq!(empty.swarm_json(&acct)["swarm"], "ffffffffffffffff");
        assert!(!empty.is_ours(&acct));
    }

    #[test]
    fn handle_swaps_views() {
        let h = SwarmHandle::new(SwarmView::single(node(1), 7));
        assert_eq!(h.get().our_swarm(), Some(7));
        h.set(SwarmView::default());
        assert_eq!(h.get().our_swarm(), None);
    }
}
