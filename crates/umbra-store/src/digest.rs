//! Bucket digests and listings for anti-entropy (see the crate docs for the definition).

use std::collections::BTreeMap;

use blake2::{Blake2b256, Digest};
use rusqlite::{Connection, params};

use crate::columns::{hash_from, owner_from};
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
    c: &Connection,
    owner: Option<&AccountId>,
    now_ms: Millis,
) -> rusqlite::Result<Vec<BucketDigest>> {
    let owner_param: Option<Vec<u8>> = owner.map(|o| o.as_bytes().to_vec());
    let mut buckets: BTreeMap<(AccountId, Namespace), BucketDigest> = BTreeMap::new();
    {
        let mut st = c.prepare_cached(
            "SELECT owner, namespace, hash, expiry_ms FROM messages
             WHERE expiry_ms > ?1 AND (?2 IS NULL OR owner = ?2)",
        )?;
        let mut rows = st.query(params![now_ms, owner_param])?;
        while let Some(r) = rows.next()? {
            let o = owner_from(r.get(0)?)?;
            let ns: Namespace = r.get(1)?;
            let hash: String = r.get(2)?;
            let exp: i64 = r.get(3)?;
            let b = bucket(&mut buckets, o, ns);
            xor_into(&mut b.digest, &message_item(&hash, exp));
            b.messages += 1;
        }
    }
    {
        let mut st = c.prepare_cached(
            "SELECT owner, namespace, hash FROM tombstones
             WHERE keep_until_ms > ?1 AND (?2 IS NULL OR owner = ?2)",
        )?;
        let mut rows = st.query(params![now_ms, owner_param])?;
        while let Some(r) = rows.next()? {
            let o = owner_from(r.get(0)?)?;
            let ns: Namespace = r.get(1)?;
            let hash: String = r.get(2)?;
            let b = bucket(&mut buckets, o, ns);
            xor_into(&mut b.digest, &tombstone_item(&hash));
            b.tombstones += 1;
        }
    }
    Ok(buckets.into_values().collect())
}

pub(crate) fn bucket_entries(
    c: &Connection,
    owner: &AccountId,
    ns: Namespace,
    now_ms: Millis,
) -> rusqlite::Result<BucketEntries> {
    let o = &owner.as_bytes()[..];
    let messages = {
        let mut st = c.prepare_cached(
            "SELECT hash, timestamp_ms, expiry_ms, expiry_version FROM messages
             WHERE owner = ?1 AND namespace = ?2 AND expiry_ms > ?3 ORDER BY hash",
        )?;
        st.query_map(params![o, ns, now_ms], |r| {
            Ok(MessageVersion {
                hash: hash_from(r.get(0)?)?,
                timestamp_ms: r.get(1)?,
                expiry_ms: r.get(2)?,
                expiry_version: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let tombstones = {
        let mut st = c.prepare_cached(
            "SELECT hash, deleted_ms, keep_until_ms FROM tombstones
             WHERE owner = ?1 AND namespace = ?2 AND keep_until_ms > ?3 ORDER BY hash",
        )?;
        st.query_map(params![o, ns, now_ms], |r| {
            Ok(Tombstone {
                owner: *owner,
                namespace: ns,
                hash: hash_from(r.get(0)?)?,
                deleted_ms: r.get(1)?,
                keep_until_ms: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    Ok(BucketEntries {
        messages,
        tombstones,
    })
}
