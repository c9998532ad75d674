//! Remote merge: the convergent operations anti-entropy and handover apply (see the crate
//! docs). Each is idempotent and commutative; none is subject to the quota.

use crate::error::{Result, StoreError};
use crate::keys::{MsgHeader, TombValue};
use crate::ops::{Admission, Incoming, admit, check_size};
use crate::rows::Tx;
use crate::types::{ApplyOutcome, ExpiryUpdate, Millis, ReplicaMessage, Tombstone};

/// The message state is a last-writer-wins register ordered by
/// `(timestamp, expiry_version, expiry)`; the data is fixed by the hash.
fn newer(incoming: &MsgHeader, held: &MsgHeader) -> bool {
    (
        incoming.timestamp_ms,
        incoming.expiry_version,
        incoming.expiry_ms,
    ) > (held.timestamp_ms, held.expiry_version, held.expiry_ms)
}

/// A message from a peer (handover or reconciliation pull).
pub(crate) fn apply_message(
    w: &mut Tx<'_, '_>,
    m: ReplicaMessage,
    now_ms: Millis,
) -> Result<ApplyOutcome> {
    check_size(w, m.data.len())?;
    let incoming = MsgHeader {
        hash: m.hash,
        timestamp_ms: m.timestamp_ms,
        expiry_ms: m.expiry_ms,
        expiry_version: m.expiry_version,
    };
    if let Some(row) = w.find_live(&m.hash, now_ms)? {
        if row.owner != m.owner || row.namespace != m.namespace {
            return Err(StoreError::HashConflict { op: w.op });
        }
        if !newer(&incoming, &row.h) {
            return Ok(ApplyOutcome::Unchanged);
        }
        w.set_state(&row, incoming)?;
        return Ok(ApplyOutcome::Changed);
    }
    if m.expiry_ms <= now_ms {
        return Ok(ApplyOutcome::Expired);
    }
    match admit(w, &Incoming::from(&m), now_ms)? {
        Admission::Tombstoned => return Ok(ApplyOutcome::Tombstoned),
        Admission::Obsolete => return Ok(ApplyOutcome::Obsolete),
        Admission::Admitted => {}
    }
    w.check_room(m.data.len())?;
    w.insert_message(&m.owner, m.namespace, incoming, &m.data)?;
    Ok(ApplyOutcome::Changed)
}

/// A tombstone from a peer. The keep time is recomputed from the deletion time, whatever the
/// peer sent.
pub(crate) fn apply_tombstone(
    w: &mut Tx<'_, '_>,
    t: Tombstone,
    now_ms: Millis,
) -> Result<ApplyOutcome> {
    let keep = w.keep_until(t.deleted_ms);
    if let Some(row) = w.find_live(&t.hash, now_ms)? {
        if row.owner != t.owner || row.namespace != t.namespace {
            return Err(StoreError::HashConflict { op: w.op });
        }
        if t.deleted_ms < row.h.timestamp_ms {
            // The message was stored again after this deletion: it wins.
            return Ok(ApplyOutcome::Unchanged);
        }
        w.delete_row(&row)?;
        let v = TombValue {
            deleted_ms: t.deleted_ms,
            keep_until_ms: keep,
            local_seq: row.seq,
        };
        w.upsert_tombstone(&t.owner, t.namespace, &t.hash, v)?;
        return Ok(ApplyOutcome::Changed);
    }
    if let Some(existing) = w.find_tombstone(&t.hash)? {
        if existing.owner != t.owner || existing.namespace != t.namespace {
            return Err(StoreError::HashConflict { op: w.op });
        }
    } else if keep <= now_ms {
        return Ok(ApplyOutcome::Expired);
    }
    let v = TombValue {
        deleted_ms: t.deleted_ms,
        keep_until_ms: keep,
        local_seq: 0,
    };
    Ok(if w.upsert_tombstone(&t.owner, t.namespace, &t.hash, v)? {
        ApplyOutcome::Changed
    } else {
        ApplyOutcome::Unchanged
    })
}

/// A message state from a peer (the larger `(timestamp_ms, expiry_version, expiry_ms)` wins).
pub(crate) fn apply_expiry(
    w: &mut Tx<'_, '_>,
    e: ExpiryUpdate,
    now_ms: Millis,
) -> Result<ApplyOutcome> {
    let Some(row) = w.find_live(&e.hash, now_ms)? else {
        return Ok(ApplyOutcome::NotFound);
    };
    if row.owner != e.owner {
        return Err(StoreError::HashConflict { op: w.op });
    }
    let incoming = MsgHeader {
        hash: e.hash,
        timestamp_ms: e.timestamp_ms,
        expiry_ms: e.expiry_ms,
        expiry_version: e.expiry_version,
    };
    if !newer(&incoming, &row.h) {
        return Ok(ApplyOutcome::Unchanged);
    }
    w.set_state(&row, incoming)?;
    Ok(ApplyOutcome::Changed)
}
