//! The node's view of the swarms: which swarm it is in, who its fellow members are, and every
//! swarm of the network (to answer `get_swarm` and 421 replies).
//!
//! The view is replaced as a whole ([`SwarmHandle::set`]) by whatever learns the network's
//! membership: the static configuration, a test, or the registry's signed node list
//! (`crate::membership`).
//!
//! A view from the registry carries the list's epoch and every node of the list (also those
//! not placed in a swarm yet: an onion relay may be asked to forward to any of them). When the
//! node hears of a newer list than the one it serves ([`SwarmHandle::note_epoch`]: a registry
//! heartbeat reply announced it), its view is *stale* until the newer list arrives: it then
//! takes itself for responsible for no account, so account requests get
//! `421` (`storage-rpc.md` §11) instead of storing data for a swarm it may no longer be in.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};
use umbra_crypto::{AccountId, Ed25519PublicKey, X25519PublicKey};

use serde_json::{Value, json};
use umbra_swarm::{SwarmId, SwarmRing, UNASSIGNED_SWARM_ID};

/// What clients and peers need to know about one storage node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Ed25519 identity key (signs swarm results; the node's name in `swarm` maps).
    pub pubkey_ed25519: Ed25519PublicKey,
    /// X25519 key (onion-layer encryption).
    pub pubkey_x25519: X25519PublicKey,
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
            "address": format!("{}.snode", base32z(self.pubkey_ed25519.as_bytes())),
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
#[derive(Debug, Clone)]
pub struct SwarmView {
    our_key: Ed25519PublicKey,
    our_swarm: Option<SwarmId>,
    swarms: BTreeMap<SwarmId, Vec<NodeInfo>>,
    ring: SwarmRing,
    /// Epoch of the node list this view comes from (0: not from a registry list).
    epoch: u64,
    /// Listed nodes that are in no swarm (not placed yet, or inactive).
    unplaced: Vec<NodeInfo>,
    /// A newer list than this one is known to exist.
    stale: bool,
}

