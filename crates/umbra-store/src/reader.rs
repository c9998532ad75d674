//! The read-only queries. They read the database directly from any thread (RocksDB reads are
//! thread-safe; each scan sees one consistent view) and see every write whose reply has
//! resolved.

use std::collections::BTreeMap;

use rocksdb::{DBRawIteratorWithThreadMode, ReadOptions};

use crate::engine::{self, Db};
use crate::error::{Result, StoreError};
use crate::keys::{self, KIND_MESSAGE, MsgHeader, TombValue};
use crate::rows::Cfs;
use crate::types::{
    AccountId, ExportCursor, ExportPage, MessageHash, Millis, Namespace, ReplicaMessage,
    RetrieveDirection, RetrieveLimits, Retrieved, StoredMessage, SubaccountToken,
};

/// A read of the database for one operation.
pub(crate) struct Reader<'db> {
    pub(crate) db: &'db Db,
    pub(crate) cf: Cfs<'db>,
    pub(crate) op: &'static str,
}

impl<'db> Reader<'db> {
    pub(crate) fn new(db: &'db Db, op: &'static str) -> Result<Reader<'db>> {
        Ok(Reader {
            db,
            cf: Cfs::new(db)?,
            op,
        })
    }

    fn get(&self, cf: &rocksdb::ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(cf, key).map_err(StoreError::db(self.op))
    }

    /// A raw iterator over `cf` limited to keys starting with `prefix`.
    pub(crate) fn iter(
        &self,
        cf: &rocksdb::ColumnFamily,
        prefix: &[u8],
    ) -> DBRawIteratorWithThreadMode<'db, Db> {
        let mut ro = ReadOptions::default();
        if !prefix.is_empty() {
            ro.set_iterate_lower_bound(prefix.to_vec());
            ro.set_iterate_upper_bound(keys::prefix_end(prefix));
        }
        self.db.raw_iterator_cf_opt(cf, ro)
    }

    pub(crate) fn status(&self, it: &DBRawIteratorWithThreadMode<'_, Db>) -> Result<()> {
        it.status().map_err(StoreError::db(self.op))
    }

    /// The message key the hash's message has, if any.
    fn message_key(&self, hash: &MessageHash) -> Result<Option<Vec<u8>>> {
        self.get(self.cf.hashes, &keys::hash_key(hash, KIND_MESSAGE))
    }

    /// The message with this hash: its key and value.
    fn message(&self, hash: &MessageHash) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some(key) = self.message_key(hash)? else {
            return Ok(None);
        };
        Ok(self.get(self.cf.messages, &key)?.map(|v| (key, v)))
    }

    /// The seq `last_hash` stands for: a live (or not yet swept) message, or a deleted one
    /// whose tombstone remembers its position. `None` when this node knows no such message of
    /// the account in the namespace.
    fn anchor(&self, owner: &AccountId, ns: Namespace, hash: &MessageHash) -> Result<Option<u64>> {
        let bucket = keys::bucket(owner, ns);
        if let Some(key) = self.message_key(hash)?
            && key.starts_with(&bucket)
        {
            return keys::seq_of(&key).map(Some);
        }
        let Some(v) = self.get(self.cf.tombstones, &keys::tomb_key(owner, ns, hash))? else {
            return Ok(None);
        };
        let t = TombValue::parse(&v)?;
        Ok((t.local_seq != 0).then_some(t.local_seq))
    }
}

fn replica(key: &[u8], value: &[u8]) -> Result<ReplicaMessage> {
    let (owner, namespace) = keys::parse_bucket(key)?;
    let (h, data) = keys::parse_msg(value)?;
    Ok(ReplicaMessage {
        owner,
        namespace,
        hash: h.hash,
        data: data.to_vec(),
        timestamp_ms: h.timestamp_ms,
        expiry_ms: h.expiry_ms,
        expiry_version: h.expiry_version,
    })
}

/// One page of a bucket after (or, reversed, before) `last_hash`: one seek, then a scan.
pub(crate) fn retrieve(
    r: &Reader<'_>,
    owner: &AccountId,
    ns: Namespace,
    last_hash: Option<&MessageHash>,
    limits: RetrieveLimits,
    direction: RetrieveDirection,
    now_ms: Millis,
) -> Result<Retrieved> {
    let known = match last_hash {
        Some(h) => r.anchor(owner, ns, h)?,
        None => None,
    };
    let max_count = limits.max_count.map(|n| n.max(1));
    let bucket = keys::bucket(owner, ns);
    let mut it = r.iter(r.cf.messages, &bucket);
    // storage-rpc-addendum.md A2: reversed, strictly older than `last_hash`, newest first; an
    // absent or unknown `last_hash` starts at the newest (forward: at the oldest).
    let forward = matches!(direction, RetrieveDirection::Forward);
    match (forward, known) {
        (true, Some(seq)) => it.seek(keys::msg_key(owner, ns, seq.saturating_add(1))),
        (true, None) => it.seek(bucket),
        (false, Some(seq)) => it.seek_for_prev(keys::msg_key(owner, ns, seq.saturating_sub(1))),
        (false, None) => it.seek_to_last(),
    }
    let mut out = Retrieved::default();
    let mut total = 0usize;
    while let Some((_, v)) = it.item() {
        let (h, data) = keys::parse_msg(v)?;
        if h.expiry_ms > now_ms {
            // storage-rpc-addendum.md A1: `more` only when a further message exists and a
            // limit left it out (this one is that message).
            if max_count.is_some_and(|m| out.messages.len() >= m) {
                out.more = true;
                break;
            }
            if let Some(max) = limits.max_size {
                total = total.saturating_add(RetrieveLimits::message_size(
                    h.hash.as_str().len(),
                    data.len(),
                ));
                // The first message is always returned, even when alone it is over the cap.
                if !out.messages.is_empty() && total > max {
                    out.more = true;
                    break;
                }
            }
            out.messages.push(stored(ns, &h, data));
        }
        if forward {
            it.next();
        } else {
            it.prev();
        }
    }
    r.status(&it)?;
    Ok(out)
}

