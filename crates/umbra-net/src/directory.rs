//! The verified node list: where it comes from, how it is checked, and the swarm of an
//! account computed from it locally.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use serde_json::Value;
use umbra_crypto::{AccountId, Ed25519PublicKey};
use umbra_nodelist::list::{ListVerifier, NodeEntry, NodeList, SignedNodeList, TrustPolicy};

use crate::ClientError;

/// The largest node list body the client reads (8 MiB; a full list of
/// [`umbra_nodelist::list::MAX_LIST_NODES`] nodes is about 5 MiB of JSON).
pub const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;

/// The largest network file read (64 KiB).
pub const MAX_NETWORK_FILE_BYTES: usize = 64 * 1024;

/// Accounts whose swarm a `421` answer corrected, remembered until the next list.
pub const MAX_SWARM_HINTS: usize = 1024;

/// Nodes kept per corrected swarm.
const MAX_HINT_NODES: usize = 32;

/// After a failed fetch, wait this long before trying the registry again (10 s).
pub const FETCH_RETRY_MS: u64 = 10_000;

/// What a client needs to join a network: where the registry is and which key signs its
/// lists. The devnet writes it as `network.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The registry's base URL (`GET {registry_url}/v1/nodelist` is the signed list).
    pub registry_url: String,
    /// The pinned registry Ed25519 key.
    pub registry_pubkey: Ed25519PublicKey,
}

impl NetworkConfig {
    /// Parses a network file: a JSON object with `registry_url` and `registry_pubkey` (hex);
    /// other keys (`seed_url`, `nodes`, …) are ignored: the client trusts only the signed list.
    ///
    /// # Errors
    /// [`ClientError::NetworkFile`] when the file is too large, not JSON, or lacks either key.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ClientError> {
        let bad = |m: &str| ClientError::NetworkFile(m.to_owned());
        if bytes.len() > MAX_NETWORK_FILE_BYTES {
            return Err(bad("larger than 64 KiB"));
        }
        let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(&e.to_string()))?;
        let registry_url = v
            .get("registry_url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no registry_url"))?
            .trim_end_matches('/')
            .to_owned();
        if !(registry_url.starts_with("http://") || registry_url.starts_with("https://")) {
            return Err(bad("registry_url is not an http(s) URL"));
        }
        let key = v
            .get("registry_pubkey")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no registry_pubkey"))?;
        let registry_pubkey: Ed25519PublicKey = key
            .parse()
            .map_err(|_| bad("registry_pubkey is not 64 hex digits"))?;
        Ok(Self {
            registry_url,
            registry_pubkey,
        })
    }

    /// Reads and parses a network file.
    ///
    /// # Errors
    /// [`ClientError::NetworkFile`].
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ClientError::NetworkFile(format!("{}: {e}", path.display())))?;
        Self::from_json(&bytes)
    }

    /// The trust policy pinning this network's registry key.
    pub fn trust_policy(&self) -> TrustPolicy {
        TrustPolicy::single(self.registry_pubkey)
    }
}

/// The newest verified node list, and what the client learned since (swarm corrections).
///
/// Sans-IO: the caller fetches bytes and passes the time in.
#[derive(Debug)]
pub struct NodeDirectory {
    verifier: ListVerifier,
    refresh_ms: u64,
    fetched_at_ms: Option<u64>,
    failed_at_ms: Option<u64>,
    stale: bool,
    hints: HashMap<AccountId, Vec<Ed25519PublicKey>>,
    hint_order: VecDeque<AccountId>,
}

impl NodeDirectory {
    /// A directory that trusts `policy` and refreshes every `refresh_ms`.
    pub fn new(policy: TrustPolicy, refresh_ms: u64) -> Self {
        Self::from_verifier(ListVerifier::new(policy), refresh_ms)
    }

    /// The same, remembering (from disk) that lists up to `epoch` were already seen, so that an
    /// older list is refused even after a restart.
    pub fn with_seen_epoch(policy: TrustPolicy, epoch: u64, refresh_ms: u64) -> Self {
        Self::from_verifier(ListVerifier::with_seen_epoch(policy, epoch), refresh_ms)
    }

    fn from_verifier(verifier: ListVerifier, refresh_ms: u64) -> Self {
        Self {
            verifier,
            refresh_ms,
            fetched_at_ms: None,
            failed_at_ms: None,
            stale: false,
            hints: HashMap::new(),
            hint_order: VecDeque::new(),
        }
    }

    /// Verifies a signed list and makes it current. `Ok(true)` if it is newer than the
    /// current one, `Ok(false)` if it is the same list again. On error the current list stays.
    ///
    /// # Errors
    /// [`ClientError::VerifyingNodeList`]: bad signature, older epoch, conflicting list, bad
    /// shape.
    pub fn accept(&mut self, signed: SignedNodeList, now_ms: u64) -> Result<bool, ClientError> {
        let newer = self
            .verifier
            .accept(signed)
            .map_err(ClientError::VerifyingNodeList)?;
        self.fetched_at_ms = Some(now_ms);
        self.failed_at_ms = None;
        self.stale = false;
        if newer {
            self.hints.clear();
            self.hint_order.clear();
        }
        Ok(newer)
    }

