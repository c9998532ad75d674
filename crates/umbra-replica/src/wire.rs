//! JSON bodies of the peer endpoints (version 1) and their conversion to store types.
//!
//! Account ids are 66 lowercase hex digits (prefix byte included), message data is standard
//! base64 with padding, times are Unix milliseconds. Every list has a bound
//! ([`MAX_BUCKETS_PER_REQUEST`], [`MAX_HASHES_PER_REQUEST`], [`MAX_HANDOVER_ITEMS`], …) checked
//! by the receiver before doing any work; bodies are capped by [`MAX_REQUEST_BYTES`] and
//! [`MAX_RESPONSE_BYTES`].

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use umbra_crypto::MessageHash;
use umbra_store::{
    AccountId, BucketDigest, BucketEntries, MessageVersion, Millis, Namespace, ReplicaMessage,
    Tombstone,
};

use crate::ReplicaError;

/// Path prefix of every peer endpoint.
pub const PEER_PATH_PREFIX: &str = "/umbra/peer/v1/";
/// Largest peer request body read (bytes).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest peer answer body read (bytes).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Most buckets in one `digests` page.
pub const MAX_DIGESTS_PER_PAGE: usize = 4096;
/// Most buckets asked for in one `entries` request.
pub const MAX_BUCKETS_PER_REQUEST: usize = 64;
/// Most hashes asked for in one `replicas` request.
pub const MAX_HASHES_PER_REQUEST: usize = 64;
/// Most items (messages plus tombstones) in one `handover` request.
pub const MAX_HANDOVER_ITEMS: usize = 256;
/// Most message data bytes in one `handover` request (before base64).
pub const MAX_HANDOVER_DATA_BYTES: usize = 4 * 1024 * 1024;

/// The peer endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Apply a client's recursive request forwarded by the entry node.
    Forward,
    /// A page of per-bucket digests.
    Digests,
    /// Message versions and tombstones of some buckets.
    Entries,
    /// Full messages by hash.
    Replicas,
    /// Messages and tombstones handed over by a node of another swarm.
    Handover,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 5] = [
        Endpoint::Forward,
        Endpoint::Digests,
        Endpoint::Entries,
        Endpoint::Replicas,
        Endpoint::Handover,
    ];

    /// The last path segment.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Forward => "forward",
            Endpoint::Digests => "digests",
            Endpoint::Entries => "entries",
            Endpoint::Replicas => "replicas",
            Endpoint::Handover => "handover",
        }
    }

    /// The full path, `/umbra/peer/v1/<name>` (what signatures cover).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Forward => "/umbra/peer/v1/forward",
            Endpoint::Digests => "/umbra/peer/v1/digests",
            Endpoint::Entries => "/umbra/peer/v1/entries",
            Endpoint::Replicas => "/umbra/peer/v1/replicas",
            Endpoint::Handover => "/umbra/peer/v1/handover",
        }
    }

    /// The endpoint with this last path segment.
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }
}

fn wire_err(what: &'static str, reason: impl Into<String>) -> ReplicaError {
    ReplicaError::Wire {
        what,
        reason: reason.into(),
    }
}

/// An account id as 66 hex digits.
pub fn owner_to_hex(owner: &AccountId) -> String {
    hex::encode(owner.as_bytes())
}

/// Parses 66 hex digits into an account id.
///
/// # Errors
/// [`ReplicaError::Wire`] if the value is not 66 hex digits.
pub fn owner_from_hex(s: &str) -> Result<AccountId, ReplicaError> {
    if s.len() != 66 {
        return Err(wire_err("account id", "expected 66 hex digits"));
    }
    let mut b = [0u8; 33];
    hex::decode_to_slice(s, &mut b).map_err(|_| wire_err("account id", "not hex"))?;
    Ok(AccountId::new(b))
}

/// `forward` request: the client's method and `params`, unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardRequest {
    /// A recursive method name (`store`, `delete`, …).
    pub method: String,
    /// The client's `params` object.
    pub params: Value,
}

/// `forward` answer: the member's own status and body (a JSON string for a text body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardResponse {
    /// The status the member's RPC handler produced.
    pub status: u16,
    /// Its body.
    pub body: Value,
}

/// A bucket: one account's namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BucketKey {
    /// Account id, 66 hex digits.
    pub owner: String,
    /// Namespace.
    pub namespace: Namespace,
}

impl BucketKey {
    /// The key of a bucket.
    pub fn new(owner: &AccountId, namespace: Namespace) -> Self {
        BucketKey {
            owner: owner_to_hex(owner),
            namespace,
        }
    }

