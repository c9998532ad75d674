//! The writer's view of one command inside a batch transaction: typed reads and writes of
//! messages and tombstones that keep every index (`hashes`, `expiry`) in step, and the usage
//! changes the command makes.

use std::collections::HashMap;

use rocksdb::{ColumnFamily, ReadOptions, Transaction};

use crate::config::StoreConfig;
use crate::engine::{Db, cf};
use crate::error::{Result, StoreError};
use crate::keys::{
    self, CF_EXPIRY, CF_HASHES, CF_MESSAGES, CF_META, CF_REVOKED, CF_TOMBSTONES, KIND_MESSAGE,
    KIND_TOMBSTONE, MSG_KEY_LEN, MsgHeader, TombValue,
};
use crate::types::{AccountId, MessageHash, Millis, Namespace};

/// The column families, looked up once.
pub(crate) struct Cfs<'db> {
    pub(crate) messages: &'db ColumnFamily,
    pub(crate) hashes: &'db ColumnFamily,
    pub(crate) tombstones: &'db ColumnFamily,
    pub(crate) expiry: &'db ColumnFamily,
    pub(crate) revoked: &'db ColumnFamily,
    pub(crate) meta: &'db ColumnFamily,
}

impl<'db> Cfs<'db> {
    pub(crate) fn new(db: &'db Db) -> Result<Cfs<'db>> {
        Ok(Cfs {
            messages: cf(db, CF_MESSAGES)?,
            hashes: cf(db, CF_HASHES)?,
            tombstones: cf(db, CF_TOMBSTONES)?,
            expiry: cf(db, CF_EXPIRY)?,
            revoked: cf(db, CF_REVOKED)?,
            meta: cf(db, CF_META)?,
        })
    }
}

/// Messages, data bytes and tombstones one account holds: the in-memory tally the quota and
/// `stats()` read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
}

/// Changes made by one command, applied to the tallies only once the command has succeeded.
#[derive(Default)]
pub(crate) struct Deltas {
    pub(crate) usage: Vec<(AccountId, i64, i64)>,
    pub(crate) tombstones: i64,
    /// Bytes of keys and values added (for the size cap).
    pub(crate) added_bytes: u64,
}

impl Deltas {
    fn add(&mut self, owner: AccountId, count: i64, bytes: i64) {
        self.usage.push((owner, count, bytes));
    }

    pub(crate) fn for_owner(&self, owner: &AccountId) -> (i64, i64) {
        self.usage
            .iter()
            .filter(|(o, _, _)| o == owner)
            .fold((0, 0), |(c, b), (_, dc, db)| (c + dc, b + db))
    }
}

/// Bytes a message costs beyond its data, in keys and values of every column family (counted
/// against [`StoreConfig::max_db_bytes`]).
pub(crate) const MESSAGE_OVERHEAD: u64 = 250;
/// Bytes a tombstone costs.
pub(crate) const TOMBSTONE_OVERHEAD: u64 = 270;

/// One command's access to the batch: the transaction, the column families, the settings and
/// tallies, and what the command changed.
pub(crate) struct Tx<'t, 'db> {
    pub(crate) txn: &'t Transaction<'db, Db>,
    pub(crate) cf: &'t Cfs<'db>,
    pub(crate) op: &'static str,
    pub(crate) config: &'t StoreConfig,
    pub(crate) usage: &'t HashMap<AccountId, Usage>,
    /// Stored bytes (the store's tally) when this command started.
    pub(crate) stored_bytes: u64,
    pub(crate) next_seq: &'t mut u64,
    pub(crate) d: Deltas,
}

/// A message as the writer sees it.
pub(crate) struct Row {
    pub(crate) key: [u8; MSG_KEY_LEN],
    pub(crate) owner: AccountId,
    pub(crate) namespace: Namespace,
    pub(crate) seq: u64,
    pub(crate) h: MsgHeader,
    pub(crate) len: i64,
}

impl Row {
    pub(crate) fn from_kv(key: &[u8], value: &[u8]) -> Result<Row> {
        let (owner, namespace) = keys::parse_bucket(key)?;
        let (h, data) = keys::parse_msg(value)?;
        Ok(Row {
            key: key.try_into().map_err(|_| StoreError::Corrupt {
                what: "message key",
            })?,
            owner,
            namespace,
            seq: keys::seq_of(key)?,
            h,
            len: len_i64(data.len()),
        })
    }
}

/// A tombstone as the writer sees it.
pub(crate) struct TombRow {
    pub(crate) owner: AccountId,
    pub(crate) namespace: Namespace,
    pub(crate) hash: MessageHash,
    pub(crate) v: TombValue,
}