    /// Parses (bounded by [`MAX_LIST_BYTES`]) and [`accept`](Self::accept)s a list body.
    ///
    /// # Errors
    /// [`ClientError::VerifyingNodeList`].
    pub fn accept_json(&mut self, body: &[u8], now_ms: u64) -> Result<bool, ClientError> {
        let signed = SignedNodeList::from_json(body, MAX_LIST_BYTES)
            .map_err(ClientError::VerifyingNodeList)?;
        self.accept(signed, now_ms)
    }

    /// Records a failed fetch: the last good list stays, and the next attempt waits
    /// [`FETCH_RETRY_MS`].
    pub fn note_fetch_failed(&mut self, now_ms: u64) {
        self.failed_at_ms = Some(now_ms);
    }

    /// Asks for a refresh at the next occasion (e.g. after a `421`).
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }

    /// Whether the list should be fetched now: none yet, older than the refresh interval, or
    /// marked stale — but not within [`FETCH_RETRY_MS`] of a failed attempt.
    pub fn refresh_due(&self, now_ms: u64) -> bool {
        if self
            .failed_at_ms
            .is_some_and(|t| now_ms < t.saturating_add(FETCH_RETRY_MS))
        {
            return false;
        }
        match self.fetched_at_ms {
            None => true,
            Some(t) => self.stale || now_ms >= t.saturating_add(self.refresh_ms),
        }
    }

    /// When the current list was last fetched (or confirmed unchanged), Unix ms.
    pub fn fetched_at_ms(&self) -> Option<u64> {
        self.fetched_at_ms
    }

    /// The current list, if any was accepted.
    pub fn list(&self) -> Option<&NodeList> {
        self.verifier.current().map(|s| &s.list)
    }

    /// The newest epoch seen (persist it to refuse older lists after a restart).
    pub fn seen_epoch(&self) -> Option<u64> {
        self.verifier.seen_epoch()
    }

    /// The node with this Ed25519 key.
    pub fn node(&self, ed25519: &Ed25519PublicKey) -> Option<&NodeEntry> {
        self.list().and_then(|l| l.node(ed25519))
    }

    /// All active nodes.
    pub fn active_nodes(&self) -> Vec<&NodeEntry> {
        self.list()
            .map(|l| l.nodes.iter().filter(|n| n.active).collect())
            .unwrap_or_default()
    }

    /// The active members of the swarm that owns `account`,
    /// computed locally from the list — never asked of a node — or, after a `421`, the
    /// swarm that answer named (until the next list).
    pub fn swarm_of(&self, account: &AccountId) -> Vec<NodeEntry> {
        let Some(list) = self.list() else {
            return Vec::new();
        };
        if let Some(keys) = self.hints.get(account) {
            let nodes: Vec<NodeEntry> = keys
                .iter()
                .filter_map(|k| list.node(k))
                .filter(|n| n.active)
                .cloned()
                .collect();
            if !nodes.is_empty() {
                return nodes;
            }
        }
        match list.swarm_for_account(account) {
            Ok(Some((_, members))) => members.into_iter().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Learns from a `421` answer (`{"snodes": [{"pubkey_ed25519": hex, …}], …}`) which swarm
    /// owns `account`, keeping only nodes of the verified list, and marks the list stale.
    /// Returns how many known nodes the answer named.
    pub fn note_wrong_swarm(&mut self, account: &AccountId, body: &Value) -> usize {
        self.stale = true;
        let Some(list) = self.verifier.current().map(|s| &s.list) else {
            return 0;
        };
        let keys: Vec<Ed25519PublicKey> = body
            .get("snodes")
            .and_then(Value::as_array)
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .take(MAX_HINT_NODES * 4)
            .filter_map(|n| n.get("pubkey_ed25519")?.as_str())
            .filter_map(|h| h.parse::<Ed25519PublicKey>().ok())
            .filter(|k| list.node(k).is_some_and(|n| n.active))
            .take(MAX_HINT_NODES)
            .collect();
        if keys.is_empty() {
            return 0;
        }
        let n = keys.len();
        if !self.hints.contains_key(account) {
            if self.hint_order.len() >= MAX_SWARM_HINTS
                && let Some(old) = self.hint_order.pop_front()
            {
                self.hints.remove(&old);
            }
            self.hint_order.push_back(*account);
        }
        self.hints.insert(*account, keys);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umbra_crypto::{Identity, SeededRandom};

    #[test]
    fn network_file_parsing() {
        let key = "ab".repeat(32);
        let ok = format!(
            r#"{{"format":1,"seed_url":"http://x/json_rpc","registry_url":"http://127.0.0.1:9/","registry_pubkey":"{key}","nodes":[]}}"#
        );
        let n = NetworkConfig::from_json(ok.as_bytes()).unwrap();
        assert_eq!(n.registry_url, "http://127.0.0.1:9");
        assert_eq!(n.registry_pubkey, Ed25519PublicKey::from_bytes([0xab; 32]));
        for bad in [
            "not json".to_owned(),
            r#"{"registry_pubkey":"00"}"#.to_owned(),
            format!(r#"{{"registry_url":"ftp://x","registry_pubkey":"{key}"}}"#),
            r#"{"registry_url":"http://x","registry_pubkey":"zz"}"#.to_owned(),
            " ".repeat(MAX_NETWORK_FILE_BYTES + 1),
        ] {
            assert!(matches!(
                NetworkConfig::from_json(bad.as_bytes()),
                Err(ClientError::NetworkFile(_))
            ));
        }
    }

    fn signed(reg: &Identity, epoch: u64) -> SignedNodeList {
        SignedNodeList::sign(NodeList::new(epoch, 0, Vec::new()), reg)
    }

    #[test]
    fn refresh_schedule_and_epochs() {
        let reg = Identity::generate(&mut SeededRandom::new(1));
        let mut d = NodeDirectory::new(TrustPolicy::single(reg.ed25519_public()), 1000);
        assert!(d.refresh_due(0));
        d.note_fetch_failed(0);
        assert!(
            !d.refresh_due(FETCH_RETRY_MS - 1),
            "failed fetches are not hammered"
        );
        assert!(d.refresh_due(FETCH_RETRY_MS));
        assert!(d.accept(signed(&reg, 5), 20_000).unwrap());
        assert!(!d.refresh_due(20_999));
        assert!(d.refresh_due(21_000));
        d.mark_stale();
        assert!(d.refresh_due(20_001));
        assert!(
            !d.accept(signed(&reg, 5), 20_001).unwrap(),
            "same list again"
        );
        assert!(d.accept(signed(&reg, 4), 20_002).is_err(), "older epoch");
        assert_eq!(d.seen_epoch(), Some(5));
        let body = serde_json::to_vec(&signed(&reg, 6)).unwrap();
        assert!(d.accept_json(&body, 20_003).unwrap());
        assert!(d.accept_json(b"{", 20_004).is_err());
        // A restarted client that saw epoch 6 refuses epoch 5.
        let mut d = NodeDirectory::with_seen_epoch(TrustPolicy::single(reg.ed25519_public()), 6, 1);
        assert!(d.accept(signed(&reg, 5), 0).is_err());
        assert!(d.list().is_none());
    }

    #[test]
    fn swarm_hints_are_bounded_and_only_name_known_nodes() {
        let reg = Identity::generate(&mut SeededRandom::new(2));
        let mut rng = SeededRandom::new(3);
        let nodes: Vec<NodeEntry> = (0..4u64)
            .map(|i| {
                let id = Identity::generate(&mut rng);
                NodeEntry {
                    pubkey_ed25519: id.ed25519_public(),
                    pubkey_x25519: id.x25519_public(),
                    public_ip: std::net::Ipv4Addr::new(10, 0, i as u8, 1),
                    storage_port: 1,
                    storage_lmq_port: 1,
                    swarm_id: if i < 2 { 10 } else { u64::MAX / 2 },
                    active: true,
                    version: [2, 8, 0],
                }
            })
            .collect();
        let mut d = NodeDirectory::new(TrustPolicy::single(reg.ed25519_public()), 1000);
        d.accept(
            SignedNodeList::sign(NodeList::new(1, 0, nodes.clone()), &reg),
            0,
        )
        .unwrap();
        let acc = AccountId::new([5u8; 33]);
        let before = d.swarm_of(&acc);
        assert!(!before.is_empty());
        let other: Vec<&NodeEntry> = nodes.iter().filter(|n| !before.contains(n)).collect();
        let body = serde_json::json!({"snodes": [
            {"pubkey_ed25519": hex::encode(other[0].pubkey_ed25519)},
            {"pubkey_ed25519": hex::encode([7u8; 32])},
            {"pubkey_ed25519": "nothex"},
        ]});
        assert_eq!(
            d.note_wrong_swarm(&acc, &body),
            1,
            "unknown nodes are ignored"
        );
        assert_eq!(d.swarm_of(&acc), vec![other[0].clone()]);
        for i in 0..(MAX_SWARM_HINTS + 10) {
            let mut a = [5u8; 33];
            a[1..9].copy_from_slice(&(i as u64).to_le_bytes());
            d.note_wrong_swarm(&AccountId::new(a), &body);
        }
        assert!(d.hints.len() <= MAX_SWARM_HINTS);
        assert_eq!(d.hints.len(), d.hint_order.len());
    }
}
