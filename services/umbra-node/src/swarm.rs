//! The node's view of the swarms, shared by its request handlers: which swarm it is in, who
//! its fellow members are, and every swarm and listed node (to answer `get_swarm` and `421`
//! replies, and to find onion relays' next hops). The view itself is
//! [`umbra_nodelist::SwarmView`], the one the replica uses too.
//!
//! The view is replaced as a whole ([`SwarmHandle::set`]) by whatever learns the network's
//! membership: the static configuration, a test, or the registry's signed node list
//! (`crate::membership`). When the node hears of a newer list than the one it serves
//! ([`SwarmHandle::note_epoch`]: a registry heartbeat reply announced it), its view is *stale*
//! until the newer list arrives: it then takes itself for responsible for no account, so
//! account requests get `421` (`storage-rpc.md` §11) instead of storing data for a swarm it
//! may no longer be in.

use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use umbra_crypto::AccountId;
use umbra_nodelist::SwarmView;
use umbra_nodelist::list::NodeEntry;
use umbra_swarm::UNASSIGNED_SWARM_ID;

/// The `snodes` entry of `get_swarm` for one node (`storage-rpc.md` §5.11). Umbra nodes have
/// no separate legacy key: `pubkey_legacy` is the Ed25519 key; the OMQ/QUIC port is the
/// announced `storage_lmq_port` (Umbra does not serve OMQ).
pub fn snode_json(n: &NodeEntry) -> Value {
    json!({
        "address": format!("{}.snode", base32z(n.pubkey_ed25519.as_bytes())),
        "pubkey_legacy": hex::encode(n.pubkey_ed25519),
        "pubkey_x25519": hex::encode(n.pubkey_x25519),
        "pubkey_ed25519": hex::encode(n.pubkey_ed25519),
        "port": n.storage_port.to_string(),
        "port_https": n.storage_port,
        "port_omq": n.storage_lmq_port,
        "port_quic": n.storage_lmq_port,
        "ip": n.public_ip.to_string(),
    })
}

/// The `get_swarm` body (without `t`/`hf`) for an account: its swarm's members and the swarm
/// id in lowercase hex; `snodes: []`, `swarm: "ffffffffffffffff"` when no swarm is known.
pub fn swarm_json(view: &SwarmView, account: &AccountId) -> Value {
    match view.swarm_for(account) {
        Some(id) => json!({
            "snodes": view.members(id).iter().map(snode_json).collect::<Vec<_>>(),
            "swarm": format!("{id:x}"),
        }),
        None => json!({
            "snodes": [],
            "swarm": format!("{UNASSIGNED_SWARM_ID:x}"),
        }),
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
            newest_heard: view.epoch(),
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
    pub fn set(&self, view: SwarmView) {
        self.write(|cur| {
            cur.newest_heard = cur.newest_heard.max(view.epoch());
            let stale = view.epoch() < cur.newest_heard;
            cur.view = Arc::new(view.with_stale(stale));
        });
    }

    /// Records that a node list of `epoch` exists (a registry answer announced it). If that
    /// is newer than the view's, the view turns stale until [`SwarmHandle::set`] brings a
    /// list at least that new. Returns whether the view is stale now.
    pub fn note_epoch(&self, epoch: u64) -> bool {
        self.write(|cur| {
            cur.newest_heard = cur.newest_heard.max(epoch);
            if cur.view.epoch() < cur.newest_heard && !cur.view.is_stale() {
                cur.view = Arc::new(SwarmView::clone(&cur.view).with_stale(true));
            }
            cur.view.is_stale()
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
            "listed_nodes": view.nodes().len(),
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
    use std::net::Ipv4Addr;

    use umbra_crypto::{Ed25519PublicKey, X25519PublicKey};
    use umbra_swarm::SwarmId;

    use super::*;

    fn node(k: u8, swarm: SwarmId) -> NodeEntry {
        NodeEntry {
            pubkey_ed25519: Ed25519PublicKey::from_bytes([k; 32]),
            pubkey_x25519: X25519PublicKey::from_bytes([k ^ 0xff; 32]),
            public_ip: Ipv4Addr::new(10, 0, 0, k),
            storage_port: 22021,
            storage_lmq_port: 22020,
            swarm_id: swarm,
            active: true,
            version: [2, 11, 0],
        }
    }

    fn key(k: u8) -> Ed25519PublicKey {
        Ed25519PublicKey::from_bytes([k; 32])
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
    fn get_swarm_answers_the_accounts_swarm() {
        let nodes = [
            node(1, 100),
            node(2, 100),
            node(3, u64::MAX / 2),
            node(9, UNASSIGNED_SWARM_ID),
        ];
        let v = SwarmView::new(0, key(1), nodes);
        // The space of an all-zero key is 0: the nearest swarm is 100.
        let acct = AccountId::new([0u8; 33]);
        assert_eq!(swarm_json(&v, &acct)["swarm"], "64");
        // Space 2^63: the nearest swarm is u64::MAX / 2.
        let mut far = [0u8; 33];
        far[1] = 0x80;
        let j = swarm_json(&v, &AccountId::new(far));
        assert_eq!(j["swarm"], format!("{:x}", u64::MAX / 2));
        assert_eq!(j["snodes"][0]["pubkey_ed25519"], hex::encode([3u8; 32]));
        assert_eq!(j["snodes"][0]["port"], "22021");
        assert_eq!(j["snodes"][0]["port_https"], 22021);
        assert_eq!(j["snodes"][0]["port_omq"], 22020);
        assert_eq!(j["snodes"][0]["ip"], "10.0.0.3");
        let empty = SwarmView::empty(key(0));
        assert_eq!(swarm_json(&empty, &acct)["swarm"], "ffffffffffffffff");
        assert_eq!(swarm_json(&empty, &acct)["snodes"], json!([]));
    }

    #[test]
    fn handle_swaps_views() {
        let h = SwarmHandle::new(SwarmView::single(node(1, 7)));
        assert_eq!(h.get().our_swarm(), Some(7));
        h.set(SwarmView::empty(key(0)));
        assert_eq!(h.get().our_swarm(), None);
    }

    #[test]
    fn a_view_older_than_a_list_heard_of_is_stale_and_responsible_for_nothing() {
        let swarm = [node(1, 100), node(2, 100)];
        let acct = AccountId::new([0u8; 33]);
        let h = SwarmHandle::new(SwarmView::empty(key(0)));
        h.set(SwarmView::new(5, key(1), swarm.clone()));
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
        assert_eq!(h.status_json()["stale"], true);
        // A list of the epoch heard of (or newer) makes it fresh again; an older one does not.
        h.set(SwarmView::new(5, key(1), swarm.clone()));
        assert!(h.get().is_stale());
        h.set(SwarmView::new(6, key(1), swarm));
        assert!(!h.get().is_stale());
        assert!(h.get().is_ours(&acct));
        assert_eq!(h.status_json()["swarm_members"], 2);
    }
}