pub(crate) fn len_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Tx<'_, '_> {
    fn err(&self) -> impl Fn(rocksdb::Error) -> StoreError + use<> {
        StoreError::db(self.op)
    }

    pub(crate) fn get(&self, cf: &ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.txn.get_cf(cf, key).map_err(self.err())
    }

    pub(crate) fn put(&mut self, cf: &ColumnFamily, key: &[u8], value: &[u8]) -> Result<()> {
        self.d.added_bytes = self
            .d
            .added_bytes
            .saturating_add(u64::try_from(key.len() + value.len()).unwrap_or(u64::MAX));
        self.txn.put_cf(cf, key, value).map_err(self.err())
    }

    pub(crate) fn del(&self, cf: &ColumnFamily, key: &[u8]) -> Result<()> {
        self.txn.delete_cf(cf, key).map_err(self.err())
    }

    /// Up to `limit` entries of `cf` in `[lower, upper)`, in key order, as of this batch.
    pub(crate) fn scan(
        &self,
        cf: &ColumnFamily,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(lower.to_vec());
        ro.set_iterate_upper_bound(upper.to_vec());
        let mut it = self.txn.raw_iterator_cf_opt(cf, ro);
        it.seek(lower);
        let mut out = Vec::new();
        while out.len() < limit {
            let Some((k, v)) = it.item() else {
                break;
            };
            out.push((k.to_vec(), v.to_vec()));
            it.next();
        }
        it.status().map_err(self.err())?;
        Ok(out)
    }

    /// Every message of a bucket prefix (one namespace, or a whole account), in seq order.
    pub(crate) fn bucket_rows(&self, prefix: &[u8]) -> Result<Vec<Row>> {
        let end = keys::prefix_end(prefix);
        self.scan(self.cf.messages, prefix, &end, usize::MAX)?
            .iter()
            .map(|(k, v)| Row::from_kv(k, v))
            .collect()
    }

    /// The message with this hash, expired or not.
    pub(crate) fn find_row(&self, hash: &MessageHash) -> Result<Option<Row>> {
        let Some(key) = self.get(self.cf.hashes, &keys::hash_key(hash, KIND_MESSAGE))? else {
            return Ok(None);
        };
        let Some(v) = self.get(self.cf.messages, &key)? else {
            return Ok(None);
        };
        Row::from_kv(&key, &v).map(Some)
    }

    /// The live message with this hash; an expired one found on the way is removed (it is
    /// garbage the sweep has not reached yet, and must not influence merges).
    pub(crate) fn find_live(&mut self, hash: &MessageHash, now_ms: Millis) -> Result<Option<Row>> {
        match self.find_row(hash)? {
            Some(r) if r.h.expiry_ms <= now_ms => {
                self.delete_row(&r)?;
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// Removes a message and its index entries.
    pub(crate) fn delete_row(&mut self, r: &Row) -> Result<()> {
        self.del(self.cf.messages, &r.key)?;
        let hk = keys::hash_key(&r.h.hash, KIND_MESSAGE);
        if self.get(self.cf.hashes, &hk)?.as_deref() == Some(&r.key[..]) {
            self.del(self.cf.hashes, &hk)?;
        }
        self.del(
            self.cf.expiry,
            &keys::expiry_key(KIND_MESSAGE, r.h.expiry_ms, &r.key),
        )?;
        self.d.add(r.owner, -1, -r.len);
        Ok(())
    }

    /// Rewrites a message's state (timestamp, expiry, expiry version), moving its expiry entry.
    pub(crate) fn set_state(&mut self, r: &Row, new: MsgHeader) -> Result<()> {
        let Some(v) = self.get(self.cf.messages, &r.key)? else {
            return Ok(());
        };
        let (_, data) = keys::parse_msg(&v)?;
        let value = keys::msg_value(&new, data);
        self.put(self.cf.messages, &r.key, &value)?;
        if new.expiry_ms != r.h.expiry_ms {
            self.del(
                self.cf.expiry,
                &keys::expiry_key(KIND_MESSAGE, r.h.expiry_ms, &r.key),
            )?;
            let k = keys::expiry_key(KIND_MESSAGE, new.expiry_ms, &r.key);
            self.put(self.cf.expiry, &k, &[])?;
        }
        Ok(())
    }

    /// Inserts a new message at the next seq.
    pub(crate) fn insert_message(
        &mut self,
        owner: &AccountId,
        ns: Namespace,
        h: MsgHeader,
        data: &[u8],
    ) -> Result<()> {
        let seq = *self.next_seq;
        *self.next_seq = seq.saturating_add(1);
        let key = keys::msg_key(owner, ns, seq);
        self.put(self.cf.messages, &key, &keys::msg_value(&h, data))?;
        self.put(self.cf.hashes, &keys::hash_key(&h.hash, KIND_MESSAGE), &key)?;
        let ek = keys::expiry_key(KIND_MESSAGE, h.expiry_ms, &key);
        self.put(self.cf.expiry, &ek, &[])?;
        self.d.add(*owner, 1, len_i64(data.len()));
        Ok(())
    }

    /// The tombstone of this hash.
    pub(crate) fn find_tombstone(&self, hash: &MessageHash) -> Result<Option<TombRow>> {
        let Some(b) = self.get(self.cf.hashes, &keys::hash_key(hash, KIND_TOMBSTONE))? else {
            return Ok(None);
        };
        let (owner, namespace) = keys::parse_bucket(&b)?;
        let Some(v) = self.get(self.cf.tombstones, &keys::tomb_key(&owner, namespace, hash))?
        else {
            return Ok(None);
        };
        Ok(Some(TombRow {
            owner,
            namespace,
            hash: *hash,
            v: TombValue::parse(&v)?,
        }))
    }

    /// Removes a tombstone and its index entries.
    pub(crate) fn delete_tombstone(&mut self, t: &TombRow) -> Result<()> {
        let key = keys::tomb_key(&t.owner, t.namespace, &t.hash);
        self.del(self.cf.tombstones, &key)?;
        self.del(self.cf.hashes, &keys::hash_key(&t.hash, KIND_TOMBSTONE))?;
        self.del(
            self.cf.expiry,
            &keys::expiry_key(KIND_TOMBSTONE, t.v.keep_until_ms, &key),
        )?;
        self.d.tombstones -= 1;
        Ok(())
    }

    /// Inserts a tombstone, or merges it into the existing one (max of both times; a known
    /// local position is kept). Returns whether anything changed.
    pub(crate) fn upsert_tombstone(
        &mut self,
        owner: &AccountId,
        ns: Namespace,
        hash: &MessageHash,
        new: TombValue,
    ) -> Result<bool> {
        let old = self.find_tombstone(hash)?;
        let (owner, ns, merged) = match &old {
            None => (*owner, ns, new),
            Some(t) => {
                let merged = TombValue {
                    deleted_ms: t.v.deleted_ms.max(new.deleted_ms),
                    keep_until_ms: t.v.keep_until_ms.max(new.keep_until_ms),
                    local_seq: if new.local_seq != 0 {
                        new.local_seq
                    } else {
                        t.v.local_seq
                    },
                };
                let changed = new.deleted_ms > t.v.deleted_ms
                    || new.keep_until_ms > t.v.keep_until_ms
                    || (new.local_seq != 0 && t.v.local_seq == 0);
                if !changed {
                    return Ok(false);
                }
                (t.owner, t.namespace, merged)
            }
        };
        let key = keys::tomb_key(&owner, ns, hash);
        self.put(self.cf.tombstones, &key, &merged.encode())?;
        match &old {
            None => {
                self.put(
                    self.cf.hashes,
                    &keys::hash_key(hash, KIND_TOMBSTONE),
                    &keys::bucket(&owner, ns),
                )?;
                self.d.tombstones += 1;
            }
            Some(t) if t.v.keep_until_ms != merged.keep_until_ms => {
                self.del(
                    self.cf.expiry,
                    &keys::expiry_key(KIND_TOMBSTONE, t.v.keep_until_ms, &key),
                )?;
            }
            Some(_) => return Ok(true),
        }
        let ek = keys::expiry_key(KIND_TOMBSTONE, merged.keep_until_ms, &key);
        self.put(self.cf.expiry, &ek, &[])?;
        Ok(true)
    }

    /// Keep time of a tombstone: `deleted_ms + tombstone_retention_ms`. A function of the
    /// deletion time only, so that it converges like `deleted_ms` does.
    pub(crate) fn keep_until(&self, deleted_ms: Millis) -> Millis {
        deleted_ms.saturating_add(self.config.tombstone_retention_ms)
    }

    /// Fails with [`StoreError::DatabaseFull`] when adding `len` data bytes would pass the cap.
    pub(crate) fn check_room(&self, len: usize) -> Result<()> {
        let Some(max) = self.config.max_db_bytes else {
            return Ok(());
        };
        let after = self
            .stored_bytes
            .saturating_add(self.d.added_bytes)
            .saturating_add(u64::try_from(len).unwrap_or(u64::MAX))
            .saturating_add(MESSAGE_OVERHEAD);
        if after > max {
            return Err(StoreError::DatabaseFull {
                op: self.op,
                max_db_bytes: max,
            });
        }
        Ok(())
    }
}
