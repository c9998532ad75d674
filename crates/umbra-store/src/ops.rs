//! Client operations (`storage-rpc.md` §5): store, delete, expire, subaccount revocations. Each
//! runs on the writer thread inside the batch transaction, as one command.

use std::collections::{BTreeMap, HashSet};

use crate::error::{QuotaLimit, Result, StoreError};
use crate::keys::{self, MsgHeader, TombValue};
use crate::rows::{Row, Tx};
use crate::types::{
    AccountId, ByNamespace, ExpireMode, ExpireOutcome, ExpireRequest, ExpiryTarget,
    MAX_REVOCATIONS_PER_ACCOUNT, MAX_TOKENS_PER_REQUEST, MessageHash, Millis, Namespace,
    NamespaceSel, NewMessage, ReplicaMessage, StoreOutcome, SubaccountToken, UpdatedExpiry,
    is_public_outbox,
};

/// Whether an incoming message loses to a tombstone of its hash.
enum TombCheck {
    /// No tombstone, or it was beaten (and removed).
    Clear,
    /// The tombstone beats the message.
    Wins,
}

/// Resolves an incoming message against a tombstone of the same hash.
fn check_tombstone(
    w: &mut Tx<'_, '_>,
    owner: &AccountId,
    ns: Namespace,
    hash: &MessageHash,
    timestamp_ms: Millis,
) -> Result<TombCheck> {
    let Some(t) = w.find_tombstone(hash)? else {
        return Ok(TombCheck::Clear);
    };
    if t.owner != *owner || t.namespace != ns {
        return Err(StoreError::HashConflict { op: w.op });
    }
    if t.v.deleted_ms >= timestamp_ms {
        Ok(TombCheck::Wins)
    } else {
        w.delete_tombstone(&t)?;
        Ok(TombCheck::Clear)
    }
}

/// Who an incoming message is (client store or replica), for the public outbox rule.
pub(crate) struct Incoming<'a> {
    pub(crate) owner: &'a AccountId,
    pub(crate) namespace: Namespace,
    pub(crate) hash: &'a MessageHash,
    pub(crate) timestamp_ms: Millis,
}

impl<'a> From<&'a NewMessage> for Incoming<'a> {
    fn from(m: &'a NewMessage) -> Self {
        Incoming {
            owner: &m.owner,
            namespace: m.namespace,
            hash: &m.hash,
            timestamp_ms: m.timestamp_ms,
        }
    }
}

impl<'a> From<&'a ReplicaMessage> for Incoming<'a> {
    fn from(m: &'a ReplicaMessage) -> Self {
        Incoming {
            owner: &m.owner,
            namespace: m.namespace,
            hash: &m.hash,
            timestamp_ms: m.timestamp_ms,
        }
    }
}

/// Public outbox rule: the live message with the largest `(timestamp, hash)` is kept; the others
/// become tombstones with `deleted_ms` = their own timestamp (deterministic on every node).
/// Returns whether the incoming message loses (it is then a tombstone); when it wins, the
/// older messages are gone. Outside public outboxes it never loses.
fn loses_in_outbox(w: &mut Tx<'_, '_>, incoming: &Incoming<'_>, now_ms: Millis) -> Result<bool> {
    if !is_public_outbox(incoming.namespace) {
        return Ok(false);
    }
    let retention = w.config.tombstone_retention_ms;
    let rows = w.bucket_rows(&keys::bucket(incoming.owner, incoming.namespace))?;
    let mine = (incoming.timestamp_ms, incoming.hash);
    let loses = rows
        .iter()
        .any(|r| r.h.expiry_ms > now_ms && (r.h.timestamp_ms, &r.h.hash) > mine);
    if loses {
        let t = TombValue {
            deleted_ms: incoming.timestamp_ms,
            keep_until_ms: incoming.timestamp_ms.saturating_add(retention),
            local_seq: 0,
        };
        w.upsert_tombstone(incoming.owner, incoming.namespace, incoming.hash, t)?;
        return Ok(true);
    }
    for r in rows {
        w.delete_row(&r)?;
        if r.h.expiry_ms > now_ms {
            let ts = r.h.timestamp_ms;
            let t = TombValue {
                deleted_ms: ts,
                keep_until_ms: ts.saturating_add(retention),
                local_seq: r.seq,
            };
            w.upsert_tombstone(&r.owner, r.namespace, &r.h.hash, t)?;
        }
    }
    Ok(false)
}