    /// The account and namespace.
    ///
    /// # Errors
    /// [`ReplicaError::Wire`] for a malformed account id.
    pub fn parse(&self) -> Result<(AccountId, Namespace), ReplicaError> {
        Ok((owner_from_hex(&self.owner)?, self.namespace))
    }
}

/// `digests` request: the page of the responder's own-swarm buckets after `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestsRequest {
    /// Continue after this bucket (`None`: from the start).
    pub after: Option<BucketKey>,
    /// Most buckets wanted (capped at [`MAX_DIGESTS_PER_PAGE`]).
    pub limit: usize,
}

/// One bucket digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDigest {
    /// Account id, 66 hex digits.
    pub owner: String,
    /// Namespace.
    pub namespace: Namespace,
    /// The store's bucket digest, 64 hex digits.
    pub digest: String,
}

impl WireDigest {
    /// From a store digest.
    pub fn from_store(d: &BucketDigest) -> Self {
        WireDigest {
            owner: owner_to_hex(&d.owner),
            namespace: d.namespace,
            digest: hex::encode(d.digest),
        }
    }
}

/// `digests` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestsResponse {
    /// Buckets in `(owner, namespace)` order.
    pub buckets: Vec<WireDigest>,
    /// Whether more buckets follow the last one.
    pub more: bool,
}

/// `entries` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntriesRequest {
    /// At most [`MAX_BUCKETS_PER_REQUEST`] buckets.
    pub buckets: Vec<BucketKey>,
}

/// A message's version in an `entries` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireVersion {
    /// Hash.
    pub hash: MessageHash,
    /// Client timestamp.
    pub timestamp_ms: Millis,
    /// Expiry.
    pub expiry_ms: Millis,
    /// Expiry version.
    pub expiry_version: Millis,
}

/// A tombstone on the wire (bucket given by the context or by `owner`/`namespace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTombstone {
    /// Account id, 66 hex digits.
    pub owner: String,
    /// Namespace.
    pub namespace: Namespace,
    /// Hash of the deleted message.
    pub hash: MessageHash,
    /// Deletion time.
    pub deleted_ms: Millis,
    /// Keep-until time.
    pub keep_until_ms: Millis,
}

impl WireTombstone {
    /// From a store tombstone.
    pub fn from_store(t: &Tombstone) -> Self {
        WireTombstone {
            owner: owner_to_hex(&t.owner),
            namespace: t.namespace,
            hash: t.hash,
            deleted_ms: t.deleted_ms,
            keep_until_ms: t.keep_until_ms,
        }
    }

    /// To a store tombstone.
    ///
    /// # Errors
    /// [`ReplicaError::Wire`] for a malformed account id.
    pub fn to_store(&self) -> Result<Tombstone, ReplicaError> {
        Ok(Tombstone {
            owner: owner_from_hex(&self.owner)?,
            namespace: self.namespace,
            hash: self.hash,
            deleted_ms: self.deleted_ms,
            keep_until_ms: self.keep_until_ms,
        })
    }
}

/// One bucket's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireBucket {
    /// The bucket.
    pub bucket: BucketKey,
    /// Live message versions, sorted by hash.
    pub messages: Vec<WireVersion>,
    /// Live tombstones, sorted by hash.
    pub tombstones: Vec<WireTombstone>,
}

impl WireBucket {
    /// From a store listing.
    pub fn from_store(owner: &AccountId, namespace: Namespace, e: &BucketEntries) -> Self {
        WireBucket {
            bucket: BucketKey::new(owner, namespace),
            messages: e
                .messages
                .iter()
                .map(|m| WireVersion {
                    hash: m.hash,
                    timestamp_ms: m.timestamp_ms,
                    expiry_ms: m.expiry_ms,
                    expiry_version: m.expiry_version,
                })
                .collect(),
            tombstones: e.tombstones.iter().map(WireTombstone::from_store).collect(),
        }
    }

    /// The versions as store values.
    pub fn versions(&self) -> Vec<MessageVersion> {
        self.messages
            .iter()
            .map(|m| MessageVersion {
                hash: m.hash,
                timestamp_ms: m.timestamp_ms,
                expiry_ms: m.expiry_ms,
                expiry_version: m.expiry_version,
            })
            .collect()
    }
}

/// `entries` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntriesResponse {
    /// One entry per requested bucket that the responder serves.
    pub buckets: Vec<WireBucket>,
}

/// `replicas` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicasRequest {
    /// At most [`MAX_HASHES_PER_REQUEST`] hashes.
    pub hashes: Vec<MessageHash>,
}