fn stored(ns: Namespace, h: &MsgHeader, data: &[u8]) -> StoredMessage {
    StoredMessage {
        hash: h.hash,
        namespace: ns,
        data: data.to_vec(),
        timestamp_ms: h.timestamp_ms,
        expiry_ms: h.expiry_ms,
    }
}

pub(crate) fn get_expiries(
    r: &Reader<'_>,
    owner: &AccountId,
    hashes: &[MessageHash],
    now_ms: Millis,
) -> Result<BTreeMap<MessageHash, Millis>> {
    let mut out = BTreeMap::new();
    for h in hashes {
        let Some((k, v)) = r.message(h)? else {
            continue;
        };
        let (o, _) = keys::parse_bucket(&k)?;
        let (m, _) = keys::parse_msg(&v)?;
        if o == *owner && m.expiry_ms > now_ms {
            out.insert(*h, m.expiry_ms);
        }
    }
    Ok(out)
}

pub(crate) fn revoked(r: &Reader<'_>, owner: &AccountId) -> Result<Vec<SubaccountToken>> {
    let mut it = r.iter(r.cf.revoked, owner.as_bytes());
    it.seek_to_first();
    let mut all = Vec::new();
    while let Some((k, v)) = it.item() {
        all.push((keys::revoked_order(v)?, keys::revoked_token(k)?));
        it.next();
    }
    r.status(&it)?;
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(all.into_iter().map(|(_, t)| SubaccountToken(t)).collect())
}

pub(crate) fn is_revoked(
    r: &Reader<'_>,
    owner: &AccountId,
    token: &SubaccountToken,
) -> Result<bool> {
    Ok(r.get(r.cf.revoked, &keys::revoked_key(owner, &token.0))?
        .is_some())
}

pub(crate) fn get_replicas(
    r: &Reader<'_>,
    hashes: &[MessageHash],
    now_ms: Millis,
) -> Result<Vec<ReplicaMessage>> {
    let mut out = Vec::new();
    for h in hashes {
        if let Some((k, v)) = r.message(h)? {
            let m = replica(&k, &v)?;
            if m.expiry_ms > now_ms {
                out.push(m);
            }
        }
    }
    Ok(out)
}

pub(crate) fn owners(r: &Reader<'_>, now_ms: Millis) -> Result<Vec<AccountId>> {
    let mut it = r.iter(r.cf.messages, &[]);
    it.seek_to_first();
    let mut out: Vec<AccountId> = Vec::new();
    while let Some((k, v)) = it.item() {
        let (owner, _) = keys::parse_bucket(k)?;
        if out.last() == Some(&owner) {
            // Skip the rest of this account at once.
            it.seek(keys::prefix_end(owner.as_bytes()));
            continue;
        }
        if keys::parse_msg(v)?.0.expiry_ms > now_ms {
            out.push(owner);
            continue;
        }
        it.next();
    }
    r.status(&it)?;
    Ok(out)
}

pub(crate) fn export_messages(
    r: &Reader<'_>,
    filter: &dyn Fn(&AccountId) -> bool,
    after: ExportCursor,
    scan_limit: usize,
    now_ms: Millis,
) -> Result<ExportPage> {
    let scan_limit = scan_limit.max(1);
    let mut it = r.iter(r.cf.messages, &[]);
    match &after.0 {
        Some(k) => {
            it.seek(k);
            if it.key() == Some(&k[..]) {
                it.next();
            }
        }
        None => it.seek_to_first(),
    }
    let mut page = ExportPage::default();
    let mut scanned = 0usize;
    let mut last = None;
    while let Some((k, v)) = it.item() {
        if scanned >= scan_limit {
            break;
        }
        scanned += 1;
        last = Some(k.to_vec());
        let (owner, _) = keys::parse_bucket(k)?;
        if filter(&owner) {
            let m = replica(k, v)?;
            if m.expiry_ms > now_ms {
                page.messages.push(m);
            }
        }
        it.next();
    }
    r.status(&it)?;
    if scanned >= scan_limit {
        page.next = last.map(|k| ExportCursor(Some(k)));
    }
    Ok(page)
}

/// Bytes of the store's files (SST files and memtables).
pub(crate) fn disk_bytes(r: &Reader<'_>) -> u64 {
    engine::disk_bytes(r.db)
}
