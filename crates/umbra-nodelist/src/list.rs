//! The signed node list and its verifier (pure: no I/O, no clock).
//!
//! Every change of the network (a node joins, leaves, times out, moves) produces a new
//! [`NodeList`] with a higher `epoch` (standing in for oxend's chain height). The registry signs
//! the list's canonical encoding; a [`SignedNodeList`] carries a list of `{signer, signature}`
//! so that several registries can later co-sign the same list (threshold trust).
//!
//! Nodes and clients pin the registry key(s) in a [`TrustPolicy`] and feed every list they
//! receive through a [`ListVerifier`], which refuses bad or missing signatures, non-canonical
//! or oversized lists, lists older than the newest already accepted, and a second, different
//! list for an epoch already accepted.
//!
//! ## Canonical encoding (what is signed)
//!
//! ```text
//! "umbra-registry/node-list/v1\0"            domain separation (28 bytes)
//! version        u8      = 1
//! epoch          u64 BE
//! issued_at_ms   u64 BE  (unix milliseconds, informational)
//! node count     u32 BE
//! per node, sorted by pubkey_ed25519 ascending, no duplicates:
//!   pubkey_ed25519 [32] ‖ pubkey_x25519 [32] ‖ public_ip [4] ‖ storage_port u16 BE ‖
//!   storage_lmq_port u16 BE ‖ swarm_id u64 BE ‖ active u8 (0/1) ‖ version 3 × u16 BE
//! ```
//!
//! The JSON form (`GET /v1/nodelist`) is `{"list": {...NodeList...}, "signatures":
//! [{"signer": hex32, "signature": hex64}]}`; verification re-encodes the parsed list, so
//! JSON formatting does not matter.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use umbra_crypto::{AccountId, Ed25519PublicKey, Identity, Signature, X25519PublicKey};
use umbra_swarm::{SwarmId, SwarmRing, UNASSIGNED_SWARM_ID};

use crate::NodeListError;

/// The node list format version this code writes and reads.
pub const LIST_FORMAT_VERSION: u8 = 1;
/// The most nodes a list may hold (bounded parsing and verification).
pub const MAX_LIST_NODES: usize = 20_000;
/// The most signatures a signed list may carry.
pub const MAX_LIST_SIGNATURES: usize = 32;
/// Domain separation prefix of the signed encoding.
pub const LIST_DOMAIN: &[u8] = b"umbra-registry/node-list/v1\0";

/// One storage node as published in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The node's Ed25519 public key (its identity; also `service_node_pubkey`).
    #[serde(with = "crate::hexser")]
    pub pubkey_ed25519: Ed25519PublicKey,
    /// The node's X25519 public key (onion-layer encryption).
    #[serde(with = "crate::hexser")]
    pub pubkey_x25519: X25519PublicKey,
    /// IPv4 address where the node listens.
    pub public_ip: Ipv4Addr,
    /// HTTPS port of `/storage_rpc/v1` and `/onion_req/v2`.
    pub storage_port: u16,
    /// OMQ/QUIC port (`storage_lmq_port`).
    pub storage_lmq_port: u16,
    /// The node's swarm, [`UNASSIGNED_SWARM_ID`] when it is not a swarm member.
    pub swarm_id: SwarmId,
    /// Whether the node is active (heartbeating and in a swarm).
    pub active: bool,
    /// The storage server version the node announced.
    pub version: [u16; 3],
}

impl NodeEntry {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.pubkey_ed25519.as_bytes());
        out.extend_from_slice(self.pubkey_x25519.as_bytes());
        out.extend_from_slice(&self.public_ip.octets());
        out.extend_from_slice(&self.storage_port.to_be_bytes());
        out.extend_from_slice(&self.storage_lmq_port.to_be_bytes());
        out.extend_from_slice(&self.swarm_id.to_be_bytes());
        out.push(u8::from(self.active));
        for v in self.version {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }

    /// Whether the node is an active member of a swarm.
    #[must_use]
    pub fn in_swarm(&self) -> bool {
        self.active && self.swarm_id != UNASSIGNED_SWARM_ID
    }
}

/// The body of a node list: what the registry signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeList {
    /// Format version, [`LIST_FORMAT_VERSION`].
    pub version: u8,
    /// Strictly increasing list number (the `height` of the oxend JSON-RPC).
    pub epoch: u64,
    /// When the registry made this list, unix milliseconds.
    pub issued_at_ms: u64,
    /// All known nodes, sorted by Ed25519 key.
    pub nodes: Vec<NodeEntry>,
}

impl NodeList {
    /// A list of the current format; `nodes` is sorted here.
    #[must_use]
    pub fn new(epoch: u64, issued_at_ms: u64, mut nodes: Vec<NodeEntry>) -> Self {
        nodes.sort_by_key(|n| n.pubkey_ed25519);
        nodes.dedup_by(|a, b| a.pubkey_ed25519 == b.pubkey_ed25519);
        Self {
            version: LIST_FORMAT_VERSION,
            epoch,
            issued_at_ms,
            nodes,
        }
    }

