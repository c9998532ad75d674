//! The peer messages (`proto/umbra/peer/v2/peer.proto`, version 2): the calls, their bounds
//! and their conversion to and from store values.
//!
//! Every list has a bound ([`MAX_DIGESTS_PER_PAGE`], [`MAX_BUCKETS_PER_REQUEST`],
//! [`MAX_HASHES_PER_REQUEST`], [`MAX_HANDOVER_ITEMS`], …) checked by the receiver before doing
//! any work; whole messages are capped by [`MAX_REQUEST_BYTES`] and [`MAX_RESPONSE_BYTES`]
//! (tonic's `max_decoding_message_size`). Conversions from the wire check every length (account
//! ids 33 bytes, hashes and digests 32, namespaces in `i16`) and, for full messages, the hash
//! against owner, namespace and data.

use base64::Engine as _;
use umbra_crypto::MessageHash;
use umbra_proto::umbra::peer::v2 as pb;
use umbra_store::{
    AccountId, BucketDigest, BucketEntries, MessageVersion, Namespace, ReplicaMessage, Tombstone,
};

use crate::ReplicaError;

/// Largest request message a node decodes (bytes).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;
/// Largest answer message a node decodes (bytes).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Most buckets in one digest page.
pub const MAX_DIGESTS_PER_PAGE: usize = 4096;
/// Most buckets asked for in one entries request.
pub const MAX_BUCKETS_PER_REQUEST: usize = 64;
/// Most hashes asked for in one replicas request.
pub const MAX_HASHES_PER_REQUEST: usize = 64;
/// Most items (messages plus tombstones) in one handover batch.
pub const MAX_HANDOVER_ITEMS: usize = 256;
/// Most message data bytes in one handover batch.
pub const MAX_HANDOVER_DATA_BYTES: usize = 4 * 1024 * 1024;
/// Most buckets acknowledged in, or asked for by, one handover request.
pub const MAX_HANDOVER_BUCKETS: usize = 1024;
/// Most requests on one `Reconcile` stream (the client opens a new stream per round).
pub const MAX_RECONCILE_STEPS: u64 = 100_000;
/// Length of a message hash on the wire (the BLAKE2b-256 digest).
pub const HASH_BYTES: usize = 32;

/// The peer calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    /// A forwarded client write (unary).
    Forward,
    /// Anti-entropy (bidirectional stream).
    Reconcile,
    /// Handover of a range (server stream).
    Handover,
}

impl Rpc {
    /// A short name for errors and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::Forward => "forward",
            Rpc::Reconcile => "reconcile",
            Rpc::Handover => "handover",
        }
    }
}

fn wire_err(what: &'static str, reason: &'static str) -> ReplicaError {
    ReplicaError::Wire {
        what,
        reason: reason.into(),
    }
}

/// An account id from its 33 bytes.
///
/// # Errors
/// [`ReplicaError::Wire`] for another length.
pub fn owner_from_bytes(b: &[u8]) -> Result<AccountId, ReplicaError> {
    AccountId::try_from(b).map_err(|_| wire_err("account id", "expected 33 bytes"))
}

/// A namespace from the wire's `sint32`.
///
/// # Errors
/// [`ReplicaError::Wire`] outside `i16`.
pub fn namespace_from_wire(n: i32) -> Result<Namespace, ReplicaError> {
    Namespace::try_from(n).map_err(|_| wire_err("namespace", "out of range"))
}

/// A message hash's 32 digest bytes.
pub fn hash_to_bytes(h: &MessageHash) -> Vec<u8> {
    // A MessageHash is always the unpadded base64 of 32 bytes.
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(h.as_str())
        .unwrap_or_default()
}

/// A message hash from its 32 digest bytes.
///
/// # Errors
/// [`ReplicaError::Wire`] for another length.
pub fn hash_from_bytes(b: &[u8]) -> Result<MessageHash, ReplicaError> {
    let d: &[u8; HASH_BYTES] = b
        .try_into()
        .map_err(|_| wire_err("message hash", "expected 32 bytes"))?;
    Ok(MessageHash::from_digest(d))
}

