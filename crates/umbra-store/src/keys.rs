//! The on-disk layout: column families by kind of data, and the byte forms of their keys and
//! values. Every integer in a key is big-endian, signed ones with the sign bit flipped, so that
//! RocksDB's byte order is the numeric order.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `messages` | owner (33) ‖ namespace (2) ‖ seq (8) | timestamp ‖ expiry ‖ expiry version (8 each) ‖ hash (43) ‖ data |
//! | `hashes` | hash (43) ‖ `M` | the message's key (43) |
//! | `hashes` | hash (43) ‖ `T` | owner ‖ namespace of the tombstone (35) |
//! | `tombstones` | owner ‖ namespace ‖ hash (78) | deleted ‖ keep until ‖ local seq (8 each, 0 = none) |
//! | `expiry` | `M` ‖ expiry (8) ‖ message key (43) / `T` ‖ keep until (8) ‖ tombstone key (78) | empty |
//! | `revoked` | owner ‖ token (36) | order (8) ‖ revoked at (8) |
//! | `meta` | `format`, `seq` | the layout version, the next seq |
//!
//! `seq` is this node's insertion counter (never reused), so one account's messages in one
//! namespace are in insertion order under their 35-byte prefix: "everything after `last_hash`"
//! is one seek and a forward scan.

use crate::error::{Result, StoreError};
use crate::types::{AccountId, HASH_LEN, MessageHash, Millis, Namespace};

pub(crate) const CF_MESSAGES: &str = "messages";
pub(crate) const CF_HASHES: &str = "hashes";
pub(crate) const CF_TOMBSTONES: &str = "tombstones";
pub(crate) const CF_EXPIRY: &str = "expiry";
pub(crate) const CF_REVOKED: &str = "revoked";
pub(crate) const CF_META: &str = "meta";
/// Every column family, in the order they are opened.
pub(crate) const ALL_CFS: [&str; 6] = [
    CF_MESSAGES,
    CF_HASHES,
    CF_TOMBSTONES,
    CF_EXPIRY,
    CF_REVOKED,
    CF_META,
];

/// `meta` key of the layout version.
pub(crate) const META_FORMAT: &[u8] = b"format";
/// `meta` key of the next insertion seq.
pub(crate) const META_SEQ: &[u8] = b"seq";
/// The layout this build writes (`meta/format`).
pub(crate) const FORMAT_VERSION: i64 = 1;

pub(crate) const OWNER_LEN: usize = 33;
/// Owner and namespace: one bucket.
pub(crate) const BUCKET_LEN: usize = OWNER_LEN + 2;
pub(crate) const MSG_KEY_LEN: usize = BUCKET_LEN + 8;
pub(crate) const TOMB_KEY_LEN: usize = BUCKET_LEN + HASH_LEN;
const MSG_HEADER_LEN: usize = 24 + HASH_LEN;
const TOKEN_LEN: usize = 36;

/// Kind byte of a message entry (`hashes`, `expiry`).
pub(crate) const KIND_MESSAGE: u8 = b'M';
/// Kind byte of a tombstone entry (`hashes`, `expiry`).
pub(crate) const KIND_TOMBSTONE: u8 = b'T';

fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt { what }
}