/// What becomes of a new message (no live copy here) before it is inserted.
pub(crate) enum Admission {
    /// A tombstone of its hash beats it.
    Tombstoned,
    /// A newer message of the public outbox beats it (it is now a tombstone).
    Obsolete,
    /// It may be inserted.
    Admitted,
}

/// The tombstone rule, then the public outbox rule, for a new message.
pub(crate) fn admit(w: &mut Tx<'_, '_>, who: &Incoming<'_>, now_ms: Millis) -> Result<Admission> {
    if let TombCheck::Wins =
        check_tombstone(w, who.owner, who.namespace, who.hash, who.timestamp_ms)?
    {
        return Ok(Admission::Tombstoned);
    }
    if loses_in_outbox(w, who, now_ms)? {
        return Ok(Admission::Obsolete);
    }
    Ok(Admission::Admitted)
}

/// Fails when the message is larger than the configured limit.
pub(crate) fn check_size(w: &Tx<'_, '_>, len: usize) -> Result<()> {
    if len > w.config.max_message_bytes {
        return Err(StoreError::MessageTooLarge {
            len,
            max: w.config.max_message_bytes,
        });
    }
    Ok(())
}

/// `store` (§5.1).
pub(crate) fn store(w: &mut Tx<'_, '_>, msg: NewMessage, now_ms: Millis) -> Result<StoreOutcome> {
    check_size(w, msg.data.len())?;
    if let Some(row) = w.find_live(&msg.hash, now_ms)? {
        if row.owner != msg.owner || row.namespace != msg.namespace {
            return Err(StoreError::HashConflict { op: w.op });
        }
        if msg.expiry_ms > row.h.expiry_ms {
            let new = MsgHeader {
                expiry_ms: msg.expiry_ms,
                expiry_version: now_ms.max(row.h.expiry_version.saturating_add(1)),
                ..row.h
            };
            w.set_state(&row, new)?;
            return Ok(StoreOutcome::Already {
                expiry_ms: msg.expiry_ms,
            });
        }
        return Ok(StoreOutcome::Already {
            expiry_ms: row.h.expiry_ms,
        });
    }
    match admit(w, &Incoming::from(&msg), now_ms)? {
        Admission::Tombstoned => return Ok(StoreOutcome::Deleted),
        Admission::Obsolete => return Ok(StoreOutcome::Obsolete),
        Admission::Admitted => {}
    }
    check_quota(w, &msg.owner, msg.data.len())?;
    w.check_room(msg.data.len())?;
    let h = MsgHeader {
        hash: msg.hash,
        timestamp_ms: msg.timestamp_ms,
        expiry_ms: msg.expiry_ms,
        expiry_version: msg.timestamp_ms,
    };
    w.insert_message(&msg.owner, msg.namespace, h, &msg.data)?;
    Ok(StoreOutcome::Stored {
        expiry_ms: msg.expiry_ms,
    })
}

/// Quota: what the account holds now, plus what this command already changed.
fn check_quota(w: &Tx<'_, '_>, owner: &AccountId, len: usize) -> Result<()> {
    let held = w.usage.get(owner).copied().unwrap_or_default();
    let (dc, db) = w.d.for_owner(owner);
    let count = add_signed(held.count, dc);
    let bytes = add_signed(held.bytes, db);
    let q = w.config.quota;
    if count.saturating_add(1) > q.max_messages {
        return Err(StoreError::QuotaExceeded {
            limit: QuotaLimit::MessageCount,
            max: q.max_messages,
        });
    }
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    if bytes.saturating_add(len) > q.max_bytes {
        return Err(StoreError::QuotaExceeded {
            limit: QuotaLimit::Bytes,
            max: q.max_bytes,
        });
    }
    Ok(())
}

/// `v + d`, saturating at both ends.
pub(crate) fn add_signed(v: u64, d: i64) -> u64 {
    if d >= 0 {
        v.saturating_add(d.unsigned_abs())
    } else {
        v.saturating_sub(d.unsigned_abs())
    }
}