/// A full message on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReplica {
    /// Account id, 66 hex digits.
    pub owner: String,
    /// Namespace.
    pub namespace: Namespace,
    /// Hash (checked by the receiver against owner, namespace and data).
    pub hash: MessageHash,
    /// Data, standard base64.
    pub data: String,
    /// Client timestamp.
    pub timestamp_ms: Millis,
    /// Expiry.
    pub expiry_ms: Millis,
    /// Expiry version.
    pub expiry_version: Millis,
}

impl WireReplica {
    /// From a store replica.
    pub fn from_store(m: &ReplicaMessage) -> Self {
        WireReplica {
            owner: owner_to_hex(&m.owner),
            namespace: m.namespace,
            hash: m.hash,
            data: base64::engine::general_purpose::STANDARD.encode(&m.data),
            timestamp_ms: m.timestamp_ms,
            expiry_ms: m.expiry_ms,
            expiry_version: m.expiry_version,
        }
    }

    /// To a store replica, **verifying the hash** against owner, namespace and data.
    ///
    /// # Errors
    /// [`ReplicaError::Wire`] for a malformed account id or data, a data size above
    /// `max_data_bytes`, or a hash that does not match.
    pub fn to_store(&self, max_data_bytes: usize) -> Result<ReplicaMessage, ReplicaError> {
        let owner = owner_from_hex(&self.owner)?;
        // Bound the decode before doing it: base64 grows data by 4/3.
        if self.data.len() > max_data_bytes.saturating_mul(4) / 3 + 4 {
            return Err(wire_err("replica data", "too large"));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .map_err(|_| wire_err("replica data", "not base64"))?;
        if data.len() > max_data_bytes {
            return Err(wire_err("replica data", "too large"));
        }
        let expected = umbra_crypto::hash::message_hash(&owner, i32::from(self.namespace), &data);
        if expected != self.hash {
            return Err(wire_err(
                "replica",
                "hash does not match owner, namespace and data",
            ));
        }
        Ok(ReplicaMessage {
            owner,
            namespace: self.namespace,
            hash: self.hash,
            data,
            timestamp_ms: self.timestamp_ms,
            expiry_ms: self.expiry_ms,
            expiry_version: self.expiry_version,
        })
    }
}

/// `replicas` answer: the live messages among the requested hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicasResponse {
    /// Messages found.
    pub messages: Vec<WireReplica>,
}

/// `handover` request: items whose accounts map to the receiver's swarm.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandoverRequest {
    /// Messages.
    pub messages: Vec<WireReplica>,
    /// Tombstones.
    pub tombstones: Vec<WireTombstone>,
}

/// `handover` answer, sent only after every item is durable (or known) on the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoverResponse {
    /// Items that changed the receiver's state.
    pub applied: u64,
    /// Items the receiver already included (or that were beaten or expired).
    pub unchanged: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_hash_is_checked() {
        let owner = AccountId::new([5; 33]);
        let data = b"hello".to_vec();
        let hash = umbra_crypto::hash::message_hash(&owner, 3, &data);
        let m = ReplicaMessage {
            owner,
            namespace: 3,
            hash,
            data,
            timestamp_ms: 1,
            expiry_ms: 2,
            expiry_version: 1,
        };
        let w = WireReplica::from_store(&m);
        assert_eq!(w.to_store(76_800).unwrap(), m);
        // A malformed hash is refused where the JSON is parsed.
        let mut json = serde_json::to_value(&w).unwrap();
        json["hash"] = "short".into();
        let err = serde_json::from_value::<WireReplica>(json).unwrap_err();
        assert!(err.to_string().contains("message hash"), "{err}");
        let mut wrong_ns = w.clone();
        wrong_ns.namespace = 4;
        assert!(wrong_ns.to_store(76_800).is_err());
        let mut wrong_owner = w.clone();
        wrong_owner.owner = owner_to_hex(&AccountId::new([3; 33]));
        assert!(wrong_owner.to_store(76_800).is_err());
        assert!(w.to_store(4).is_err(), "size bound");
        let mut bad = w.clone();
        bad.data = "!!!".into();
        assert!(bad.to_store(76_800).is_err());
        let mut bad_owner = w;
        bad_owner.owner = "05".into();
        assert!(bad_owner.to_store(76_800).is_err());
    }

    #[test]
    fn endpoints_and_owner_hex() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_name(e.name()), Some(e));
            assert_eq!(e.path(), format!("{PEER_PATH_PREFIX}{}", e.name()));
        }
        assert_eq!(Endpoint::from_name("nope"), None);
        assert!(owner_from_hex(&"zz".repeat(33)).is_err());
        let o = AccountId::new([0xab; 33]);
        assert_eq!(owner_from_hex(&owner_to_hex(&o)).unwrap(), o);
    }
}