    /// Checks the format version, the size bound and the canonical order.
    ///
    /// # Errors
    /// [`NodeListError::ListVersion`], [`NodeListError::ListTooLarge`],
    /// [`NodeListError::ListNotCanonical`].
    pub fn check_shape(&self) -> Result<(), NodeListError> {
        if self.version != LIST_FORMAT_VERSION {
            return Err(NodeListError::ListVersion {
                got: self.version,
                expected: LIST_FORMAT_VERSION,
            });
        }
        if self.nodes.len() > MAX_LIST_NODES {
            return Err(NodeListError::ListTooLarge {
                what: "nodes",
                got: self.nodes.len(),
                limit: MAX_LIST_NODES,
            });
        }
        if self
            .nodes
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.pubkey_ed25519 >= b.pubkey_ed25519))
        {
            return Err(NodeListError::ListNotCanonical);
        }
        Ok(())
    }

    /// The canonical bytes that signatures cover (see the module docs).
    #[must_use]
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LIST_DOMAIN.len() + 21 + self.nodes.len() * 89);
        out.extend_from_slice(LIST_DOMAIN);
        out.push(self.version);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.issued_at_ms.to_be_bytes());
        let count = u32::try_from(self.nodes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for n in &self.nodes {
            n.encode_into(&mut out);
        }
        out
    }

    /// The ring of swarms formed by the active nodes.
    #[must_use]
    pub fn swarm_ring(&self) -> SwarmRing {
        SwarmRing::new(
            self.nodes
                .iter()
                .filter(|n| n.in_swarm())
                .map(|n| n.swarm_id),
        )
    }

    /// The active members of swarm `id`.
    pub fn swarm_members(&self, id: SwarmId) -> impl Iterator<Item = &NodeEntry> {
        self.nodes
            .iter()
            .filter(move |n| n.in_swarm() && n.swarm_id == id)
    }

    /// The swarm owning an account id and its active members.
    ///
    /// # Errors
    /// [`NodeListError::BadRequest`] if the ring refuses the account id.
    pub fn swarm_for_account(
        &self,
        account: &AccountId,
    ) -> Result<Option<(SwarmId, Vec<&NodeEntry>)>, NodeListError> {
        let id = self
            .swarm_ring()
            .swarm_for_account(account.as_bytes())
            .map_err(|e| NodeListError::BadRequest(e.to_string()))?;
        Ok(id.map(|id| (id, self.swarm_members(id).collect())))
    }

    /// The node with this Ed25519 key.
    #[must_use]
    pub fn node(&self, pubkey_ed25519: &Ed25519PublicKey) -> Option<&NodeEntry> {
        self.nodes
            .binary_search_by(|n| n.pubkey_ed25519.cmp(pubkey_ed25519))
            .ok()
            .and_then(|i| self.nodes.get(i))
    }
}

/// One signature over a [`NodeList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSignature {
    /// The signer's Ed25519 public key.
    #[serde(with = "crate::hexser")]
    pub signer: Ed25519PublicKey,
    /// Ed25519 signature over [`NodeList::signing_bytes`].
    #[serde(with = "crate::hexser")]
    pub signature: Signature,
}

/// A node list with its signatures, as published by `GET /v1/nodelist`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedNodeList {
    /// The signed body.
    pub list: NodeList,
    /// Signatures over the body's canonical encoding, one per signer.
    pub signatures: Vec<ListSignature>,
}

impl SignedNodeList {
    /// Signs `list` with `signer` (the first signature).
    #[must_use]
    pub fn sign(list: NodeList, signer: &Identity) -> Self {
        let mut signed = Self {
            list,
            signatures: Vec::new(),
        };
        signed.add_signature(signer);
        signed
    }

    /// Adds (or replaces) `signer`'s signature: the way co-signing registries join in.
    pub fn add_signature(&mut self, signer: &Identity) {
        let pk = signer.ed25519_public();
        let signature = signer.sign(&self.list.signing_bytes());
        self.signatures.retain(|s| s.signer != pk);
        self.signatures.push(ListSignature {
            signer: pk,
            signature,
        });
    }

    /// Parses the JSON form, refusing bodies larger than `max_len` bytes before parsing.
    ///
    /// # Errors
    /// [`NodeListError::ListTooLarge`] or [`NodeListError::BadRequest`].
    pub fn from_json(bytes: &[u8], max_len: usize) -> Result<Self, NodeListError> {
        if bytes.len() > max_len {
            return Err(NodeListError::ListTooLarge {
                what: "bytes",
                got: bytes.len(),
                limit: max_len,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| NodeListError::BadRequest(e.to_string()))
    }
}

/// Which registry keys a node or client trusts, and how many must sign a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPolicy {
    signers: Vec<Ed25519PublicKey>,
    threshold: usize,
}

impl TrustPolicy {
    /// Trust exactly one registry key (today's devnet).
    #[must_use]
    pub fn single(registry_pubkey: Ed25519PublicKey) -> Self {
        Self {
            signers: vec![registry_pubkey],
            threshold: 1,
        }
    }