/// Deletes a live message and leaves its tombstone (with its position, for `last_hash`).
fn delete_to_tombstone(w: &mut Tx<'_, '_>, row: &Row, now_ms: Millis) -> Result<()> {
    w.delete_row(row)?;
    let deleted_ms = now_ms.max(row.h.timestamp_ms);
    let t = TombValue {
        deleted_ms,
        keep_until_ms: w.keep_until(deleted_ms),
        local_seq: row.seq,
    };
    w.upsert_tombstone(&row.owner, row.namespace, &row.h.hash, t)?;
    Ok(())
}

/// `delete` (§5.3).
pub(crate) fn delete(
    w: &mut Tx<'_, '_>,
    owner: &AccountId,
    hashes: &[MessageHash],
    now_ms: Millis,
) -> Result<Vec<MessageHash>> {
    let mut deleted = Vec::new();
    let mut seen = HashSet::new();
    for h in hashes {
        if !seen.insert(h) {
            continue;
        }
        let Some(row) = w.find_row(h)? else {
            continue;
        };
        if row.owner != *owner || row.h.expiry_ms <= now_ms {
            continue;
        }
        delete_to_tombstone(w, &row, now_ms)?;
        deleted.push(*h);
    }
    deleted.sort();
    Ok(deleted)
}

/// The rows of one namespace or all of an account's.
fn owner_rows(w: &Tx<'_, '_>, owner: &AccountId, ns: NamespaceSel) -> Result<Vec<Row>> {
    match ns {
        NamespaceSel::One(n) => w.bucket_rows(&keys::bucket(owner, n)),
        NamespaceSel::All => w.bucket_rows(owner.as_bytes()),
    }
}

fn sorted(mut out: BTreeMap<Namespace, Vec<MessageHash>>) -> ByNamespace {
    for v in out.values_mut() {
        v.sort();
    }
    ByNamespace(out)
}

/// `delete_all` (§5.4) and, with `before_ms`, `delete_before` (§5.5).
pub(crate) fn delete_all(
    w: &mut Tx<'_, '_>,
    owner: &AccountId,
    ns: NamespaceSel,
    before_ms: Option<Millis>,
    now_ms: Millis,
) -> Result<ByNamespace> {
    let mut out: BTreeMap<Namespace, Vec<MessageHash>> = BTreeMap::new();
    for row in owner_rows(w, owner, ns)? {
        if row.h.expiry_ms <= now_ms || before_ms.is_some_and(|b| row.h.timestamp_ms > b) {
            continue;
        }
        delete_to_tombstone(w, &row, now_ms)?;
        out.entry(row.namespace).or_default().push(row.h.hash);
    }
    Ok(sorted(out))
}

/// `expire` (§5.6; `storage-rpc-addendum.md` A3 for `ExtendNonTrivial`).
pub(crate) fn expire(
    w: &mut Tx<'_, '_>,
    req: &ExpireRequest,
    now_ms: Millis,
) -> Result<ExpireOutcome> {
    if let ExpiryTarget::PerMessage(v) = &req.expiry
        && v.len() != req.hashes.len()
    {
        return Err(StoreError::ExpiryCountMismatch {
            expiries: v.len(),
            hashes: req.hashes.len(),
        });
    }
    let cap = now_ms.saturating_add(w.config.max_expire_ahead_ms);
    let mut out = ExpireOutcome::default();
    if let ExpiryTarget::Single(e) = req.expiry {
        out.applied_expiry_ms = Some(e.min(cap));
    }
    let mut seen = HashSet::new();
    for (i, h) in req.hashes.iter().enumerate() {
        let target = match &req.expiry {
            ExpiryTarget::Single(e) => {
                if !seen.insert(h) {
                    continue;
                }
                (*e).min(cap)
            }
            ExpiryTarget::PerMessage(v) => v.get(i).copied().unwrap_or(cap).min(cap),
        };
        let Some(row) = w.find_row(h)? else {
            continue;
        };
        if row.owner != req.owner || row.h.expiry_ms <= now_ms {
            continue;
        }
        let apply = match req.mode {
            ExpireMode::Set => true,
            ExpireMode::Extend => row.h.expiry_ms < target,
            ExpireMode::ExtendNonTrivial => {
                row.h.expiry_ms < target && !is_trivial_extension(&row, target)
            }
            ExpireMode::Shorten => row.h.expiry_ms > target,
        };
        if apply {
            if row.h.expiry_ms != target {
                let new = MsgHeader {
                    expiry_ms: target,
                    expiry_version: now_ms.max(row.h.expiry_version.saturating_add(1)),
                    ..row.h
                };
                w.set_state(&row, new)?;
            }
            out.unchanged.remove(h);
            out.updated.push(UpdatedExpiry {
                hash: *h,
                expiry_ms: target,
            });
        } else {
            out.unchanged.insert(*h, row.h.expiry_ms);
        }
    }
    out.updated.sort_by_key(|a| a.hash);
    Ok(out)
}