impl SwarmView {
    /// Builds a view from every swarm's members. `our_key` is this node's Ed25519 key; the node
    /// is in the swarm that lists it (if any). Swarm id `UINT64_MAX` ("no swarm") is dropped.
    pub fn new(our_key: Ed25519PublicKey, swarms: BTreeMap<SwarmId, Vec<NodeInfo>>) -> SwarmView {
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
            epoch: 0,
            unplaced: Vec::new(),
            stale: false,
        }
    }

    /// The same view, marked as coming from the node list of `epoch`.
    #[must_use]
    pub fn with_epoch(mut self, epoch: u64) -> SwarmView {
        self.epoch = epoch;
        self
    }

    /// The same view, also knowing these listed nodes that are in no swarm (onion relays may
    /// forward to them). Nodes already in a swarm are skipped.
    #[must_use]
    pub fn with_unplaced(mut self, nodes: impl IntoIterator<Item = NodeInfo>) -> SwarmView {
        let placed: std::collections::HashSet<Ed25519PublicKey> = self
            .swarms
            .values()
            .flatten()
            .map(|m| m.pubkey_ed25519)
            .collect();
        self.unplaced = nodes
            .into_iter()
            .filter(|n| !placed.contains(&n.pubkey_ed25519))
            .collect();
        self
    }

    /// Epoch of the node list this view comes from (0 for a static or test view).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether a newer node list than this view's is known to exist: the node then answers
    /// account requests with `421` (`storage-rpc.md` §11) until it has that list.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Whether the node knows its swarm by its newest list: in a swarm, and not stale.
    pub fn knows_its_swarm(&self) -> bool {
        self.our_swarm.is_some() && !self.stale
    }

    /// Every node of the list: the members of every swarm, then the nodes in none.
    pub fn all_nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.swarms.values().flatten().chain(self.unplaced.iter())
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
    pub fn our_key(&self) -> &Ed25519PublicKey {
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
    pub fn swarm_for(&self, account: &AccountId) -> Option<SwarmId> {
        self.ring
            .swarm_for_account(account.as_bytes())
            .ok()
            .flatten()
    }

    /// Whether the account belongs to this node's swarm. Never while the view is stale
    /// ([`SwarmView::is_stale`]): the node may have left that swarm in the newer list.
    pub fn is_ours(&self, account: &AccountId) -> bool {
        if self.stale {
            return false;
        }
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
    pub fn swarm_json(&self, account: &AccountId) -> Value {
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
///
/// The handle also remembers the newest list epoch heard of ([`SwarmHandle::note_epoch`]); a
/// view older than that is handed out marked stale ([`SwarmView::is_stale`]).
#[derive(Debug, Clone)]
pub struct SwarmHandle(Arc<RwLock<Current>>);

#[derive(Debug)]
struct Current {
    view: Arc<SwarmView>,
    newest_heard: u64,
}

impl SwarmHandle {
    /// A handle holding `view`.
    pub fn new(view: SwarmView) -> SwarmHandle {
        SwarmHandle(Arc::new(RwLock::new(Current {
            newest_heard: view.epoch,
            view: Arc::new(view),
        })))
    }

    fn write<R>(&self, f: impl FnOnce(&mut Current) -> R) -> R {
        match self.0.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// The current view.
    pub fn get(&self) -> Arc<SwarmView> {
        match self.0.read() {
            Ok(g) => g.view.clone(),
            Err(p) => p.into_inner().view.clone(),
        }
    }

    /// The newest node list epoch heard of (the served view's, or a newer one announced).
    pub fn newest_heard(&self) -> u64 {
        match self.0.read() {
            Ok(g) => g.newest_heard,
            Err(p) => p.into_inner().newest_heard,
        }
    }

    /// Replaces the view (e.g. after the registry's node list changed). It is stale if a newer
    /// epoch was heard of already.
    pub fn set(&self, mut view: SwarmView) {
        self.write(|cur| {
            cur.newest_heard = cur.newest_heard.max(view.epoch);
            view.stale = view.epoch < cur.newest_heard;
            cur.view = Arc::new(view);
        });
    }

    /// Records that a node list of `epoch` exists (a registry answer announced it). If that
    /// is newer than the view's, the view turns stale until [`SwarmHandle::set`] brings a
    /// list at least that new. Returns whether the view is stale now.
    pub fn note_epoch(&self, epoch: u64) -> bool {
        self.write(|cur| {
            cur.newest_heard = cur.newest_heard.max(epoch);
            if cur.view.epoch < cur.newest_heard && !cur.view.stale {
                let mut stale = SwarmView::clone(&cur.view);
                stale.stale = true;
                cur.view = Arc::new(stale);
            }
            cur.view.stale
        })
    }
}

impl SwarmHandle {
    /// What the node serves, for readiness checks from outside (`GET /status` on the operator
    /// port): the epoch of the list it serves, the newest epoch heard of, whether it knows its
    /// swarm by that newest list, its swarm (lowercase hex, `null` when in none) and size.
    pub fn status_json(&self) -> Value {
        let view = self.get();
        let swarm = view.our_swarm();
        json!({
            "list_epoch": view.epoch(),
            "newest_epoch_heard": self.newest_heard(),
            "stale": view.is_stale(),
            "knows_its_swarm": view.knows_its_swarm(),
            "swarm": swarm.map(|id| format!("{id:x}")),
            "swarm_members": swarm.map_or(0, |id| view.members(id).len()),
            "listed_nodes": view.all_nodes().count(),
        })
    }

    /// Prometheus gauges of the same (appended to `out`).
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write as _;
        let view = self.get();
        let _ = writeln!(
            out,
            "# HELP umbra_node_list_epoch_served Epoch of the node list the node serves.\n\
             # TYPE umbra_node_list_epoch_served gauge\numbra_node_list_epoch_served {}\n\
             # HELP umbra_node_list_epoch_heard Newest node list epoch the node heard of.\n\
             # TYPE umbra_node_list_epoch_heard gauge\numbra_node_list_epoch_heard {}\n\
             # HELP umbra_node_swarm_known 1 when the node knows its swarm by the newest list.\n\
             # TYPE umbra_node_swarm_known gauge\numbra_node_swarm_known {}",
            view.epoch(),
            self.newest_heard(),
            u8::from(view.knows_its_swarm()),
        );
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
            pubkey_ed25519: Ed25519PublicKey::from_bytes([k; 32]),
            pubkey_x25519: X25519PublicKey::from_bytes([k ^ 0xff; 32]),
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
        let v = SwarmView::new(Ed25519PublicKey::from_bytes([1; 32]), swarms);
        assert_eq!(v.our_swarm(), Some(100));
        assert_eq!(v.swarms().len(), 2);
        assert_eq!(v.peers(), vec![node(2)]);
        // space of an all-zero key is 0: nearest swarm is 100.
        let acct = AccountId::new([0u8; 33]);
        assert!(v.is_ours(&acct));
        let mut far = [0u8; 33];
        far[1] = 0x80; // space = 2^63, nearest is u64::MAX/2
        let far = AccountId::new(far);
        assert!(!v.is_ours(&far));
        let j = v.swarm_json(&far);
        assert_eq!(j["swarm"], format!("{:x}", u64::MAX / 2));
        assert_eq!(j["snodes"][0]["pubkey_ed25519"], hex::encode([3u8; 32]));
        assert_eq!(j["snodes"][0]["port"], "22021");
        assert_eq!(j["snodes"][0]["port_https"], 22021);
        let empty = SwarmView::new(Ed25519PublicKey::from_bytes([0; 32]), BTreeMap::new());
        assert_eq!(empty.swarm_json(&acct)["swarm"], "ffffffffffffffff");
        assert!(!empty.is_ours(&acct));
    }

    #[test]
    fn handle_swaps_views() {
        let h = SwarmHandle::new(SwarmView::single(node(1), 7));
        assert_eq!(h.get().our_swarm(), Some(7));
        h.set(SwarmView::new(
            Ed25519PublicKey::from_bytes([0; 32]),
            BTreeMap::new(),
        ));
        assert_eq!(h.get().our_swarm(), None);
    }

    #[test]
    fn a_view_older_than_a_list_heard_of_is_stale_and_responsible_for_nothing() {
        let mut swarms = BTreeMap::new();
        swarms.insert(100u64, vec![node(1), node(2)]);
        let acct = AccountId::new([0u8; 33]);
        let h = SwarmHandle::new(SwarmView::new(
            Ed25519PublicKey::from_bytes([0; 32]),
            BTreeMap::new(),
        ));
        h.set(SwarmView::new(Ed25519PublicKey::from_bytes([1; 32]), swarms.clone()).with_epoch(5));
        assert!(h.get().is_ours(&acct));
        assert!(h.get().knows_its_swarm());
        assert!(!h.note_epoch(4), "an older epoch changes nothing");
        assert!(!h.note_epoch(5));
        assert!(h.get().is_ours(&acct));
        assert!(h.note_epoch(6));
        let v = h.get();
        assert!(v.is_stale());
        assert!(!v.is_ours(&acct), "stale: 421 for every account");
        assert!(!v.knows_its_swarm());
        assert_eq!(v.our_swarm(), Some(100), "still tells its last swarm");
        assert_eq!(h.newest_heard(), 6);
        // A list of the epoch heard of (or newer) makes it fresh again; an older one does not.
        h.set(SwarmView::new(Ed25519PublicKey::from_bytes([1; 32]), swarms.clone()).with_epoch(5));
        assert!(h.get().is_stale());
        h.set(SwarmView::new(Ed25519PublicKey::from_bytes([1; 32]), swarms).with_epoch(6));
        assert!(!h.get().is_stale());
        assert!(h.get().is_ours(&acct));
    }

    #[test]
    fn all_nodes_include_those_in_no_swarm() {
        let mut swarms = BTreeMap::new();
        swarms.insert(100u64, vec![node(1), node(2)]);
        let v = SwarmView::new(Ed25519PublicKey::from_bytes([1; 32]), swarms)
            .with_unplaced([node(2), node(3)]);
        let keys: Vec<u8> = v
            .all_nodes()
            .map(|n| n.pubkey_ed25519.as_bytes()[0])
            .collect();
        assert_eq!(keys, vec![1, 2, 3]);
    }
}