/// An `i64` as 8 bytes that sort like the numbers.
pub(crate) fn i64_key(v: i64) -> [u8; 8] {
    (v.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

fn i64_from_key(b: &[u8]) -> Result<i64> {
    let a: [u8; 8] = b.try_into().map_err(|_| corrupt("integer in a key"))?;
    Ok((u64::from_be_bytes(a) ^ (1 << 63)).cast_signed())
}

fn i64_at(b: &[u8], at: usize) -> Result<i64> {
    let a: [u8; 8] = b
        .get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .ok_or(corrupt("integer in a value"))?;
    Ok(i64::from_be_bytes(a))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64> {
    i64_at(b, at).map(i64::cast_unsigned)
}

/// The 35-byte prefix of one account's namespace.
pub(crate) fn bucket(owner: &AccountId, ns: Namespace) -> [u8; BUCKET_LEN] {
    let mut k = [0u8; BUCKET_LEN];
    k[..OWNER_LEN].copy_from_slice(owner.as_bytes());
    k[OWNER_LEN..].copy_from_slice(&(ns.cast_unsigned() ^ 0x8000).to_be_bytes());
    k
}

/// The owner and namespace of a key that starts with a bucket.
pub(crate) fn parse_bucket(k: &[u8]) -> Result<(AccountId, Namespace)> {
    let owner = k
        .get(..OWNER_LEN)
        .and_then(|o| AccountId::try_from(o).ok())
        .ok_or(corrupt("account in a key"))?;
    let ns: [u8; 2] = k
        .get(OWNER_LEN..BUCKET_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(corrupt("namespace in a key"))?;
    Ok((owner, (u16::from_be_bytes(ns) ^ 0x8000).cast_signed()))
}

/// The key of a message.
pub(crate) fn msg_key(owner: &AccountId, ns: Namespace, seq: u64) -> [u8; MSG_KEY_LEN] {
    let mut k = [0u8; MSG_KEY_LEN];
    k[..BUCKET_LEN].copy_from_slice(&bucket(owner, ns));
    k[BUCKET_LEN..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The seq of a message key.
pub(crate) fn seq_of(k: &[u8]) -> Result<u64> {
    let a: [u8; 8] = k
        .get(BUCKET_LEN..MSG_KEY_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(corrupt("message key"))?;
    Ok(u64::from_be_bytes(a))
}

/// The smallest key after every key that starts with `prefix` (for an upper bound).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xFF: no finite bound; a key longer than any of ours.
    vec![u8::MAX; MSG_KEY_LEN + TOMB_KEY_LEN]
}

/// The state a message value carries besides its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsgHeader {
    pub(crate) hash: MessageHash,
    pub(crate) timestamp_ms: Millis,
    pub(crate) expiry_ms: Millis,
    pub(crate) expiry_version: Millis,
}

/// A message value: the header, then the data.
pub(crate) fn msg_value(h: &MsgHeader, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(MSG_HEADER_LEN + data.len());
    v.extend_from_slice(&h.timestamp_ms.to_be_bytes());
    v.extend_from_slice(&h.expiry_ms.to_be_bytes());
    v.extend_from_slice(&h.expiry_version.to_be_bytes());
    v.extend_from_slice(h.hash.as_str().as_bytes());
    v.extend_from_slice(data);
    v
}

/// The header and the data of a message value.
pub(crate) fn parse_msg(v: &[u8]) -> Result<(MsgHeader, &[u8])> {
    let hash = v
        .get(24..MSG_HEADER_LEN)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.parse().ok())
        .ok_or(corrupt("message hash in a value"))?;
    Ok((
        MsgHeader {
            hash,
            timestamp_ms: i64_at(v, 0)?,
            expiry_ms: i64_at(v, 8)?,
            expiry_version: i64_at(v, 16)?,
        },
        v.get(MSG_HEADER_LEN..).unwrap_or_default(),
    ))
}

/// The `hashes` key of a hash's message or tombstone.
pub(crate) fn hash_key(hash: &MessageHash, kind: u8) -> [u8; HASH_LEN + 1] {
    let mut k = [0u8; HASH_LEN + 1];
    k[..HASH_LEN].copy_from_slice(hash.as_str().as_bytes());
    k[HASH_LEN] = kind;
    k
}

/// The key of a tombstone.
pub(crate) fn tomb_key(owner: &AccountId, ns: Namespace, hash: &MessageHash) -> [u8; TOMB_KEY_LEN] {
    let mut k = [0u8; TOMB_KEY_LEN];
    k[..BUCKET_LEN].copy_from_slice(&bucket(owner, ns));
    k[BUCKET_LEN..].copy_from_slice(hash.as_str().as_bytes());
    k
}

/// The hash at the end of a tombstone key.
pub(crate) fn tomb_hash(k: &[u8]) -> Result<MessageHash> {
    k.get(BUCKET_LEN..TOMB_KEY_LEN)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| h.parse().ok())
        .ok_or(corrupt("message hash in a tombstone key"))
}

/// A tombstone value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TombValue {
    pub(crate) deleted_ms: Millis,
    pub(crate) keep_until_ms: Millis,
    /// The seq the message had here (its `last_hash` position), 0 when it never was here.
    pub(crate) local_seq: u64,
}

impl TombValue {
    pub(crate) fn encode(&self) -> [u8; 24] {
        let mut v = [0u8; 24];
        v[..8].copy_from_slice(&self.deleted_ms.to_be_bytes());
        v[8..16].copy_from_slice(&self.keep_until_ms.to_be_bytes());
        v[16..].copy_from_slice(&self.local_seq.to_be_bytes());
        v
    }

    pub(crate) fn parse(v: &[u8]) -> Result<TombValue> {
        Ok(TombValue {
            deleted_ms: i64_at(v, 0)?,
            keep_until_ms: i64_at(v, 8)?,
            local_seq: u64_at(v, 16)?,
        })
    }
}

/// The `expiry` key of an entry (`kind` ‖ time ‖ the entry's key).
pub(crate) fn expiry_key(kind: u8, at_ms: Millis, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.push(kind);
    k.extend_from_slice(&i64_key(at_ms));
    k.extend_from_slice(key);
    k
}

/// The time and the entry's key of an `expiry` key.
pub(crate) fn parse_expiry_key(k: &[u8]) -> Result<(Millis, &[u8])> {
    let at = i64_from_key(k.get(1..9).ok_or(corrupt("expiry key"))?)?;
    Ok((at, k.get(9..).unwrap_or_default()))
}

/// The `revoked` key of a token.
pub(crate) fn revoked_key(
    owner: &AccountId,
    token: &[u8; TOKEN_LEN],
) -> [u8; OWNER_LEN + TOKEN_LEN] {
    let mut k = [0u8; OWNER_LEN + TOKEN_LEN];
    k[..OWNER_LEN].copy_from_slice(owner.as_bytes());
    k[OWNER_LEN..].copy_from_slice(token);
    k
}

/// The token of a `revoked` key.
pub(crate) fn revoked_token(k: &[u8]) -> Result<[u8; TOKEN_LEN]> {
    k.get(OWNER_LEN..)
        .and_then(|t| t.try_into().ok())
        .ok_or(corrupt("subaccount token in a key"))
}

/// A `revoked` value: recency order, then the revocation time.
pub(crate) fn revoked_value(order: u64, revoked_ms: Millis) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&order.to_be_bytes());
    v[8..].copy_from_slice(&revoked_ms.to_be_bytes());
    v
}