/// `storage-rpc-addendum.md` A3: raising the expiry of `row` to `target` is trivial when it adds
/// less than 1 % of the message's current lifetime, `100 × (target − expiry) < expiry −
/// timestamp`. A skipped message is not rewritten, so its expiry version does not move and
/// anti-entropy has nothing of it to spread.
fn is_trivial_extension(row: &Row, target: Millis) -> bool {
    const TRIVIAL_EXTENSION_DIVISOR: i128 = 100;
    let gain = i128::from(target) - i128::from(row.h.expiry_ms);
    let lifetime = i128::from(row.h.expiry_ms) - i128::from(row.h.timestamp_ms);
    TRIVIAL_EXTENSION_DIVISOR * gain < lifetime
}

/// `expire_all` (§5.7): only shortens.
pub(crate) fn expire_all(
    w: &mut Tx<'_, '_>,
    owner: &AccountId,
    ns: NamespaceSel,
    expiry_ms: Millis,
    now_ms: Millis,
) -> Result<ByNamespace> {
    let mut out: BTreeMap<Namespace, Vec<MessageHash>> = BTreeMap::new();
    for row in owner_rows(w, owner, ns)? {
        if row.h.expiry_ms <= expiry_ms || row.h.expiry_ms <= now_ms {
            continue;
        }
        let new = MsgHeader {
            expiry_ms,
            expiry_version: now_ms.max(row.h.expiry_version.saturating_add(1)),
            ..row.h
        };
        w.set_state(&row, new)?;
        out.entry(row.namespace).or_default().push(row.h.hash);
    }
    Ok(sorted(out))
}

/// `revoke_subaccount` (§5.9): re-revoking refreshes a token's recency; only the
/// [`MAX_REVOCATIONS_PER_ACCOUNT`] most recent are kept.
pub(crate) fn revoke(
    w: &mut Tx<'_, '_>,
    owner: &AccountId,
    tokens: &[SubaccountToken],
    now_ms: Millis,
) -> Result<()> {
    if tokens.len() > MAX_TOKENS_PER_REQUEST {
        return Err(StoreError::TooManyTokens {
            op: w.op,
            given: tokens.len(),
            max: MAX_TOKENS_PER_REQUEST,
        });
    }
    for t in tokens {
        let order = *w.next_seq;
        *w.next_seq = order.saturating_add(1);
        let k = keys::revoked_key(owner, &t.0);
        w.put(w.cf.revoked, &k, &keys::revoked_value(order, now_ms))?;
    }
    let end = keys::prefix_end(owner.as_bytes());
    let mut all = Vec::new();
    for (k, v) in w.scan(w.cf.revoked, owner.as_bytes(), &end, usize::MAX)? {
        all.push((keys::revoked_order(&v)?, k));
    }
    all.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, k) in all.iter().skip(MAX_REVOCATIONS_PER_ACCOUNT) {
        w.del(w.cf.revoked, k)?;
    }
    Ok(())
}

/// `unrevoke_subaccount` (§5.9; `storage-rpc-addendum.md` A5: no count limit, the request body
/// bounds it; a token listed twice is removed, and counted, once).
pub(crate) fn unrevoke(
    w: &mut Tx<'_, '_>,
    owner: &AccountId,
    tokens: &[SubaccountToken],
) -> Result<u64> {
    let mut n = 0u64;
    for t in tokens {
        let k = keys::revoked_key(owner, &t.0);
        if w.get(w.cf.revoked, &k)?.is_some() {
            w.del(w.cf.revoked, &k)?;
            n += 1;
        }
    }
    Ok(n)
}