    /// Require `threshold` distinct signatures among `signers`.
    ///
    /// # Errors
    /// [`NodeListError::BadTrustPolicy`] if `threshold` is 0 or larger than the number of
    /// distinct keys.
    pub fn threshold(
        mut signers: Vec<Ed25519PublicKey>,
        threshold: usize,
    ) -> Result<Self, NodeListError> {
        signers.sort_unstable();
        signers.dedup();
        if threshold == 0 || threshold > signers.len() {
            return Err(NodeListError::BadTrustPolicy {
                threshold,
                keys: signers.len(),
            });
        }
        Ok(Self { signers, threshold })
    }

    /// The trusted keys.
    #[must_use]
    pub fn signers(&self) -> &[Ed25519PublicKey] {
        &self.signers
    }

    /// Checks shape and signatures of `signed` (not its epoch: see [`ListVerifier`]).
    ///
    /// Signatures by keys outside the policy are ignored; a signature by a trusted key that
    /// does not verify refuses the whole list (the list was tampered with).
    ///
    /// # Errors
    /// Shape errors of [`NodeList::check_shape`], [`NodeListError::ListTooLarge`] for too many
    /// signatures, [`NodeListError::BadSignature`], [`NodeListError::NotEnoughSignatures`].
    pub fn verify(&self, signed: &SignedNodeList) -> Result<(), NodeListError> {
        if signed.signatures.len() > MAX_LIST_SIGNATURES {
            return Err(NodeListError::ListTooLarge {
                what: "signatures",
                got: signed.signatures.len(),
                limit: MAX_LIST_SIGNATURES,
            });
        }
        signed.list.check_shape()?;
        let msg = signed.list.signing_bytes();
        let mut good: Vec<Ed25519PublicKey> = Vec::new();
        for sig in &signed.signatures {
            if !self.signers.contains(&sig.signer) || good.contains(&sig.signer) {
                continue;
            }
            umbra_crypto::sign::verify(&sig.signer, &msg, &sig.signature)
                .map_err(|_| NodeListError::BadSignature { what: "node list" })?;
            good.push(sig.signer);
        }
        if good.len() < self.threshold {
            return Err(NodeListError::NotEnoughSignatures {
                got: good.len(),
                need: self.threshold,
            });
        }
        Ok(())
    }
}

/// Accepts node lists in order: verified by a [`TrustPolicy`], never older than the newest
/// already accepted, never two different lists for one epoch.
#[derive(Debug, Clone)]
pub struct ListVerifier {
    policy: TrustPolicy,
    seen_epoch: Option<u64>,
    current: Option<SignedNodeList>,
}

impl ListVerifier {
    /// A verifier that has seen nothing yet.
    #[must_use]
    pub fn new(policy: TrustPolicy) -> Self {
        Self {
            policy,
            seen_epoch: None,
            current: None,
        }
    }

    /// A verifier that remembers (e.g. from disk) having seen `epoch`, without the list itself.
    #[must_use]
    pub fn with_seen_epoch(policy: TrustPolicy, epoch: u64) -> Self {
        Self {
            policy,
            seen_epoch: Some(epoch),
            current: None,
        }
    }

    /// Verifies `signed` and makes it the current list.
    ///
    /// Returns `Ok(true)` if it is newer than the current one, `Ok(false)` if it is the same
    /// list again.
    ///
    /// # Errors
    /// Everything [`TrustPolicy::verify`] refuses, [`NodeListError::OlderEpoch`] and
    /// [`NodeListError::ConflictingList`]; on error the current list is unchanged.
    pub fn accept(&mut self, signed: SignedNodeList) -> Result<bool, NodeListError> {
        self.policy.verify(&signed)?;
        let epoch = signed.list.epoch;
        if let Some(seen) = self.seen_epoch {
            if epoch < seen {
                return Err(NodeListError::OlderEpoch { got: epoch, seen });
            }
            if epoch == seen {
                return match &self.current {
                    Some(cur) if cur.list != signed.list => {
                        Err(NodeListError::ConflictingList { epoch })
                    }
                    Some(_) => Ok(false),
                    None => {
                        self.current = Some(signed);
                        Ok(true)
                    }
                };
            }
        }
        self.seen_epoch = Some(epoch);
        self.current = Some(signed);
        Ok(true)
    }

    /// The newest accepted list.
    #[must_use]
    pub fn current(&self) -> Option<&SignedNodeList> {
        self.current.as_ref()
    }

    /// The newest epoch seen (to persist across restarts).
    #[must_use]
    pub fn seen_epoch(&self) -> Option<u64> {
        self.seen_epoch
    }
}