/// A bucket digest's 32 bytes.
///
/// # Errors
/// [`ReplicaError::Wire`] for another length.
pub fn digest_from_bytes(b: &[u8]) -> Result<[u8; 32], ReplicaError> {
    b.try_into()
        .map_err(|_| wire_err("bucket digest", "expected 32 bytes"))
}

/// A bucket on the wire.
pub fn bucket(owner: &AccountId, namespace: Namespace) -> pb::Bucket {
    pb::Bucket {
        owner: owner.as_bytes().to_vec(),
        namespace: i32::from(namespace),
    }
}

/// A bucket from the wire.
///
/// # Errors
/// [`ReplicaError::Wire`] for a malformed account id or namespace.
pub fn bucket_from_wire(b: &pb::Bucket) -> Result<(AccountId, Namespace), ReplicaError> {
    Ok((
        owner_from_bytes(&b.owner)?,
        namespace_from_wire(b.namespace)?,
    ))
}

/// A store digest on the wire.
pub fn digest_to_wire(d: &BucketDigest) -> pb::BucketDigest {
    pb::BucketDigest {
        owner: d.owner.as_bytes().to_vec(),
        namespace: i32::from(d.namespace),
        digest: d.digest.to_vec(),
    }
}

/// A bucket digest as a peer sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteDigest {
    /// Account.
    pub owner: AccountId,
    /// Namespace.
    pub namespace: Namespace,
    /// The store's bucket digest.
    pub digest: [u8; 32],
}

/// A bucket digest from the wire.
///
/// # Errors
/// [`ReplicaError::Wire`] for malformed fields.
pub fn digest_from_wire(d: &pb::BucketDigest) -> Result<RemoteDigest, ReplicaError> {
    Ok(RemoteDigest {
        owner: owner_from_bytes(&d.owner)?,
        namespace: namespace_from_wire(d.namespace)?,
        digest: digest_from_bytes(&d.digest)?,
    })
}

/// A tombstone on the wire.
pub fn tombstone_to_wire(t: &Tombstone) -> pb::Tombstone {
    pb::Tombstone {
        owner: t.owner.as_bytes().to_vec(),
        namespace: i32::from(t.namespace),
        hash: hash_to_bytes(&t.hash),
        deleted_ms: t.deleted_ms,
        keep_until_ms: t.keep_until_ms,
    }
}

/// A tombstone from the wire.
///
/// # Errors
/// [`ReplicaError::Wire`] for malformed fields.
pub fn tombstone_from_wire(t: &pb::Tombstone) -> Result<Tombstone, ReplicaError> {
    Ok(Tombstone {
        owner: owner_from_bytes(&t.owner)?,
        namespace: namespace_from_wire(t.namespace)?,
        hash: hash_from_bytes(&t.hash)?,
        deleted_ms: t.deleted_ms,
        keep_until_ms: t.keep_until_ms,
    })
}

/// One bucket's entries on the wire.
pub fn entries_to_wire(
    owner: &AccountId,
    namespace: Namespace,
    e: &BucketEntries,
) -> pb::BucketEntries {
    pb::BucketEntries {
        bucket: Some(bucket(owner, namespace)),
        messages: e
            .messages
            .iter()
            .map(|m| pb::Version {
                hash: hash_to_bytes(&m.hash),
                timestamp_ms: m.timestamp_ms,
                expiry_ms: m.expiry_ms,
                expiry_version: m.expiry_version,
            })
            .collect(),
        tombstones: e.tombstones.iter().map(tombstone_to_wire).collect(),
    }
}

