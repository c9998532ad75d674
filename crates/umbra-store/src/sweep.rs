//! The expiry sweep: removes messages expired for longer than the grace time and tombstones
//! past their keep time, walking the `expiry` column family from its oldest entry. Bounded per
//! call ([`crate::StoreConfig::sweep_limit`]) so that one sweep command holds the writer back
//! only briefly; the node calls again at once while `more` is set.

use crate::error::Result;
use crate::keys::{self, KIND_MESSAGE, KIND_TOMBSTONE};
use crate::rows::{Row, TombRow, Tx};
use crate::types::{Millis, SweepOutcome};

/// The entries of one kind in the `expiry` column family due at or before `cutoff_ms`.
fn due(w: &Tx<'_, '_>, kind: u8, cutoff_ms: Millis, limit: usize) -> Result<Vec<Vec<u8>>> {
    let lower = [kind];
    let upper = keys::expiry_key(kind, cutoff_ms.saturating_add(1), &[]);
    Ok(w.scan(w.cf.expiry, &lower, &upper, limit)?
        .into_iter()
        .map(|(k, _)| k)
        .collect())
}

pub(crate) fn sweep(w: &mut Tx<'_, '_>, now_ms: Millis) -> Result<SweepOutcome> {
    let limit = w.config.sweep_limit.max(1);
    let cutoff = now_ms.saturating_sub(w.config.expired_grace_ms);
    let mut out = SweepOutcome::default();

    let due_messages = due(w, KIND_MESSAGE, cutoff, limit)?;
    out.more |= due_messages.len() >= limit;
    for ek in due_messages {
        let (_, key) = keys::parse_expiry_key(&ek)?;
        match w.get(w.cf.messages, key)? {
            Some(v) => {
                let row = Row::from_kv(key, &v)?;
                w.delete_row(&row)?;
                out.messages += 1;
            }
            // An index entry without its message: drop it.
            None => w.del(w.cf.expiry, &ek)?,
        }
    }

    let due_tombs = due(w, KIND_TOMBSTONE, now_ms, limit)?;
    out.more |= due_tombs.len() >= limit;
    for ek in due_tombs {
        let (_, key) = keys::parse_expiry_key(&ek)?;
        match w.get(w.cf.tombstones, key)? {
            Some(v) => {
                let (owner, namespace) = keys::parse_bucket(key)?;
                let t = TombRow {
                    owner,
                    namespace,
                    hash: keys::tomb_hash(key)?,
                    v: keys::TombValue::parse(&v)?,
                };
                w.delete_tombstone(&t)?;
                out.tombstones += 1;
            }
            None => w.del(w.cf.expiry, &ek)?,
        }
    }
    Ok(out)
}
