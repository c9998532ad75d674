//! Bucket digests and listings for anti-entropy (see the crate docs for the definition).

use std::collections::BTreeMap;

use blake2::{Blake2b256, Digest};

use crate::error::Result;
use crate::keys::{self, TombValue};
use crate::reader::Reader;
use crate::types::{
    AccountId, BucketDigest, BucketEntries, MessageVersion, Millis, Namespace, Tombstone,
};

const DOMAIN: &[u8] = b"umbra-store digest v1";

/// The digest contribution of a live message.
pub(crate) fn message_item(hash: &str, expiry_ms: Millis) -> [u8; 32] {
    Blake2b256::new()
        .chain_update(DOMAIN)
        .chain_update(b"M")
        .chain_update(hash.as_bytes())
        .chain_update(expiry_ms.to_be_bytes())
        .finalize()
        .into()
}

/// The digest contribution of a live tombstone.
pub(crate) fn tombstone_item(hash: &str) -> [u8; 32] {
    Blake2b256::new()
        .chain_update(DOMAIN)
        .chain_update(b"T")
        .chain_update(hash.as_bytes())
        .finalize()
        .into()
}

fn xor_into(acc: &mut [u8; 32], item: &[u8; 32]) {
    for (a, b) in acc.iter_mut().zip(item) {
        *a ^= b;
    }
}

fn bucket(
    m: &mut BTreeMap<(AccountId, Namespace), BucketDigest>,
    owner: AccountId,
    namespace: Namespace,
) -> &mut BucketDigest {
    m.entry((owner, namespace)).or_insert(BucketDigest {
        owner,
        namespace,
        digest: [0; 32],
        messages: 0,
        tombstones: 0,
    })
}

pub(crate) fn bucket_digests(
    r: &Reader<'_>,
    owner: Option<&AccountId>,
    now_ms: Millis,
) -> Result<Vec<BucketDigest>> {
    let prefix: &[u8] = owner.map_or(&[], |o| &o.as_bytes()[..]);
    let mut buckets: BTreeMap<(AccountId, Namespace), BucketDigest> = BTreeMap::new();
    let mut it = r.iter(r.cf.messages, prefix);
    it.seek_to_first();
    while let Some((k, v)) = it.item() {
        let (h, _) = keys::parse_msg(v)?;
        if h.expiry_ms > now_ms {
            let (o, ns) = keys::parse_bucket(k)?;
            let b = bucket(&mut buckets, o, ns);
            xor_into(&mut b.digest, &message_item(h.hash.as_str(), h.expiry_ms));
            b.messages += 1;
        }
        it.next();
    }
    r.status(&it)?;
    let mut it = r.iter(r.cf.tombstones, prefix);
    it.seek_to_first();
    while let Some((k, v)) = it.item() {
        if TombValue::parse(v)?.keep_until_ms > now_ms {
            let (o, ns) = keys::parse_bucket(k)?;
            let b = bucket(&mut buckets, o, ns);
            xor_into(&mut b.digest, &tombstone_item(keys::tomb_hash(k)?.as_str()));
            b.tombstones += 1;
        }
        it.next();
    }
    r.status(&it)?;
    Ok(buckets.into_values().collect())
}

pub(crate) fn bucket_entries(
    r: &Reader<'_>,
    owner: &AccountId,
    ns: Namespace,
    now_ms: Millis,
) -> Result<BucketEntries> {
    let prefix = keys::bucket(owner, ns);
    let mut messages = Vec::new();
    let mut it = r.iter(r.cf.messages, &prefix);
    it.seek_to_first();
    while let Some((_, v)) = it.item() {
        let (h, _) = keys::parse_msg(v)?;
        if h.expiry_ms > now_ms {
            messages.push(MessageVersion {
                hash: h.hash,
                timestamp_ms: h.timestamp_ms,
                expiry_ms: h.expiry_ms,
                expiry_version: h.expiry_version,
            });
        }
        it.next();
    }
    r.status(&it)?;
    messages.sort_by_key(|m| m.hash);
    // Tombstone keys end in the hash: already in hash order.
    let mut tombstones = Vec::new();
    let mut it = r.iter(r.cf.tombstones, &prefix);
    it.seek_to_first();
    while let Some((k, v)) = it.item() {
        let t = TombValue::parse(v)?;
        if t.keep_until_ms > now_ms {
            tombstones.push(Tombstone {
                owner: *owner,
                namespace: ns,
                hash: keys::tomb_hash(k)?,
                deleted_ms: t.deleted_ms,
                keep_until_ms: t.keep_until_ms,
            });
        }
        it.next();
    }
    r.status(&it)?;
    Ok(BucketEntries {
        messages,
        tombstones,
    })
}