/// A message version from the wire.
///
/// # Errors
/// [`ReplicaError::Wire`] for a malformed hash.
pub fn version_from_wire(v: &pb::Version) -> Result<MessageVersion, ReplicaError> {
    Ok(MessageVersion {
        hash: hash_from_bytes(&v.hash)?,
        timestamp_ms: v.timestamp_ms,
        expiry_ms: v.expiry_ms,
        expiry_version: v.expiry_version,
    })
}

/// A full message on the wire.
pub fn replica_to_wire(m: &ReplicaMessage) -> pb::Replica {
    pb::Replica {
        owner: m.owner.as_bytes().to_vec(),
        namespace: i32::from(m.namespace),
        hash: hash_to_bytes(&m.hash),
        data: m.data.clone(),
        timestamp_ms: m.timestamp_ms,
        expiry_ms: m.expiry_ms,
        expiry_version: m.expiry_version,
    }
}

/// A full message from the wire, **verifying the hash** against owner, namespace and data.
///
/// # Errors
/// [`ReplicaError::Wire`] for malformed fields, data above `max_data_bytes`, or a hash that
/// does not match.
pub fn replica_from_wire(
    w: &pb::Replica,
    max_data_bytes: usize,
) -> Result<ReplicaMessage, ReplicaError> {
    if w.data.len() > max_data_bytes {
        return Err(wire_err("replica data", "too large"));
    }
    let owner = owner_from_bytes(&w.owner)?;
    let namespace = namespace_from_wire(w.namespace)?;
    let hash = hash_from_bytes(&w.hash)?;
    let expected = umbra_crypto::hash::message_hash(&owner, i32::from(namespace), &w.data);
    if expected != hash {
        return Err(wire_err(
            "replica",
            "hash does not match owner, namespace and data",
        ));
    }
    Ok(ReplicaMessage {
        owner,
        namespace,
        hash,
        data: w.data.clone(),
        timestamp_ms: w.timestamp_ms,
        expiry_ms: w.expiry_ms,
        expiry_version: w.expiry_version,
    })
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
        let w = replica_to_wire(&m);
        assert_eq!(w.hash.len(), HASH_BYTES);
        assert_eq!(replica_from_wire(&w, 76_800).unwrap(), m);
        let mut short = w.clone();
        short.hash.pop();
        assert!(replica_from_wire(&short, 76_800).is_err());
        let mut wrong_ns = w.clone();
        wrong_ns.namespace = 4;
        assert!(replica_from_wire(&wrong_ns, 76_800).is_err());
        let mut big_ns = w.clone();
        big_ns.namespace = 1 << 20;
        assert!(replica_from_wire(&big_ns, 76_800).is_err());
        let mut wrong_owner = w.clone();
        wrong_owner.owner = vec![3; 33];
        assert!(replica_from_wire(&wrong_owner, 76_800).is_err());
        assert!(replica_from_wire(&w, 4).is_err(), "size bound");
        let mut bad = w.clone();
        bad.data = b"other".to_vec();
        assert!(replica_from_wire(&bad, 76_800).is_err());
    }

    #[test]
    fn hashes_and_tombstones_round_trip() {
        let owner = AccountId::new([9; 33]);
        let hash = umbra_crypto::hash::message_hash(&owner, -2, b"x");
        assert_eq!(hash_from_bytes(&hash_to_bytes(&hash)).unwrap(), hash);
        let t = Tombstone {
            owner,
            namespace: -2,
            hash,
            deleted_ms: 5,
            keep_until_ms: 6,
        };
        assert_eq!(tombstone_from_wire(&tombstone_to_wire(&t)).unwrap(), t);
        let d = BucketDigest {
            owner,
            namespace: i16::MIN,
            digest: [7; 32],
            messages: 1,
            tombstones: 0,
        };
        assert_eq!(
            digest_from_wire(&digest_to_wire(&d)).unwrap(),
            RemoteDigest {
                owner,
                namespace: i16::MIN,
                digest: [7; 32]
            }
        );
        assert!(owner_from_bytes(&[0; 32]).is_err());
        assert!(digest_from_bytes(&[0; 31]).is_err());
    }
}