/// The recency order of a `revoked` value.
pub(crate) fn revoked_order(v: &[u8]) -> Result<u64> {
    u64_at(v, 0)
}

/// A big-endian `u64` value (`meta/seq`).
pub(crate) fn parse_u64(v: &[u8]) -> Result<u64> {
    u64_at(v, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_sort_like_numbers() {
        let vals = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in vals.windows(2) {
            assert!(i64_key(w[0]) < i64_key(w[1]));
        }
        for v in vals {
            assert_eq!(i64_from_key(&i64_key(v)).unwrap(), v);
        }
        let o = AccountId::new([5; 33]);
        assert!(bucket(&o, -1) < bucket(&o, 0));
        assert!(bucket(&o, 0) < bucket(&o, 1));
        assert_eq!(parse_bucket(&bucket(&o, -12)).unwrap(), (o, -12));
    }

    #[test]
    fn values_round_trip_and_damage_is_an_error() {
        let h = MsgHeader {
            hash: "A".repeat(43).parse().unwrap(),
            timestamp_ms: 1,
            expiry_ms: -2,
            expiry_version: 3,
        };
        let v = msg_value(&h, b"data");
        assert_eq!(parse_msg(&v).unwrap(), (h, &b"data"[..]));
        assert!(parse_msg(&v[..20]).is_err());
        assert!(parse_bucket(&[5; 20]).is_err());
        let t = TombValue {
            deleted_ms: 4,
            keep_until_ms: 5,
            local_seq: 6,
        };
        assert_eq!(TombValue::parse(&t.encode()).unwrap(), t);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
